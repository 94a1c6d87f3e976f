"""``python -m coursekit``: the instructor's workflow over nbgrader.

    python -m coursekit release [A ...] [--exchange] [--duedate ISO]
    python -m coursekit collect A [--before-duedate]
    python -m coursekit autograde A [--workers N] [--shard i/N] [--student S]
                                    [--no-resume] [--submission-timeout S]
    python -m coursekit feedback A
    python -m coursekit release_feedback A
    python -m coursekit export [--to FILE]
    python -m coursekit report A
    python -m coursekit check
    python -m coursekit heldout --out FILE (--from PATH [--labels IDX] |
                                --public --jitter) [--n N] [--seed S]

Global options (before the command) choose the grading folder, the
gradebook, the exchange and the roster; they default to
nbgrader_config.py's (``_grading/``, SQLite in it, ``_grading/exchange``,
the system's users) and can also be set with COURSE_GRADING_DIR,
COURSE_DB_URL, COURSE_EXCHANGE, COURSE_ROSTER; ``--a06-heldout FILE``
(COURSE_A06_HELDOUT) names a06's private held-out digits
(see :mod:`coursekit.config`, :mod:`coursekit.heldout`).

One module per stage: :mod:`coursekit.release` (release,
release_feedback), :mod:`coursekit.collect` (from the exchange, refusing
what is not what it claims), :mod:`coursekit.autograde` (the class run),
:mod:`coursekit.feedback`, :mod:`coursekit.export`. Exit status is 1 when
any submission had a problem (each is printed, naming the student, the
assignment and the file or cell); the others are still handled.
"""
from __future__ import annotations

import argparse
import sys

from coursekit import autograde as ag
from coursekit import collect as col
from coursekit import export as ex
from coursekit import feedback as fb
from coursekit import pipeline
from coursekit import release as rel
from coursekit.config import CourseConfig


def cmd_release(args, cfg) -> int:
    rel.release(cfg, args.assignments, exchange=args.exchange_release,
                duedate=args.duedate, release_dir=args.release_dir)
    return 0


def cmd_collect(args, cfg) -> int:
    a = args.assignment
    res = col.collect(cfg, a, before_duedate=args.before_duedate)
    n = len(ag.submissions(cfg.grading_dir, a))
    print(f"collected {a}: {len(res.collected)} new or updated, "
          f"{len(res.unchanged)} unchanged, {n} submission(s) in "
          f"{cfg.path('submitted')}")
    for s, k in sorted(res.counts.items()):
        if k > 1:
            print(f"student {s!r}, assignment {a!r}: {k} submissions; "
                  f"collected the "
                  + ("latest before the due date" if args.before_duedate
                     else "latest"))
    for line in res.lines():
        print(line)
    return 1 if res.refused else 0


def cmd_autograde(args, cfg) -> int:
    res = ag.autograde(args.assignment, cfg=cfg, only=args.student or None,
                       resume=not args.no_resume)
    shard = f" (shard {cfg.shard[0]}/{cfg.shard[1]})" if cfg.shard else ""
    print(f"autograded {args.assignment}{shard}: {len(res.graded)} graded, "
          f"{len(res.skipped)} unchanged since the last run, "
          f"{len(res.problems)} problem(s), {res.seconds:.1f} s")
    name = f"autograde-{args.assignment}" + (
        f"-shard{cfg.shard[0]}of{cfg.shard[1]}" if cfg.shard else "")
    ag.save_json(res, cfg.grading_dir / f"{name}.json")
    return 1 if res.problems else 0


def cmd_feedback(args, cfg) -> int:
    out = fb.generate(cfg, args.assignment)
    print(f"feedback for {args.assignment}: {len(out['pages'])} page(s) in "
          f"{cfg.path('feedback')}, of which {len(out['notes'])} note(s) "
          f"for submissions that could not be graded")
    return 0


def cmd_release_feedback(args, cfg) -> int:
    rel.release_feedback(cfg, args.assignment)
    print(f"feedback for {args.assignment} released to the exchange "
          f"{cfg.exchange}: students run `nbgrader fetch_feedback "
          f"{args.assignment}`")
    return 0


def cmd_export(args, cfg) -> int:
    to = ex.export(cfg, args.to)
    print(f"grades exported to {to}")
    return 0


def cmd_report(args, cfg) -> int:
    for line in ag.report(args.assignment, cfg):
        print(line)
    return 0


def cmd_check(args, cfg) -> int:
    """Start a sandboxed kernel and show what it can reach."""
    from coursekit.selfcheck import run
    ok, lines = run(cfg.env())
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_heldout(args, cfg) -> int:
    """Write a06's private held-out digits (coursekit.heldout.make)."""
    from coursekit import heldout
    return heldout.make(args.out, src=args.src, labels=args.labels,
                        public=args.public, jitter_digits=args.jitter,
                        n=args.n, seed=args.seed,
                        calibrate=not args.no_calibrate)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m coursekit",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--grading-dir")
    p.add_argument("--db-url")
    p.add_argument("--exchange")
    p.add_argument("--roster", help="student_id user-or-uid per line")
    p.add_argument("--a06-heldout", metavar="FILE",
                   help="a06's private held-out digits (.npz), made by "
                   "the heldout command")
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
    a = sub.add_parser("autograde", help="grade every submission")
    a.add_argument("assignment")
    a.add_argument("--workers", type=int)
    a.add_argument("--shard", help="i/N: grade the i-th of N shards")
    a.add_argument("--student", action="append")
    a.add_argument("--no-resume", action="store_true",
                   help="regrade unchanged submissions too")
    a.add_argument("--submission-timeout", type=float,
                   help="wall-clock seconds per submission (900)")
    f = sub.add_parser("feedback", help="generate feedback HTML")
    f.add_argument("assignment")
    rf = sub.add_parser("release_feedback",
                        help="return feedback to the students")
    rf.add_argument("assignment")
    e = sub.add_parser("export", help="export grades as CSV")
    e.add_argument("--to")
    rp = sub.add_parser("report", help="scores and failed cells")
    rp.add_argument("assignment")
    sub.add_parser("check", help="sandbox self-check")
    h = sub.add_parser("heldout", help="write a06's private held-out "
                       "digits (an .npz for COURSE_A06_HELDOUT)")
    h.add_argument("--out", required=True, help="the .npz to write, "
                   "outside the repository (mode 600)")
    h.add_argument("--from", dest="src", metavar="PATH",
                   help="your own digits: an .npz with X and y, an IDX "
                   "image file (with --labels), or a folder <label>/*.png")
    h.add_argument("--labels", metavar="IDX",
                   help="the IDX labels file of --from IDX images")
    h.add_argument("--public", action="store_true",
                   help="MNIST's public test digits (needs --jitter)")
    h.add_argument("--jitter", action="store_true",
                   help="a random affine jitter per digit (secret seed)")
    h.add_argument("--n", type=int, help="a random subset of N digits")
    h.add_argument("--seed", type=int, help="the subset's and the "
                   "jitter's seed (default: fresh and secret, not stored)")
    h.add_argument("--no-calibrate", action="store_true",
                   help="skip measuring the reference solution on them")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = CourseConfig.from_env(
            grading_dir=args.grading_dir, db_url=args.db_url,
            exchange=args.exchange, roster=args.roster,
            a06_heldout=args.a06_heldout,
            workers=getattr(args, "workers", None),
            shard=getattr(args, "shard", None),
            submission_timeout=getattr(args, "submission_timeout", None))
        cfg.grading_dir.mkdir(parents=True, exist_ok=True)
        return globals()[f"cmd_{args.cmd}"](args, cfg)
    except (pipeline.NbgraderError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
