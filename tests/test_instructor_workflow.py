"""The instructor's workflow through ``python -m coursekit``, for real.

Release to nbgrader's exchange; four simulated students, each with their
own Unix uid (the roster maps ids to uids), HOME and folder, run
``nbgrader fetch_assignment`` and ``nbgrader submit``. A hostile class:
ben also submits a stub in ana's name; lea resubmits after the due date
and back-dates it (folder name, ``timestamp.txt``, mtimes); kim hands in a
symlink to the solutions. Then collect, autograde, feedback, export,
report and release_feedback through the CLI, and check what each student
got (ana's grade untouched by ben, lea late under both collection
policies, kim 0 with a note), that errors name the student, the
assignment and the cell, and that students fetch their own feedback.
"""
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from coursekit import pipeline, simulate

pytestmark = pytest.mark.slow
A = "a01_mapping"
COURSE = "everything-is-a-mapping"
REPO = pipeline.REPO
UIDS = {"ana": 4201, "ben": 4202, "lea": 4203, "kim": 4204}
ROSTER = {}


def cli(*args, g, ex, db=None, check=True):
    extra = ["--db-url", db] if db else []
    proc = subprocess.run(
        [sys.executable, "-m", "coursekit", "--grading-dir", str(g),
         "--exchange", str(ex), "--roster", str(ROSTER["path"]), *extra,
         *args],
        cwd=REPO, capture_output=True, text=True, timeout=900,
        env={**os.environ, "COURSE_CELL_TIMEOUT": "10",
             "PATH": str(Path(sys.executable).parent) + os.pathsep
             + os.environ["PATH"]})
    if check and proc.returncode not in (0, 1):
        raise AssertionError(f"coursekit {args} failed:\n{proc.stdout}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def as_user(name, home: Path, cmd, **kw):
    """Run ``cmd`` as the student's own uid, in their own HOME."""
    uid = UIDS[name]
    if not home.exists():
        home.mkdir(parents=True)
        os.chown(home, uid, uid)
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
         "--", *cmd], cwd=home, capture_output=True, text=True,
        timeout=300, env={"PATH": os.environ["PATH"], "HOME": str(home),
                          "USER": name, "LANG": "C.UTF-8", **kw})


