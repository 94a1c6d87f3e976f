"""Parallel and sharded grading on PostgreSQL give exactly the sequential
grades.

A private PostgreSQL server is started on loopback (coursekit.pg, from
Debian's postgresql package, as .ci/run installs it). The same class of
submissions -- for two assignments (CLASS): the solution, the stub and
simulated mistakes (all of assignment 1's, a few of the second's), plus
a few hostile ones for assignment 1 -- is graded
once sequentially on SQLite and once by two workers on PostgreSQL; every
student's score in every test cell, the reported problems and the CSV
export must be identical. Then two grader processes (``python -m
coursekit autograde --shard 1/2`` and ``--shard 2/2``, as two machines
would run them), each in its own working directory with its own copy of
the submissions, grade assignment 1 at the same time into one fresh
PostgreSQL gradebook: the grades must be the sequential ones.
"""
import csv
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from coursekit import grade, pipeline, simulate
from coursekit.config import shard_of
from coursekit.pg import PrivateServer

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
from corpus import corpus  # noqa: E402

pytestmark = pytest.mark.slow
REPO = pipeline.REPO
# Equal grades whatever the workers and the database are a property of
# the pipeline, not of an assignment's checks (tests/test_assignments.py
# grades every assignment's simulated class): two assignments in one
# gradebook, the first with all its simulated mistakes and the hostile
# submissions, the second with its solution, stub and MISTAKES_OF_SECOND
# mistakes, keep this module to a few minutes.
CLASS = ("a01_mapping", "a03_backprop")
MISTAKES_OF_SECOND = 2
HOSTILE = ("exception", "patches_ipython", "deleted_test_cells",
           "lies_with_objects", "corrupt_json", "misnamed_file")


EXPECTED = {}   # student -> the total the sequential run must give


def build_class(g: Path) -> dict:
    """Write every submission under g/submitted; return assignment -> n.
    Fills EXPECTED (from the points metadata and the hostile corpus)."""
    from assignment_cases import expected_score
    counts = {}
    for a in CLASS:
        (src,) = sorted((REPO / "solutions" / a).glob("*.ipynb"))
        rel = REPO / "exercises" / a / src.name
        sol = simulate.solution_answers(src)
        students = {f"{a}-perfect": sol, f"{a}-stub": {}}
        try:
            cases = importlib.import_module(
                f"assignment_cases.{a}").STUDENTS
        except ModuleNotFoundError:
            cases = {}
        if a != CLASS[0]:
            cases = dict(list(cases.items())[:MISTAKES_OF_SECOND])
        from test_assignments import apply_edit
        for name, case in cases.items():
            answers = dict(sol)
            for gid, edit in case["edit"].items():
                answers[gid] = apply_edit(sol[gid], edit, name)
            students[f"{a}-{name}"] = answers
        source = nbformat.read(str(src), as_version=4)
        EXPECTED[f"{a}-perfect"] = expected_score(source, {})
        EXPECTED[f"{a}-stub"] = 0.0
        for name, case in cases.items():
            EXPECTED[f"{a}-{name}"] = expected_score(source, case)
        for name, answers in students.items():
            simulate.make_submission(rel, answers, g / "submitted" / name /
                                     a / src.name)
        if a == "a01_mapping":
            release = nbformat.read(str(rel), as_version=4)
            hostile = corpus(a, release, sol, dict(
                secret_value="not-a-secret", secret=[], targets=[]),
                forbid=[], full=True)
            for name in HOSTILE:
                EXPECTED[f"{a}-{name}"] = hostile[name]["score"]
                made = hostile[name]["make"]()
                folder = g / "submitted" / f"{a}-{name}" / a
                folder.mkdir(parents=True)
                if made[0] == "nb":
                    nbformat.write(made[1], str(folder / src.name))
                else:
                    (folder / made[1]).write_bytes(made[2])
        counts[a] = len(list((g / "submitted").glob(f"*/{a}")))
    return counts


