"""The instructor loop, for real, with nbgrader, for every assignment.

For each assignment in solutions/: generate the student release and
compare it with the committed exercises/; check the release holds no
solution and no hidden test; make simulated students (the solution, the
untouched stub, and the named mistakes in tests/assignment_cases/);
autograde them all, generate feedback and export grades; then assert every
score in the gradebook and every explanation in the feedback.
"""
import csv
import importlib
import json
import re
import time
from pathlib import Path

import nbformat
import pytest

from assignment_cases import expected_score
from coursekit import judge, nbmeta, pipeline, simulate

pytestmark = pytest.mark.slow
REPO = pipeline.REPO
ASSIGNMENTS = pipeline.assignments()


def cases(assignment):
    try:
        return importlib.import_module(
            f"assignment_cases.{assignment}").STUDENTS
    except ModuleNotFoundError:
        pytest.fail(f"tests/assignment_cases/{assignment}.py is missing: "
                    f"every assignment needs its simulated students")


def apply_edit(code: str, edit, where: str) -> str:
    if isinstance(edit, str):
        return edit
    for old, new in edit:
        assert old in code, (f"{where}: the solution no longer contains "
                             f"{old!r}; update the simulated mistake")
        code = code.replace(old, new)
    return code


def source_nb(assignment) -> Path:
    (nb,) = sorted((REPO / "solutions" / assignment).glob("*.ipynb"))
    return nb


def error_messages(nb_path) -> dict[str, str]:
    """grade_id -> the error text its cell raised."""
    nb = nbformat.read(str(nb_path), as_version=4)
    out = {}
    for cell in nb.cells:
        gid = simulate.grade_id(cell)
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out[gid] = f"{o['ename']}: {o['evalue']}"
    return out


def grader_notes(nb_path) -> dict[str, str]:
    """grade_id -> the grader's note in its (passing) cell's outputs."""
    nb = nbformat.read(str(nb_path), as_version=4)
    out = {}
    for cell in nb.cells:
        gid = simulate.grade_id(cell)
        out[gid] = "".join(str(o.get("data", {}).get("text/plain", ""))
                           for o in cell.get("outputs", [])
                           if o.get("output_type") == "display_data" and
                           (o.get("metadata") or {}).get(nbmeta.GRADER_KEY))
    return out


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    a = request.param
    g = tmp_path_factory.mktemp(f"grading-{a}")
    release = pipeline.generate_release(a, g, g / "release")
    src = source_nb(a)
    src_nb = nbformat.read(str(src), as_version=4)
    rel_nb = release / src.name
    sol = simulate.solution_answers(src)
    students = {"perfect": {"answers": sol, "score": None},
                "stub": {"answers": {}, "score": 0.0}}
    for name, case in cases(a).items():
        answers = dict(sol)
        for gid, edit in case["edit"].items():
            answers[gid] = apply_edit(sol[gid], edit, f"{a}/{name}")
        students[name] = {"answers": answers, **case,
                          "score": expected_score(src_nb, case)}
    for name, st in students.items():
        simulate.make_submission(rel_nb, st["answers"],
                                 g / "submitted" / name / a / src.name)
    t0 = time.perf_counter()
    pipeline.nbgrader("autograde", a, "--force", grading_dir=g)
    elapsed = time.perf_counter() - t0
    pipeline.nbgrader("generate_feedback", a, "--force", grading_dir=g)
    pipeline.nbgrader("export", f"--to={g / 'grades.csv'}", grading_dir=g)
    return dict(assignment=a, dir=g, release=release, source=src,
                students=students, elapsed=elapsed,
                scores=pipeline.scores(f"sqlite:///{g}/gradebook.db", a))


def max_score(src) -> float:
    nb = nbformat.read(str(src), as_version=4)
    return sum(c.metadata["nbgrader"].get("points", 0) for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade"))


def test_committed_release_is_what_nbgrader_generates(graded):
    a = graded["assignment"]
    committed = REPO / "exercises" / a
    got = sorted(p.relative_to(graded["release"]) for p in
                 graded["release"].rglob("*") if p.is_file())
    want = sorted(p.relative_to(committed) for p in committed.rglob("*")
                  if p.is_file())
    assert got == want, f"exercises/{a} files differ: run `make release`"
    for rel in got:
        new, old = graded["release"] / rel, committed / rel
        if rel.suffix == ".ipynb":
            same = json.loads(new.read_text()) == json.loads(old.read_text())
        else:
            same = new.read_bytes() == old.read_bytes()
        assert same, f"exercises/{a}/{rel} is stale: run `make release`"


def secret_lines(src_path, kinds=("SOLUTION", "HIDDEN TESTS"),
                 min_len=12) -> list[str]:
    """Lines found only in the source's solution or hidden-test blocks."""
    src = nbformat.read(str(src_path), as_version=4)
    lines, public = [], set()
    block = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)"
                       r"### END \1", re.S)
    for cell in src.cells:
        for kind, body in block.findall(cell.source):
            if kind in kinds:
                lines += [ln.strip() for ln in body.splitlines()
                          if len(ln.strip()) > min_len]
        public.update(ln.strip() for ln in
                      block.sub("", cell.source).splitlines())
    return [ln for ln in lines if ln not in public]


