# Environment for the grading machine(s). The course's own
# nbgrader_config.py (repository root) reads these variables, so a grading
# node only needs them exported before `python -m coursekit ...`:
#
#   export COURSE_GRADING_DIR=/srv/grading/everything-is-a-mapping
#   export COURSE_EXCHANGE=/srv/nbgrader/exchange
#   export COURSE_DB_URL=postgresql+psycopg2://nbgrader:PW@db/gradebook
#   export COURSE_CELL_TIMEOUT=60          # seconds per cell
#   export COURSE_SANDBOX_MEMORY_MB=3072   # per student kernel
#   export COURSE_SANDBOX_CPU_SECONDS=600  # per student kernel
#
# This file is the same thing as nbgrader config, for an instructor who
# prefers to keep it in ~/.jupyter/nbgrader_config.py on a grading node.
import os

c = get_config()  # noqa: F821
c.Exchange.root = "/srv/nbgrader/exchange"
c.CourseDirectory.db_url = os.environ["COURSE_DB_URL"]
c.CourseDirectory.submitted_directory = "/srv/grading/submitted"
c.CourseDirectory.autograded_directory = "/srv/grading/autograded"
c.CourseDirectory.feedback_directory = "/srv/grading/feedback"
