"""Export: the gradebook as CSV, in the grading folder.

``export(cfg)`` runs ``nbgrader export`` into ``<grading>/grades.csv``
(or ``to``); ``nbgrader_config.py`` makes that the default of a plain
``nbgrader export`` too, so grades never land in the repository root.
With a PostgreSQL gradebook shared by several grading machines, any of
them exports the whole class.
"""
from __future__ import annotations

from pathlib import Path

from coursekit import pipeline
from coursekit.config import CourseConfig


def export(cfg: CourseConfig, to=None) -> Path:
    dest = Path(to or cfg.grading_dir / "grades.csv").resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    pipeline.nbgrader("export", f"--to={dest}", cfg=cfg)
    return dest