def test_release_holds_no_solution_and_no_hidden_test(graded):
    text = (graded["release"] / graded["source"].name).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN",
                   "END HIDDEN"):
        assert marker not in text
    secret = secret_lines(graded["source"])
    assert secret, "the source notebook has no solution: parser broken?"
    released = json.loads(text)
    code = {ln.strip() for c in released["cells"]
            for ln in "".join(c["source"]).splitlines()}
    leaked = [ln for ln in secret if ln in code
              and not ln.startswith(("import ", "from "))]
    assert not leaked, f"release leaks solution/hidden lines: {leaked[:3]}"


def test_solution_gets_full_marks(graded):
    total = max_score(graded["source"])
    got = graded["scores"]["perfect"]
    assert total > 0 and got["total"] == total, got


def test_untouched_stub_gets_zero(graded):
    assert graded["scores"]["stub"]["total"] == 0, graded["scores"]["stub"]


def test_each_named_mistake_gets_its_score_and_message(graded):
    a, g = graded["assignment"], graded["dir"]
    named = {k: v for k, v in graded["students"].items()
             if k not in ("perfect", "stub")}
    assert named, f"{a} has no simulated mistakes"
    for name, st in named.items():
        got = graded["scores"][name]
        assert got["total"] == st["score"], (name, got)
        errors = error_messages(g / "autograded" / name / a /
                                graded["source"].name)
        for gid, phrase in st.get("messages", {}).items():
            assert gid in errors, (f"{name}: test cell {gid} did not "
                                   f"fail; failures: {errors}")
            assert phrase in errors[gid], (name, gid, errors[gid])
            assert got["cells"][gid] == 0, (name, gid, got["cells"])
        # notes: what only the kernel can report is said, never scored
        printed = grader_notes(g / "autograded" / name / a /
                               graded["source"].name)
        for gid, phrase in st.get("notes", {}).items():
            assert gid not in errors, (name, gid, errors[gid])
            assert "no points depend on it" in printed[gid], (name, gid)
            assert phrase in printed[gid], (name, gid, printed[gid])


def check_lines(assignment, release_nb, min_len=25) -> list[str]:
    """Lines of the trusted checks that the release does not show."""
    mod = judge.load(assignment)
    assert mod is not None, f"coursekit/checks/{assignment}.py is missing"
    nb = nbformat.read(str(release_nb), as_version=4)
    public = {ln.strip() for c in nb.cells for ln in c.source.splitlines()}
    text = "\n".join(c.source for c in nb.cells)   # the release, public
    return [ln.strip() for ln in Path(mod.__file__).read_text().splitlines()
            if len(ln.strip()) >= min_len and ln.strip() not in public
            and ln.strip() not in text
            and not ln.strip().startswith(("#", "\"", "from ", "import "))]


def test_every_test_cell_has_a_trusted_check(graded):
    mod = judge.load(graded["assignment"])
    nb = nbformat.read(str(graded["source"]), as_version=4)
    missing = [simulate.grade_id(c) for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade")
               and c.cell_type == "code"
               and not callable(getattr(mod, simulate.grade_id(c), None))]
    assert not missing, f"no trusted check for {missing}"
    assert "### BEGIN HIDDEN TESTS" not in graded["source"].read_text(), \
        "hidden tests belong in coursekit/checks, outside the kernel"


def test_feedback_explains_without_revealing_hidden_checks(graded):
    a, g = graded["assignment"], graded["dir"]
    hidden_lines = check_lines(a, graded["release"] / graded["source"].name)
    assert hidden_lines
    for name, st in graded["students"].items():
        (html,) = (g / "feedback" / name / a).glob("*.html")
        page = html.read_text()
        for phrase in [*st.get("messages", {}).values(),
                       *st.get("notes", {}).values()]:
            assert phrase.replace("'", "&#39;") in page or phrase in page, \
                (name, phrase)
        shown = [ln for ln in hidden_lines if ln in page]
        assert not shown, f"feedback for {name} shows hidden checks: " \
            f"{shown[:2]}"


def test_grades_export_to_csv(graded):
    rows = list(csv.DictReader(open(graded["dir"] / "grades.csv")))
    got = {r["student_id"]: float(r["score"]) for r in rows
           if r["assignment"] == graded["assignment"]}
    assert got == {k: v["total"] for k, v in graded["scores"].items()}


def test_autograding_is_fast(graded):
    per_student = graded["elapsed"] / len(graded["students"])
    assert per_student < 30, f"{per_student:.1f} s per submission"


def run_seconds(nb_path) -> float:
    """The notebook top to bottom in the grader's kernel: from the first
    cell's start to the last cell's reply (nbclient's timing metadata, the
    kernel's clock), with the checks of every test cell but the last."""
    from datetime import datetime
    nb = nbformat.read(str(nb_path), as_version=4)
    stamps = [c.metadata.get("execution", {}) for c in nb.cells
              if c.cell_type == "code"]
    start = [s["iopub.execute_input"] for s in stamps
             if "iopub.execute_input" in s]
    end = [s["shell.execute_reply"] for s in stamps
           if "shell.execute_reply" in s]
    assert start and end, f"{nb_path}: no cell timing recorded"
    return (max(map(datetime.fromisoformat, end))
            - min(map(datetime.fromisoformat, start))).total_seconds()


def test_solution_and_release_run_top_to_bottom_in_under_30_s(graded):
    a, g = graded["assignment"], graded["dir"]
    took = {name: run_seconds(g / "autograded" / name / a /
                              graded["source"].name)
            for name in ("perfect", "stub")}
    assert all(0 < t < 30 for t in took.values()), took
