"""Run nbgrader's steps for this course and read the gradebook.

Every function takes the grading directory (submissions, autograded
notebooks, feedback, gradebook) explicitly -- or a
:class:`coursekit.config.CourseConfig` -- so tests and benchmarks run in a
temporary folder and never touch an instructor's ``_grading/``.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from coursekit.config import REPO, CourseConfig

__all__ = ["REPO", "NbgraderError", "course_env", "nbgrader", "assignments",
           "generate_release", "scores"]


class NbgraderError(RuntimeError):
    """An nbgrader command failed; the message holds its output."""


def _config(grading_dir=None, db_url=None, cfg=None) -> CourseConfig:
    if cfg is not None:
        return cfg.with_(db_url=db_url) if db_url else cfg
    if grading_dir is None:
        raise TypeError("pass grading_dir= or cfg=")
    return CourseConfig.from_env(grading_dir=grading_dir, db_url=db_url)


def course_env(grading_dir, db_url: str | None = None) -> dict:
    """Environment for nbgrader with this course's config and paths
    (see :meth:`CourseConfig.env`)."""
    return _config(grading_dir, db_url).env()


def nbgrader(*args: str, grading_dir=None, db_url: str | None = None,
             timeout: float = 900, cfg: CourseConfig | None = None) -> str:
    """Run ``nbgrader ARGS`` in the repository; return its output."""
    cfg = _config(grading_dir, db_url, cfg)
    exe = Path(sys.executable).parent / "nbgrader"
    cmd = [str(exe), *args]
    proc = subprocess.run(cmd, cwd=cfg.repo, env=cfg.env(),
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


def generate_release(assignment: str, grading_dir=None, release_dir=None,
                     db_url: str | None = None,
                     cfg: CourseConfig | None = None) -> Path:
    """Generate the student version of ``assignment`` into release_dir."""
    cfg = _config(grading_dir, db_url, cfg)
    release_dir = release_dir or cfg.path("release")
    nbgrader("generate_assignment", assignment, "--force",
             f"--CourseDirectory.release_directory={release_dir}", cfg=cfg)
    return Path(release_dir) / assignment


def scores(db_url: str, assignment: str) -> dict[str, dict]:
    """student -> {"total": points, "cells": {grade_id: points}}."""
    from nbgrader.api import Gradebook

    from coursekit.autograde import _fast_gradebook, quiet_sqlalchemy
    quiet_sqlalchemy()
    _fast_gradebook()
    out: dict[str, dict] = {}
    with Gradebook(db_url) as gb:
        for sub in gb.assignment_submissions(assignment):
            cells = {}
            for nb in sub.notebooks:
                for grade in nb.grades:
                    cells[grade.name] = grade.score
            out[sub.student_id] = {"total": sub.score, "cells": cells}
    return out
