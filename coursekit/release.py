"""Release: the student version of each assignment, to the exchange, and
the feedback back to the students.

``release(cfg, [a], exchange=True, duedate=...)`` regenerates the release
(``exercises/``) from ``solutions/`` with nbgrader's
``generate_assignment`` (which registers the assignment in the gradebook),
sets the due date, and with ``exchange=True`` publishes it with
``release_assignment`` (students then ``nbgrader fetch_assignment``).
``release_feedback(cfg, a)`` publishes the feedback pages of every graded
student to the exchange, where each student's ``nbgrader fetch_feedback``
(or the Assignments tab) finds their own -- and only their own: the file
name is a hash of the student's secret submission key.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from coursekit import pipeline
from coursekit.config import CourseConfig


def parse_duedate(text: str) -> datetime:
    """ISO date -> naive UTC (as nbgrader's gradebook stores it); a date
    without a time zone is UTC."""
    due = datetime.fromisoformat(text)
    if due.tzinfo:
        due = due.astimezone(timezone.utc).replace(tzinfo=None)
    return due


def set_duedate(cfg: CourseConfig, assignment: str, due: datetime) -> None:
    from coursekit.autograde import _gradebook
    with _gradebook(cfg) as gb:
        gb.update_or_create_assignment(assignment, duedate=due)


def release(cfg: CourseConfig, assignments=None, exchange=False,
            duedate: str | None = None, release_dir=None, log=print):
    rel = []
    if release_dir:
        rel = [f"--CourseDirectory.release_directory="
               f"{Path(release_dir).resolve()}"]
    for a in assignments or pipeline.assignments():
        pipeline.nbgrader("generate_assignment", a, "--force", *rel,
                          cfg=cfg)
        log(f"released {release_dir or cfg.release_dir}/{a}")
        if duedate:
            due = parse_duedate(duedate)
            set_duedate(cfg, a, due)
            log(f"  due {due.isoformat()} UTC")
        if exchange:
            cfg.exchange.mkdir(parents=True, exist_ok=True)
            os.chmod(cfg.exchange, 0o1777)
            pipeline.nbgrader("release_assignment", a, "--force", *rel,
                              cfg=cfg)
            log(f"  published to the exchange {cfg.exchange}")


def release_feedback(cfg: CourseConfig, assignment: str, student=None,
                     log=print) -> list[str]:
    """``nbgrader release_feedback``: every feedback page to the exchange.

    A student's pages are found by ``fetch_feedback`` through the secret
    that ``nbgrader submit`` put in the submission; a submission made
    without it (by hand, in the exchange) cannot get feedback back this
    way: it is left out, reported, and its pages stay in the grading
    folder. Returns the students left out."""
    root = cfg.path("feedback")
    excluded = sorted(
        d.parent.name for d in root.glob(f"*/{assignment}")
        if d.is_dir() and not ((d / "submission_secret.txt").is_file()
                               and (d / "timestamp.txt").is_file()))
    for s in excluded:
        log(f"student {s!r}, assignment {assignment!r}: the submission "
            f"has no submission_secret.txt (not made with nbgrader submit);"
            f" feedback not released, it is in {root / s / assignment}")
    extra = [f"--student={student}"] if student else []
    if excluded:
        extra.append("--CourseDirectory.student_id_exclude="
                     + ",".join(excluded))
    pipeline.nbgrader("release_feedback", assignment, *extra, cfg=cfg)
    return excluded