def student(name, home: Path, ex: Path, *args):
    """Run an nbgrader student command as `name`."""
    proc = as_user(name, home, [
        str(Path(sys.executable).parent / "nbgrader"), *args,
        f"--course={COURSE}", f"--Exchange.root={ex}"],
        PYDEVD_DISABLE_FILE_VALIDATION="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def inbound(ex: Path) -> Path:
    return ex / COURSE / "inbound"


def newest(ex: Path, student_id: str) -> Path:
    return max(inbound(ex).glob(f"{student_id}+{A}+*"),
               key=lambda p: p.stat().st_ctime)


def answer(nb_path: Path, answers: dict):
    simulate.make_submission(nb_path, answers, nb_path)
    st = nb_path.parent.stat()
    os.chown(nb_path, st.st_uid, st.st_uid)


BACKDATE = """
import os, sys
folder, old = sys.argv[1], sys.argv[2]
base = folder.rsplit("+", 2)[0]
forged = base + "+" + old + "+0000"
os.rename(folder, forged)
with open(os.path.join(forged, "timestamp.txt"), "w") as fh:
    fh.write(old)
for name in os.listdir(forged):
    os.utime(os.path.join(forged, name), (946684800, 946684800))
os.utime(forged, (946684800, 946684800))
"""

SYMLINK = """
import os, sys
inbound, target, stamp = sys.argv[1:4]
d = os.path.join(inbound, "kim+a01_mapping+" + stamp + "+k1m")
os.mkdir(d)
os.symlink(target, os.path.join(d, "a01_mapping.ipynb"))
open(os.path.join(d, "timestamp.txt"), "w").write(stamp)
"""


@pytest.fixture(scope="module")
def course():
    if os.geteuid() != 0:
        pytest.skip("the grading sandbox and the students' uids need root "
                    "(as in CI)")
    root = Path(tempfile.mkdtemp(prefix="ck-workflow-"))
    os.chmod(root, 0o755)            # students reach their homes
    ROSTER["path"] = root / "roster.txt"
    ROSTER["path"].write_text("".join(f"{s} {u}\n"
                                      for s, u in UIDS.items()))
    g, ex = root / "grading", root / "exchange"
    out = {"release": cli("release", A, "--exchange", "--release-dir",
                          str(root / "release"), g=g, ex=ex).stdout}
    src = REPO / "solutions" / A / f"{A}.ipynb"
    sol = simulate.solution_answers(src)
    no_bias = dict(sol, affine=sol["affine"].replace("X @ W.T + b",
                                                     "X @ W.T"))
    (root / "home").mkdir()
    os.chmod(root / "home", 0o755)
    homes = {s: root / "home" / s for s in ("ana", "ben", "lea", "kim")}
    for s in ("ana", "ben", "lea"):
        home = homes[s]
        student(s, home, ex, "fetch_assignment", A)
        assert (home / A / f"{A}.ipynb").exists()
    answer(homes["ana"] / A / f"{A}.ipynb", sol)
    answer(homes["ben"] / A / f"{A}.ipynb", {})
    answer(homes["lea"] / A / f"{A}.ipynb", no_bias)
    for s in ("ana", "ben", "lea"):
        student(s, homes[s], ex, "submit", A, f"--student={s}")
    # ben hands in his stub once more, in ana's name
    time.sleep(1.1)
    student("ben", homes["ben"], ex, "submit", A, "--student=ana")
    # kim hands in a symlink to the solutions
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    made = as_user("kim", homes["kim"], [sys.executable, "-c", SYMLINK,
                                         str(inbound(ex)), str(src), stamp])
    assert made.returncode == 0, made.stderr
    # the due date passes; lea fixes her answer, resubmits late, and
    # back-dates her late submission to before the due date
    time.sleep(2.0)
    from nbgrader.api import Gradebook
    due = datetime.now(timezone.utc).replace(tzinfo=None)
    with Gradebook(f"sqlite:///{g}/gradebook.db") as gb:
        gb.update_or_create_assignment(A, duedate=due)
    time.sleep(2.0)
    answer(homes["lea"] / A / f"{A}.ipynb", sol)
    student("lea", homes["lea"], ex, "submit", A, "--student=lea")
    old = (due - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    forged = as_user("lea", homes["lea"], [sys.executable, "-c", BACKDATE,
                                           str(newest(ex, "lea")), old])
    assert forged.returncode == 0, forged.stderr
    out["collect"] = cli("collect", A, g=g, ex=ex).stdout
    out["autograde"] = cli("autograde", A, g=g, ex=ex)
    out["feedback"] = cli("feedback", A, g=g, ex=ex).stdout
    out["export"] = cli("export", g=g, ex=ex).stdout
    out["report"] = cli("report", A, g=g, ex=ex).stdout
    out["release_feedback"] = cli("release_feedback", A, g=g, ex=ex)
    for s in ("ana", "ben"):
        out[f"fetch_feedback_{s}"] = as_user(s, homes[s], [
            str(Path(sys.executable).parent / "nbgrader"), "fetch_feedback",
            A, f"--course={COURSE}", f"--Exchange.root={ex}",
            f"--student={s}"])
    # the other policy: the last submission before the due date
    g2 = root / "grading-ontime"
    db = f"sqlite:///{g}/gradebook.db"
    out["collect2"] = cli("collect", A, "--before-duedate", g=g2, ex=ex,
                          db=db).stdout
    yield dict(root=root, g=g, g2=g2, ex=ex, out=out, homes=homes, due=due)
    shutil.rmtree(root, ignore_errors=True)


def test_release_published_to_the_exchange(course):
    outbound = course["ex"] / COURSE / "outbound" / A / f"{A}.ipynb"
    assert outbound.exists()
    text = outbound.read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text


def test_students_work_in_their_own_homes(course):
    for s in ("ana", "ben", "lea"):          # kim never ran nbgrader
        home = course["homes"][s]
        cache = home / ".local" / "share" / "jupyter" / "nbgrader_cache"
        assert (cache / COURSE).is_dir(), s
    names = sorted(p.name.split("+")[0] for p in
                   inbound(course["ex"]).iterdir())
    assert names == ["ana", "ana", "ben", "kim", "lea", "lea"]


def test_collect_takes_latest_and_names_the_late_resubmission(course):
    out = course["out"]["collect"]
    assert "student 'lea', assignment 'a01_mapping': 2 submissions" in out
    assert "student 'lea', assignment 'a01_mapping': submitted" in out
    assert "after the due date" in out
    assert "student 'ana', assignment 'a01_mapping': 2 submissions" \
        not in out


def test_submission_in_a_classmates_name_is_refused(course):
    out = course["out"]["collect"]
    assert ("student 'ana', assignment 'a01_mapping': submission" in out
            and "uid 4202" in out and "refused" in out), out
    nb = course["g"] / "submitted" / "ana" / A / f"{A}.ipynb"
    assert "X @ W.T + b" in nb.read_text()        # ana's own work


def test_back_dated_submission_is_late_by_the_exchange_clock(course):
    out = course["out"]["collect"]
    assert "timestamp.txt says" in out and "exchange's time is used" in out
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course['g']}/gradebook.db") as gb:
        sub = gb.find_submission(A, "lea")
        assert sub.timestamp > course["due"]
        assert sub.total_seconds_late > 0


def test_symlink_to_the_solutions_is_not_collected(course):
    out = course["out"]["collect"]
    assert "student 'kim', assignment 'a01_mapping': 'a01_mapping.ipynb' " \
        "is a symlink; not collected" in out
    folder = course["g"] / "submitted" / "kim" / A
    assert not any(p.is_symlink() for p in folder.rglob("*"))
    assert "BEGIN SOLUTION" not in "".join(
        p.read_text(errors="replace") for p in folder.rglob("*")
        if p.is_file())


def test_grades_in_the_csv_export(course):
    rows = {r["student_id"]: r for r in
            csv.DictReader(open(course["g"] / "grades.csv"))}
    assert float(rows["ana"]["score"]) == 9
    assert float(rows["ben"]["score"]) == 0
    assert float(rows["lea"]["score"]) == 9      # her late, fixed version
    assert float(rows["lea"]["late_submission_penalty"] or 0) == 0
    assert float(rows["kim"]["score"]) == 0      # the link was not followed
    assert Path(course["out"]["export"].split("exported to ")[1].strip()) \
        == course["g"] / "grades.csv"
    assert not (REPO / "grades.csv").exists()


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
    for s in ("ana", "ben", "lea", "kim"):
        assert list((course["g"] / "feedback" / s / A).glob("*.html")), s
    note = (course["g"] / "feedback" / "kim" / A / f"{A}.html").read_text()
    assert f"file &#39;{A}.ipynb&#39;: missing notebook" in note


def test_feedback_is_self_contained(course):
    page = (course["g"] / "feedback" / "ben" / A / f"{A}.html").read_text()
    assert "cdnjs" not in page and "MathJax" in page
    assert "<script src=" not in page


def test_students_fetch_their_own_feedback(course):
    proc = course["out"]["release_feedback"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # kim's hand-made submission has no secret to fetch feedback with
    assert "student 'kim', assignment 'a01_mapping': the submission has " \
        "no submission_secret.txt" in proc.stdout
    for s in ("ana", "ben"):
        got = course["out"][f"fetch_feedback_{s}"]
        assert got.returncode == 0, got.stdout + got.stderr
        pages = list((course["homes"][s] / A / "feedback").rglob("*.html"))
        assert pages, (s, got.stdout + got.stderr)


def test_autograde_exit_status_and_summary(course):
    proc = course["out"]["autograde"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "3 graded, 0 unchanged since the last run, 1 problem(s)" \
        in proc.stdout
    assert "student 'kim', assignment 'a01_mapping', file " \
        "'a01_mapping.ipynb': missing notebook" in proc.stdout


def test_no_spurious_warnings(course):
    proc = course["out"]["autograde"]
    assert "SAWarning" not in proc.stdout + proc.stderr
