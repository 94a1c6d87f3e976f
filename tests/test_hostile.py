"""Hostile and broken submissions are graded correctly, in one run.

The corpus (tests/hostile/a01_corpus.py) is built from assignment 1's
release: runaway code, broken code, a tampered notebook, tricks against
the checks, code reaching outside its folder and broken files, next to
three ordinary students. One ``coursekit.grade.autograde`` run grades them
all, in sandboxed kernels (coursekit.sandbox) with a 5 s cell limit and
a 2 GB memory limit; then every score, every message, and every file the
hostile code tried to read or write is checked.
"""
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit import grade, pipeline, simulate

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
from a01_corpus import A, corpus  # noqa: E402

pytestmark = pytest.mark.slow
REPO = pipeline.REPO


def _can_sandbox():
    if os.geteuid() != 0:
        pytest.skip("the grading sandbox needs root (as in CI)")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    _can_sandbox()
    g = tmp_path_factory.mktemp("hostile")
    src = REPO / "solutions" / A / f"{A}.ipynb"
    release = nbformat.read(str(REPO / "exercises" / A / f"{A}.ipynb"),
                            as_version=4)
    sol = simulate.solution_answers(src)
    victim = g / "submitted" / "perfect" / A / f"{A}.ipynb"
    paths = dict(
        secret=[str(src), str(REPO / "solutions"), str(REPO / ".git"),
                str(g / "gradebook.db"), str(victim),
                str(g / "submitted"), str(REPO / "tests"), "/etc/shadow"],
        targets=[str(REPO / "exercises" / "hacked.txt"),
                 str(g / "gradebook.db"), str(victim), "/tmp/hacked.txt",
                 str(g / "hacked.txt")])
    cases = corpus(release, sol, paths)
    for name, case in cases.items():
        folder = g / "submitted" / name / A
        folder.mkdir(parents=True)
        made = case["make"]()
        if made[0] == "nb":
            nbformat.write(made[1], str(folder / f"{A}.ipynb"))
        else:
            (folder / made[1]).write_bytes(made[2])
    before = {p: Path(p).read_bytes() for p in paths["targets"]
              if Path(p).exists() and p.endswith(".ipynb")}
    env = {"COURSE_CELL_TIMEOUT": "5", "COURSE_SANDBOX_MEMORY_MB": "2048"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = grade.autograde(A, g, workers=1)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    scores = pipeline.scores(f"sqlite:///{g}/gradebook.db", A)
    return dict(dir=g, cases=cases, result=result, scores=scores,
                paths=paths, before=before)


def autograded(h, name) -> Path:
    return h["dir"] / "autograded" / name / A / f"{A}.ipynb"


def cell_text(nb_path, grade_id) -> str:
    nb = nbformat.read(str(nb_path), as_version=4)
    (cell,) = [c for c in nb.cells if simulate.grade_id(c) == grade_id]
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


def test_every_submission_gets_the_grade_it_earns(hostile):
    wrong = {}
    for name, case in hostile["cases"].items():
        got = hostile["scores"].get(name, {}).get("total")
        if got != case["score"]:
            wrong[name] = (got, case["score"])
    assert not wrong, f"(got, expected) per student: {wrong}"


def test_ordinary_students_are_intact(hostile):
    sc = hostile["scores"]
    assert sc["perfect"]["total"] == 9
    assert all(v == 0 for v in sc["stub"]["cells"].values())
    assert sc["no_bias"]["cells"]["test_affine"] == 0
    assert sc["no_bias"]["cells"]["test_affine_grads_dW"] == 1


def test_failed_cells_carry_the_right_message(hostile):
    for name, case in hostile["cases"].items():
        if not case["messages"]:
            continue
        errors = grade.cell_errors(autograded(hostile, name))
        for gid, phrase in case["messages"].items():
            assert gid in errors, (name, gid, errors)
            assert phrase in errors[gid], (name, gid, errors[gid])
            assert hostile["scores"][name]["cells"][gid] == 0


def test_deleted_and_moved_grade_cells_are_back_and_graded(hostile):
    for name in ("deleted_grade_cells", "moved_grade_cells"):
        nb = nbformat.read(str(autograded(hostile, name)), as_version=4)
        ids = [simulate.grade_id(c) for c in nb.cells
               if simulate.grade_id(c)]
        release = nbformat.read(str(REPO / "exercises" / A / f"{A}.ipynb"),
                                as_version=4)
        want = [simulate.grade_id(c) for c in release.cells
                if simulate.grade_id(c)]
        assert ids == want, name
        cells = hostile["scores"][name]["cells"]
        assert set(cells) >= {"test_affine", "test_affine_grads_dW"}
        assert None not in cells.values(), cells


def test_metadata_edits_do_not_change_points(hostile):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{hostile['dir']}/gradebook.db") as gb:
        sub = gb.find_submission(A, "edited_metadata_points")
        assert sub.max_score == 9
        assert sub.needs_manual_grade is False


def test_broken_files_are_reported_by_student_and_file(hostile):
    problems = {p.student: str(p) for p in hostile["result"].problems}
    for name, case in hostile["cases"].items():
        if "problem" in case:
            assert name in problems, (name, problems)
            assert case["problem"] in problems[name]
            assert f"assignment '{A}'" in problems[name]
    extra = set(problems) - {n for n, c in hostile["cases"].items()
                             if "problem" in c}
    assert not extra, f"unexpected problems: {extra}"


def test_student_code_cannot_read_solutions_gradebook_or_others(hostile):
    text = cell_text(autograded(hostile, "snoops"), "affine")
    assert "SNOOPED []" in text, text


def test_student_code_cannot_write_outside_its_folder(hostile):
    text = cell_text(autograded(hostile, "writes_outside"), "affine")
    assert "WROTE []" in text, text
    assert not (REPO / "exercises" / "hacked.txt").exists()
    assert not Path("/tmp/hacked.txt").exists()
    assert not (hostile["dir"] / "hacked.txt").exists()
    for p, data in hostile["before"].items():
        assert Path(p).read_bytes() == data, p


def test_huge_output_is_truncated(hostile):
    path = autograded(hostile, "huge_output")
    assert path.stat().st_size < 500_000
    assert "truncated" in cell_text(path, "affine")


def test_timeouts_lose_only_the_cell(hostile):
    cells = hostile["scores"]["infinite_loop"]["cells"]
    assert cells["test_sigmoid_prime"] == 0
    assert cells["test_affine_grads_db"] == 1
    assert cells["test_affine"] == 2


def test_feedback_never_shows_hidden_tests(hostile):
    from test_assignments import secret_lines
    g = hostile["dir"]
    pipeline.nbgrader("generate_feedback", A, "--force", grading_dir=g)
    hidden = secret_lines(REPO / "solutions" / A / f"{A}.ipynb",
                          ("HIDDEN TESTS",), 20)
    pages = list((g / "feedback").glob(f"*/{A}/*.html"))
    assert len(pages) >= len(hostile["cases"]) - 3
    for page in pages:
        text = page.read_text()
        assert not [ln for ln in hidden if ln in text], page


def test_result_summary_is_saved(hostile, tmp_path):
    grade.save_json(hostile["result"], tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert "perfect" in data["graded"]
