"""The instructor's workflow through ``python -m coursekit``, for real.

Release to nbgrader's exchange; three simulated students, each with their
own HOME and folder, run ``nbgrader fetch_assignment`` and ``nbgrader
submit``; one of them resubmits after the due date. Then collect,
autograde, feedback, export and report through the CLI, and check what
each student got, the late resubmission under both collection policies,
and that errors name the student, the assignment and the cell.
"""
import csv
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from coursekit import pipeline, simulate

pytestmark = pytest.mark.slow
A = "a01_mapping"
COURSE = "everything-is-a-mapping"
REPO = pipeline.REPO


def cli(*args, g, ex, db=None, check=True):
    extra = ["--db-url", db] if db else []
    proc = subprocess.run(
        [sys.executable, "-m", "coursekit", "--grading-dir", str(g),
         "--exchange", str(ex), *extra, *args],
        cwd=REPO, capture_output=True, text=True, timeout=900,
        env={**os.environ, "COURSE_CELL_TIMEOUT": "10",
             "PATH": str(Path(sys.executable).parent) + os.pathsep
             + os.environ["PATH"]})
    if check and proc.returncode not in (0, 1):
        raise AssertionError(f"coursekit {args} failed:\n{proc.stdout}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def student(name, home: Path, ex: Path, *args):
    """Run an nbgrader student command as `name`, in their own HOME."""
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), *args,
         f"--course={COURSE}", f"--Exchange.root={ex}"],
        cwd=home, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HOME": str(home), "USER": name,
             "COURSE_EXCHANGE": str(ex)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def answer(nb_path: Path, answers: dict):
    simulate.make_submission(nb_path, answers, nb_path)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the grading sandbox needs root (as in CI)")
    root = tmp_path_factory.mktemp("course")
    g, ex = root / "grading", root / "exchange"
    out = {"release": cli("release", A, "--exchange", "--release-dir",
                          str(root / "release"), g=g, ex=ex).stdout}
    src = REPO / "solutions" / A / f"{A}.ipynb"
    sol = simulate.solution_answers(src)
    no_bias = dict(sol, affine=sol["affine"].replace("X @ W.T + b",
                                                     "X @ W.T"))
    homes = {s: root / "home" / s for s in ("ana", "ben", "lea")}
    for s, home in homes.items():
        student(s, home, ex, "fetch_assignment", A)
        assert (home / A / f"{A}.ipynb").exists()
    answer(homes["ana"] / A / f"{A}.ipynb", sol)
    answer(homes["ben"] / A / f"{A}.ipynb", {})
    answer(homes["lea"] / A / f"{A}.ipynb", no_bias)
    for s, home in homes.items():
        student(s, home, ex, "submit", A, f"--student={s}")
    # the due date passes; lea fixes her answer and resubmits, late
    time.sleep(2.0)
    from nbgrader.api import Gradebook
    due = datetime.now(timezone.utc).replace(tzinfo=None)
    with Gradebook(f"sqlite:///{g}/gradebook.db") as gb:
        gb.update_or_create_assignment(A, duedate=due)
    time.sleep(2.0)
    answer(homes["lea"] / A / f"{A}.ipynb", sol)
    student("lea", homes["lea"], ex, "submit", A, "--student=lea")
    out["collect"] = cli("collect", A, g=g, ex=ex).stdout
    out["autograde"] = cli("autograde", A, g=g, ex=ex)
    out["feedback"] = cli("feedback", A, g=g, ex=ex).stdout
    out["export"] = cli("export", g=g, ex=ex).stdout
    out["report"] = cli("report", A, g=g, ex=ex).stdout
    # the other policy: the last submission before the due date
    g2 = root / "grading-ontime"
    db = f"sqlite:///{g}/gradebook.db"
    out["collect2"] = cli("collect", A, "--before-duedate", g=g2, ex=ex,
                          db=db).stdout
    return dict(root=root, g=g, g2=g2, ex=ex, out=out, homes=homes)


def test_release_published_to_the_exchange(course):
    outbound = course["ex"] / COURSE / "outbound" / A / f"{A}.ipynb"
    assert outbound.exists()
    text = outbound.read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text


def test_students_work_in_their_own_homes(course):
    for s, home in course["homes"].items():
        cache = home / ".local" / "share" / "jupyter" / "nbgrader_cache"
        assert (cache / COURSE).is_dir(), s
    inbound = sorted(p.name.split("+")[0] for p in
                     (course["ex"] / COURSE / "inbound").iterdir())
    assert inbound == ["ana", "ben", "lea", "lea"]


def test_collect_takes_latest_and_names_the_late_resubmission(course):
    out = course["out"]["collect"]
    assert "student 'lea', assignment 'a01_mapping': 2 submissions" in out
    assert "student 'lea', assignment 'a01_mapping': submitted" in out
    assert "after the due date" in out
    assert "student 'ana'" not in out.split("collected")[1].split(
        "2 submissions")[0]


def test_grades_in_the_csv_export(course):
    rows = {r["student_id"]: r for r in
            csv.DictReader(open(course["g"] / "grades.csv"))}
    assert float(rows["ana"]["score"]) == 9
    assert float(rows["ben"]["score"]) == 0
    assert float(rows["lea"]["score"]) == 9      # her late, fixed version
    assert float(rows["lea"]["late_submission_penalty"] or 0) == 0


def test_before_duedate_policy_collects_the_on_time_version(course):
    nb = course["g2"] / "submitted" / "lea" / A / f"{A}.ipynb"
    assert "X @ W.T + b" not in nb.read_text()   # the no-bias version
    assert "latest before the due date" in course["out"]["collect2"]


def test_report_names_student_assignment_and_cell(course):
    rep = course["out"]["report"]
    assert "student 'ana', assignment 'a01_mapping': 9 points" in rep
    assert ("student 'ben', assignment 'a01_mapping', cell 'test_affine':"
            in rep)
    assert "not implemented" in rep


def test_feedback_for_every_student(course):
    for s in ("ana", "ben", "lea"):
        assert list((course["g"] / "feedback" / s / A).glob("*.html")), s


def test_autograde_exit_status_and_summary(course):
    proc = course["out"]["autograde"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 graded, 0 problem(s)" in proc.stdout
