"""A class run that finishes: dead workers, wall-clock limit, resume.

The grading worker for one student kills itself with SIGKILL on every
attempt (as the OOM killer would), another's only on the first attempt
(the test-only hooks of coursekit.autograde). The run must grade everyone
else, retry each dead submission once, report the one that kills its
worker twice by student and assignment, and store what it has. A rerun
grades only what is new, changed or failed.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from coursekit import autograde, pipeline, simulate
from coursekit.config import CourseConfig

pytestmark = pytest.mark.slow
A = "a01_mapping"
REPO = pipeline.REPO
SRC = REPO / "solutions" / A / f"{A}.ipynb"
REL = REPO / "exercises" / A / f"{A}.ipynb"


def write(g: Path, student: str, answers: dict):
    simulate.make_submission(REL, answers, g / "submitted" / student / A /
                             f"{A}.ipynb")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the grading sandbox needs root (as in CI)")
    g = Path(tempfile.mkdtemp(prefix="ck-classrun-"))
    sol = simulate.solution_answers(SRC)
    for s, ans in (("ana", sol), ("ben", {}), ("kim", sol), ("lea", sol)):
        write(g, s, ans)
    cfg = CourseConfig.from_env(grading_dir=g, db_url=None, cell_timeout=10)
    logs = []
    os.environ[autograde.TEST_KILL] = "kim"
    os.environ[autograde.TEST_KILL_ONCE] = "lea"
    try:
        first = autograde.autograde(A, cfg=cfg, log=logs.append)
    finally:
        os.environ.pop(autograde.TEST_KILL)
        os.environ.pop(autograde.TEST_KILL_ONCE)
    out = dict(g=g, cfg=cfg, sol=sol, first=first, logs=logs,
               scores1=pipeline.scores(cfg.db_url, A))
    out["second"] = autograde.autograde(A, cfg=cfg, log=logs.append)
    out["scores2"] = pipeline.scores(cfg.db_url, A)
    write(g, "ben", sol)                 # ben resubmits, fixed
    out["third"] = autograde.autograde(A, cfg=cfg, log=logs.append)
    out["scores3"] = pipeline.scores(cfg.db_url, A)
    yield out
    shutil.rmtree(g, ignore_errors=True)


def test_dead_worker_loses_only_its_submission(run):
    r = run["first"]
    assert r.graded == ["ana", "ben", "lea"]
    assert sorted(r.retried) == ["kim", "lea"]
    (p,) = r.problems
    assert str(p).startswith("student 'kim', assignment 'a01_mapping'")
    assert "died twice (signal 9)" in p.message
    sc = run["scores1"]
    assert sc["ana"]["total"] == 9 and sc["lea"]["total"] == 9
    assert sc["ben"]["total"] == 0
    assert any("'lea'" in ln and "retrying once" in ln for ln in run["logs"])


def test_results_are_stored_as_they_come(run):
    import json
    state = json.loads(autograde.state_path(run["cfg"], A).read_text())
    assert {s: v["status"] for s, v in state.items()} == {
        "ana": "graded", "ben": "graded", "kim": "graded", "lea": "graded"}


def test_rerun_resumes(run):
    r = run["second"]
    assert r.graded == ["kim"], r
    assert sorted(r.skipped) == ["ana", "ben", "lea"]
    assert run["scores2"]["kim"]["total"] == 9
    assert run["scores2"]["ana"] == run["scores1"]["ana"]


def test_rerun_grades_a_changed_submission(run):
    r = run["third"]
    assert r.graded == ["ben"] and sorted(r.skipped) == ["ana", "kim", "lea"]
    assert run["scores3"]["ben"]["total"] == 9


def test_wall_clock_limit_per_submission(run):
    g, sol = run["g"], run["sol"]
    write(g, "tom", dict(sol, affine="while True:\n    pass\n"))
    cfg = run["cfg"].with_(cell_timeout=300, submission_timeout=20)
    r = autograde.autograde(A, cfg=cfg, only=["tom"], log=lambda *a: None)
    (p,) = r.problems
    assert p.student == "tom"
    assert "wall-clock limit of 20 s per submission" in p.message
    assert r.seconds < 120
    assert pipeline.scores(cfg.db_url, A)["ana"]["total"] == 9


def test_sqlite_refuses_parallel_workers(tmp_path):
    with pytest.raises(ValueError, match="PostgreSQL"):
        autograde.autograde(A, tmp_path, workers=2)
