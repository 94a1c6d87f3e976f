"""Former name of :mod:`coursekit.autograde` (the class run), kept so
existing callers (``grade.autograde``, ``grade.cell_errors``, ...) work."""
from coursekit.autograde import *  # noqa: F401,F403
from coursekit.autograde import (Problem, Result, autograde,  # noqa: F401
                                 cell_errors, check_submission, db_url_for,
                                 ensure_assignment, expected_notebooks,
                                 grading_paths, report, save_json,
                                 submissions)
