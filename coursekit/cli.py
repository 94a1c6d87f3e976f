"""``python -m coursekit``: the instructor's workflow over nbgrader.

    python -m coursekit release [A ...] [--exchange] [--duedate ISO]
    python -m coursekit collect A [--before-duedate]
    python -m coursekit autograde A [--workers N] [--student S ...]
    python -m coursekit feedback A
    python -m coursekit export [--to grades.csv]
    python -m coursekit report A
    python -m coursekit check

Global options (before the command) choose the grading folder, the
gradebook and the exchange; they default to nbgrader_config.py's
(``_grading/``, SQLite in it, ``_grading/exchange``) and can also be set
with COURSE_GRADING_DIR, COURSE_DB_URL, COURSE_EXCHANGE.

``release`` regenerates ``exercises/`` from ``solutions/`` and, with
``--exchange``, publishes it to nbgrader's exchange (students then run
``nbgrader fetch_assignment`` and ``nbgrader submit``); ``collect`` brings
the submissions in from the exchange (the latest one per student, or the
latest before the due date with ``--before-duedate``) and reports late
ones; ``autograde`` grades in sandboxed kernels (see coursekit.sandbox),
in parallel with ``--workers`` on a PostgreSQL gradebook; ``report`` lists
scores and every failed test cell with its message. Exit status is 1 when
any submission had a problem (each is printed, naming the student, the
assignment and the file or cell); the others are still graded.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from coursekit import grade, pipeline

COURSE = "everything-is-a-mapping"


def _paths(args):
    g = Path(args.grading_dir or os.environ.get("COURSE_GRADING_DIR")
             or pipeline.REPO / "_grading").resolve()
    g.mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_GRADING_DIR"] = str(g)
    url = grade.db_url_for(g, args.db_url)
    os.environ["COURSE_DB_URL"] = url
    ex = Path(args.exchange or os.environ.get("COURSE_EXCHANGE")
              or g / "exchange").resolve()
    os.environ["COURSE_EXCHANGE"] = str(ex)
    return g, url, ex


def cmd_release(args, g, url, ex) -> int:
    names = args.assignments or pipeline.assignments()
    rel = []
    if args.release_dir:
        rel = [f"--CourseDirectory.release_directory="
               f"{Path(args.release_dir).resolve()}"]
    for a in names:
        pipeline.nbgrader("generate_assignment", a, "--force", *rel,
                          grading_dir=g, db_url=url)
        print(f"released {args.release_dir or 'exercises'}/{a}")
        if args.duedate:
            from nbgrader.api import Gradebook
            due = datetime.fromisoformat(args.duedate)
            if due.tzinfo:
                due = due.astimezone(timezone.utc).replace(tzinfo=None)
            with Gradebook(url) as gb:
                gb.update_or_create_assignment(a, duedate=due)
            print(f"  due {due.isoformat()} UTC")
        if args.exchange_release:
            ex.mkdir(parents=True, exist_ok=True)
            os.chmod(ex, 0o1777)
            pipeline.nbgrader("release_assignment", a, "--force", *rel,
                              grading_dir=g, db_url=url)
            print(f"  published to the exchange {ex}")
    return 0


def lateness(assignment: str, g: Path, url: str) -> list[str]:
    """One line per late submission in submitted/."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc
    with Gradebook(url) as gb:
        due = gb.find_assignment(assignment).duedate
    if due is None:
        return []
    out = []
    for s in grade.submissions(g, assignment):
        ts_file = g / "submitted" / s / assignment / "timestamp.txt"
        if not ts_file.exists():
            continue
        ts = parse_utc(ts_file.read_text().strip()).replace(tzinfo=None)
        if ts > due:
            late = (ts - due).total_seconds()
            out.append(f"student {s!r}, assignment {assignment!r}: "
                       f"submitted {late:.0f} s after the due date "
                       f"(late; nbgrader's late-penalty policy applies)")
    return out


def cmd_collect(args, g, url, ex) -> int:
    a = args.assignment
    extra = ["--before-duedate"] if args.before_duedate else []
    out = pipeline.nbgrader("collect", a, "--update", *extra,
                            grading_dir=g, db_url=url)
    n = len(grade.submissions(g, a))
    print(f"collected {a}: {n} submission(s) in {g / 'submitted'}")
    inbound = ex / COURSE / "inbound"
    counts: dict[str, int] = {}
    for p in inbound.glob(f"*+{a}+*"):
        counts[p.name.split("+")[0]] = counts.get(p.name.split("+")[0],
                                                  0) + 1
    for s, k in sorted(counts.items()):
        if k > 1:
            print(f"student {s!r}, assignment {a!r}: {k} submissions; "
                  f"collected the "
                  + ("latest before the due date" if args.before_duedate
                     else "latest"))
    for line in lateness(a, g, url):
        print(line)
    if args.verbose:
        print(out)
    return 0


def cmd_autograde(args, g, url, ex) -> int:
    res = grade.autograde(args.assignment, g, url, workers=args.workers,
                          only=args.student or None)
    print(f"autograded {args.assignment}: {len(res.graded)} graded, "
          f"{len(res.problems)} problem(s), {res.seconds:.1f} s")
    grade.save_json(res, g / f"autograde-{args.assignment}.json")
    return 1 if res.problems else 0


def cmd_feedback(args, g, url, ex) -> int:
    pipeline.nbgrader("generate_feedback", args.assignment, "--force",
                      grading_dir=g, db_url=url)
    print(f"feedback in {g / 'feedback'}")
    return 0


def cmd_export(args, g, url, ex) -> int:
    to = Path(args.to or g / "grades.csv").resolve()
    pipeline.nbgrader("export", f"--to={to}", grading_dir=g, db_url=url)
    print(f"grades exported to {to}")
    return 0


def cmd_report(args, g, url, ex) -> int:
    for line in grade.report(args.assignment, g, url):
        print(line)
    return 0


def cmd_check(args, g, url, ex) -> int:
    """Start a sandboxed kernel and show what it can reach."""
    from coursekit.selfcheck import run
    ok, lines = run()
    print("\n".join(lines))
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m coursekit",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--grading-dir")
    p.add_argument("--db-url")
    p.add_argument("--exchange")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("release", help="regenerate exercises/ (and "
                       "publish to the exchange)")
    r.add_argument("assignments", nargs="*")
    r.add_argument("--exchange", dest="exchange_release",
                   action="store_true")
    r.add_argument("--duedate", help="ISO date; UTC unless it says")
    r.add_argument("--release-dir", help="instead of exercises/ (tests)")
    c = sub.add_parser("collect", help="collect from the exchange")
    c.add_argument("assignment")
    c.add_argument("--before-duedate", action="store_true")
    c.add_argument("-v", "--verbose", action="store_true")
    a = sub.add_parser("autograde", help="grade every submission")
    a.add_argument("assignment")
    a.add_argument("--workers", type=int, default=1)
    a.add_argument("--student", action="append")
    f = sub.add_parser("feedback", help="generate feedback HTML")
    f.add_argument("assignment")
    e = sub.add_parser("export", help="export grades as CSV")
    e.add_argument("--to")
    rp = sub.add_parser("report", help="scores and failed cells")
    rp.add_argument("assignment")
    sub.add_parser("check", help="sandbox self-check")
    args = p.parse_args(argv)
    g, url, ex = _paths(args)
    try:
        return globals()[f"cmd_{args.cmd}"](args, g, url, ex)
    except (pipeline.NbgraderError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
