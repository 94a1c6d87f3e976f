"""Autograding cost: per submission against the floor, and parallel speed-up.

1. Per submission: every assignment in solutions/ is autograded (the full
   sandboxed pipeline, SQLite, one worker) on K copies of its solution;
   the *floor* is the same pipeline on a trivial assignment whose notebook
   is one graded cell (``x = 1``). Printed: seconds per submission and the
   ratio to the floor (target: <= 1.5).
2. Scale: N simulated submissions of assignment 1 (the solution, the stub
   and the simulated mistakes, in turn) graded sequentially and by two
   workers, both on the same private PostgreSQL server; printed: wall
   times and the speed-up (target: >= 1.7 on 2 cores).

    python bench/bench_grading.py [--k 4] [--n 100] [--skip-scale]
                                  [--skip-per-submission]
                                  [--only a04_optimizers,a06_practice]

Runs as root (the sandbox drops each kernel to its own uid), in a
temporary folder (sources, release, grading folders, a private
PostgreSQL): nothing of the repository's _grading/ is touched. Timings
depend on the machine's load: the output states the load average before,
between and after the measurements.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from coursekit import autograde, pipeline, simulate  # noqa: E402
from coursekit.config import CourseConfig  # noqa: E402
from coursekit.pg import PrivateServer  # noqa: E402

FLOOR = "bench_floor"


def floor_notebook(path: Path) -> None:
    cell = new_code_cell("x = 1")
    cell.metadata["nbgrader"] = dict(grade=True, grade_id="test_x",
                                     locked=True, points=1, solution=False,
                                     task=False, schema_version=3)
    nb = new_notebook(cells=[cell], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3",
        "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def course(tmp: Path) -> Path:
    """A source folder: solutions/ plus the floor assignment."""
    src = tmp / "source"
    shutil.copytree(REPO / "solutions", src)
    floor_notebook(src / FLOOR / f"{FLOOR}.ipynb")
    return src


def config(tmp: Path, g: Path, src: Path, **kw) -> CourseConfig:
    return CourseConfig.from_env(grading_dir=g, source_dir=str(src),
                                 release_dir=str(tmp / "release"), **kw)


def students(a: str, src: Path, release: Path, n: int) -> dict:
    (nb,) = sorted((src / a).glob("*.ipynb"))
    sol = simulate.solution_answers(nb)
    pool = [sol, {}]
    try:
        from test_assignments import apply_edit
        cases = importlib.import_module(f"assignment_cases.{a}").STUDENTS
        for name, case in cases.items():
            ans = dict(sol)
            for gid, edit in case["edit"].items():
                ans[gid] = apply_edit(sol[gid], edit, name)
            pool.append(ans)
    except ModuleNotFoundError:
        pass
    return {f"s{i:03d}": pool[i % len(pool)] for i in range(n)}


def submit(g: Path, a: str, src: Path, release: Path, answers: dict):
    (nb,) = sorted((src / a).glob("*.ipynb"))
    for s, ans in answers.items():
        simulate.make_submission(release / a / nb.name, ans,
                                 g / "submitted" / s / a / nb.name)


def per_submission(tmp, src, k: int, only=None) -> dict:
    """Seconds per submission, per assignment. The floor is graded three
    times: once to warm the machine's caches (discarded: the first run
    of anything reads Python, torch and nbgrader from disk), then before
    and after the assignments; its cost is the faster of the two."""
    out = {}
    release = tmp / "release"
    names = [FLOOR, FLOOR, *sorted(p.name for p in (REPO / "solutions")
                                   .iterdir() if p.is_dir()
                                   and (not only or p.name in only)), FLOOR]
    floors = []
    for run, a in enumerate(names):
        g = tmp / f"per-{run}-{a}"
        g.mkdir()
        cfg = config(tmp, g, src, db_url=None, workers=1)
        pipeline.generate_release(a, release_dir=release, cfg=cfg)
        (nb,) = sorted((src / a).glob("*.ipynb"))
        sol = simulate.solution_answers(nb)
        submit(g, a, src, release, {f"s{i}": sol for i in range(k)})
        r = autograde.autograde(a, cfg=cfg, log=lambda *x: None)
        assert not r.problems, r.problems
        if a == FLOOR:
            floors.append(r.seconds / k)
        else:
            out[a] = r.seconds / k
    print("floor runs (warm-up, before, after): "
          + ", ".join(f"{t:.2f} s" for t in floors))
    out[FLOOR] = min(floors[1:])
    return out


def scale(tmp, src, n: int) -> dict:
    a = "a01_mapping"
    release = tmp / "release"
    d = tempfile.mkdtemp(prefix="ck-pg-bench-")
    res = {}
    with PrivateServer(d) as pg:
        for label, workers in (("sequential", 1), ("2 workers", 2)):
            g = tmp / f"scale-{workers}"
            g.mkdir()
            url = pg.reset(f"bench{workers}")
            cfg = config(tmp, g, src, db_url=url, workers=workers)
            pipeline.generate_release(a, release_dir=release, cfg=cfg)
            submit(g, a, src, release, students(a, src, release, n))
            t0 = time.perf_counter()
            r = autograde.autograde(a, cfg=cfg, log=lambda *x: None)
            res[label] = time.perf_counter() - t0
            assert len(r.graded) == n, r.problems
            res[f"scores {label}"] = pipeline.scores(url, a)
    shutil.rmtree(d, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-per-submission", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated "
                    "assignments to grade (default: all of solutions/)")
    args = ap.parse_args()
    only = {a for a in args.only.split(",") if a}
    unknown = only - {p.name for p in (REPO / "solutions").iterdir()}
    if unknown:
        sys.exit(f"bench_grading: --only: no such assignment "
                 f"{', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        sys.exit("bench_grading: run as root (the sandbox needs it)")
    tmp = Path(tempfile.mkdtemp(prefix="ck-bench-"))
    try:
        src = course(tmp)
        print(f"load average before: {os.getloadavg()[0]:.2f} "
              f"({os.cpu_count()} cores)")
        if not args.skip_per_submission:
            per = per_submission(tmp, src, args.k, only)
            floor = per.pop(FLOOR)
            print(f"floor (one-cell notebook, sandboxed): {floor:.2f} s "
                  f"per submission")
            for a, t in per.items():
                flag = "ok" if t <= 1.5 * floor else "ABOVE TARGET 1.5"
                print(f"{a}: {t:.2f} s per submission, {t / floor:.2f}x "
                      f"the floor [{flag}]")
        if not args.skip_scale:
            print(f"load average: {os.getloadavg()[0]:.2f}")
            res = scale(tmp, src, args.n)
            same = res.pop("scores sequential") == res.pop(
                "scores 2 workers")
            sp = res["sequential"] / res["2 workers"]
            print(f"{args.n} submissions of a01_mapping on PostgreSQL: "
                  f"sequential {res['sequential']:.1f} s, 2 workers "
                  f"{res['2 workers']:.1f} s, speed-up {sp:.2f}x "
                  f"[{'ok' if sp >= 1.7 else 'BELOW TARGET 1.7'}]; "
                  f"identical grades: {same}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
