"""nbgrader configuration of the course.

nbgrader's source/release folders are this repository's ``solutions/``
(instructor version: solutions and hidden tests) and ``exercises/`` (the
student release, generated, never edited by hand). Everything produced
while grading (submissions, autograded copies, feedback, the gradebook)
lives under ``_grading/``, which git ignores.
"""
import os
import warnings

c = get_config()  # noqa: F821 (provided by nbgrader)

here = os.path.dirname(os.path.abspath(__file__))
grading = os.environ.get("COURSE_GRADING_DIR",
                         os.path.join(here, "_grading"))

c.CourseDirectory.course_id = "everything-is-a-mapping"
c.CourseDirectory.root = here
# (COURSE_SOURCE_DIR / COURSE_RELEASE_DIR: other folders, for benchmarks)
c.CourseDirectory.source_directory = os.environ.get("COURSE_SOURCE_DIR",
                                                    "solutions")
c.CourseDirectory.release_directory = os.environ.get("COURSE_RELEASE_DIR",
                                                     "exercises")
c.CourseDirectory.submitted_directory = os.path.join(grading, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(grading, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(grading, "feedback")
c.CourseDirectory.db_url = os.environ.get(
    "COURSE_DB_URL", "sqlite:///" + os.path.join(grading, "gradebook.db"))
c.Exchange.root = os.environ.get("COURSE_EXCHANGE",
                                 os.path.join(grading, "exchange"))
# Exported grades land in the grading folder, never the repository root.
c.ExportPlugin.to = os.path.join(grading, "grades.csv")
# nbgrader 0.9's gradebook triggers SQLAlchemy's harmless "Object of type
# <SubmittedAssignment> not in session" autoflush warning per submission.
warnings.filterwarnings("ignore", message=r"Object of type .* not in session")

# Every notebook must run top to bottom quickly; a cell that hangs (an
# infinite loop in a submission) is stopped and the rest still graded.
_timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "60"))
c.ExecutePreprocessor.timeout = _timeout
c.Execute.timeout = _timeout
# The trusted checks' limits (grader's clock): one call of the student's
# code, and all the checks of one cell.
c.SandboxedExecute.call_timeout = _timeout
c.SandboxedExecute.check_timeout = 3 * _timeout
# The release keeps no solution and no hidden test.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Feedback shows each test's result, points and explanation, never the
# hidden tests' code or inputs (nbgrader alone shows both).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "coursekit.feedback.ScrubFeedback",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# Self-contained pages (students open them from disk, release_feedback
# copies only the .html): the site's MathJax inlined, no CDN.
c.GenerateFeedback.exporter_class = "coursekit.feedback.OfflineFeedbackExporter"

# Autograding runs every submission in a sandboxed kernel that holds nothing
# (coursekit.sandbox: its own PID/mount/network namespaces and uid, no
# course files, no inherited descriptors or environment, the modules an
# assignment forbids absent), and judges every test cell OUTSIDE it:
# coursekit.execute.SandboxedExecute runs the cell's trusted check
# (coursekit/checks/<assignment>.py) in this process, which calls the
# student's code in the kernel and compares the plain data it returns
# (docs/grading.md). Deleted, moved or re-labelled cells are put back in the
# release's layout (coursekit.layout) before nbgrader restores the locked
# cells' source.
c.Autograde.sanitize_preprocessors = [
    "coursekit.layout.RestoreLayout",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "coursekit.execute.SandboxedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    # nbgrader's SaveAutoGrades, committing once per notebook
    "coursekit.execute.SaveAutoGradesAtOnce",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Sandbox limits (defaults in coursekit/sandbox.py: 3072 MB, 600 CPU s).
c.SandboxedExecute.sandbox_settings = {
    key: int(os.environ[var]) for key, var in
    (("memory_mb", "COURSE_SANDBOX_MEMORY_MB"),
     ("cpu_seconds", "COURSE_SANDBOX_CPU_SECONDS")) if os.environ.get(var)}
