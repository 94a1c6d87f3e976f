"""Run nbgrader's steps for this course and read the gradebook.

Every function takes the grading directory (submissions, autograded
notebooks, feedback, gradebook) explicitly, so tests and benchmarks run
in a temporary folder and never touch an instructor's ``_grading/``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds its output."""


def course_env(grading_dir, db_url: str | None = None) -> dict:
    """Environment for nbgrader with this course's config and paths.

    The virtual environment's ``bin/`` goes first on PATH because nbgrader
    shells out to ``alembic`` and starts kernels by name.
    """
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["COURSE_GRADING_DIR"] = str(grading_dir)
    if db_url:
        env["COURSE_DB_URL"] = db_url
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def nbgrader(*args: str, grading_dir, db_url: str | None = None,
             timeout: float = 900) -> str:
    """Run ``nbgrader ARGS`` in the repository; return its output."""
    exe = Path(sys.executable).parent / "nbgrader"
    cmd = [str(exe), *args]
    proc = subprocess.run(cmd, cwd=REPO, env=course_env(grading_dir, db_url),
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise NbgraderError(f"`nbgrader {' '.join(args)}` failed "
                            f"(exit {proc.returncode}):\n{out[-4000:]}")
    return out


def assignments() -> list[str]:
    """Names of the source assignments, in order."""
    return sorted(p.name for p in (REPO / "solutions").iterdir()
                  if p.is_dir() and any(p.glob("*.ipynb")))


def generate_release(assignment: str, grading_dir, release_dir,
                     db_url: str | None = None) -> Path:
    """Generate the student version of ``assignment`` into release_dir."""
    nbgrader("generate_assignment", assignment, "--force",
             f"--CourseDirectory.release_directory={release_dir}",
             grading_dir=grading_dir, db_url=db_url)
    return Path(release_dir) / assignment


def scores(db_url: str, assignment: str) -> dict[str, dict]:
    """student -> {"total": points, "cells": {grade_id: points}}."""
    from nbgrader.api import Gradebook

    out: dict[str, dict] = {}
    with Gradebook(db_url) as gb:
        for sub in gb.assignment_submissions(assignment):
            cells = {}
            for nb in sub.notebooks:
                for grade in nb.grades:
                    cells[grade.name] = grade.score
            out[sub.student_id] = {"total": sub.score, "cells": cells}
    return out