@pytest.fixture(scope="module")
def postgres():
    if os.geteuid() != 0:
        pytest.skip("the grading sandbox needs root (as in CI)")
    d = tempfile.mkdtemp(prefix="ck-pg-")   # not under pytest's 0700 tmp
    server = PrivateServer(d)
    try:
        server.start()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def both(postgres, tmp_path_factory):
    seq = tmp_path_factory.mktemp("seq")
    par = tmp_path_factory.mktemp("par")
    build_class(seq)
    shutil.copytree(seq / "submitted", par / "submitted")
    out = {}
    os.environ["COURSE_CELL_TIMEOUT"] = "10"
    try:
        for label, g, url, workers in (
                ("seq", seq, f"sqlite:///{seq}/gradebook.db", 1),
                ("par", par, postgres.url, 2)):
            results, scores = {}, {}
            for a in CLASS:
                results[a] = grade.autograde(a, g, url, workers=workers)
                scores[a] = pipeline.scores(url, a)
            pipeline.nbgrader("export", f"--to={g / 'grades.csv'}",
                              grading_dir=g, db_url=url)
            out[label] = dict(results=results, scores=scores, url=url,
                              csv=g / "grades.csv", dir=g)
    finally:
        os.environ.pop("COURSE_CELL_TIMEOUT", None)
    return out


def test_parallel_postgres_grades_equal_sequential_sqlite(both):
    assert both["par"]["url"].startswith("postgresql")
    for a in CLASS:
        seq, par = both["seq"]["scores"][a], both["par"]["scores"][a]
        assert seq, f"nothing graded for {a}"
        assert seq == par


def test_the_class_is_graded_as_expected(both):
    got = {s: t["total"] for a in CLASS
           for s, t in both["seq"]["scores"][a].items()}
    wrong = {s: (got.get(s), want) for s, want in EXPECTED.items()
             if want is not None and got.get(s) != want}
    assert not wrong, f"(got, expected) per student: {wrong}"


def test_same_problems_reported(both):
    for a in CLASS:
        seq = sorted(map(str, both["seq"]["results"][a].problems))
        par = sorted(map(str, both["par"]["results"][a].problems))
        assert seq == par


def test_same_csv_export(both):
    def rows(path):
        return sorted((r["assignment"], r["student_id"], r["score"],
                       r["max_score"])
                      for r in csv.DictReader(open(path)))
    assert rows(both["seq"]["csv"]) == rows(both["par"]["csv"])


A = "a01_mapping"


@pytest.fixture(scope="module")
def shards(postgres, both):
    url = postgres.reset("shards")
    base = Path(tempfile.mkdtemp(prefix="ck-shards-"))
    dirs = [base / "grader1", base / "grader2"]
    for d in dirs:
        for sub in (both["seq"]["dir"] / "submitted").glob(f"*/{A}"):
            shutil.copytree(sub, d / "submitted" / sub.parent.name / A)
    # the assignment is registered once, before the graders start
    pipeline.generate_release(A, dirs[0], base / "release", db_url=url)
    env = {**os.environ, "COURSE_CELL_TIMEOUT": "10",
           "PATH": str(Path(sys.executable).parent) + os.pathsep
           + os.environ["PATH"]}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "coursekit", "--grading-dir", str(d),
         "--db-url", url, "autograde", A, "--shard", f"{i}/2"],
        cwd=d, env={**env, "PYTHONPATH": str(REPO)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i, d in enumerate(dirs, 1)]
    outs = [p.communicate(timeout=1800) for p in procs]
    export = dirs[1] / "grades.csv"
    pipeline.nbgrader("export", f"--to={export}", grading_dir=dirs[1],
                      db_url=url)
    yield dict(url=url, dirs=dirs, outs=outs,
               codes=[p.returncode for p in procs],
               scores=pipeline.scores(url, A), csv=export)
    shutil.rmtree(base, ignore_errors=True)


def test_two_sharded_graders_give_the_sequential_grades(shards, both):
    assert shards["codes"] in ([0, 0], [0, 1], [1, 0], [1, 1]), \
        shards["outs"]
    assert shards["scores"] == both["seq"]["scores"][A]


def test_each_shard_grades_only_its_students(shards):
    graded = []
    for i, d in enumerate(shards["dirs"], 1):
        mine = sorted(p.parent.parent.name for p in
                      (d / "autograded").glob(f"*/{A}/*.ipynb"))
        assert mine, f"shard {i} graded nothing"
        assert all(shard_of(s, 2) == i for s in mine), (i, mine)
        graded += mine
        assert f"(shard {i}/2)" in shards["outs"][i - 1][0]
    assert len(graded) == len(set(graded))


def test_one_export_holds_the_whole_class(shards, both):
    def rows(path):
        return sorted((r["student_id"], r["score"])
                      for r in csv.DictReader(open(path))
                      if r["assignment"] == A
                      and r["student_id"].startswith(f"{A}-"))
    assert rows(shards["csv"]) == rows(both["seq"]["csv"])


def test_sqlite_refuses_parallel_workers(tmp_path):
    with pytest.raises(ValueError, match="PostgreSQL"):
        grade.autograde("a01_mapping", tmp_path, workers=2)
