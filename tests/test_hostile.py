"""Hostile and broken submissions get the grades they earn, for every assignment.

The corpus (tests/hostile/corpus.py) is built from each assignment's
release: one or more submissions per attack class (leaks, cross-student
interference, faking the verdict inside the kernel, forbidden tools,
feedback leaks), next to honest controls whose grades must be unchanged;
assignment 1 also gets the attacks on the sandbox itself, which is the
same for every assignment (a daemon against the next student, forged
nbgrader markers and displays, symbolic links, huge answers), runaway
and broken code, a tampered notebook and broken files. One class run per assignment grades them all, in sandboxed
kernels with a 5 s cell limit and a 2 GB memory limit, while the grader's
environment holds a made-up secret; then every score, message, printed
finding, feedback page and leftover process is checked. a06 is graded on
private held-out digits (the public ones jittered by a seed the corpus
does not know), which the leak attempts also try to read.
"""
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest

from coursekit import grade, heldout, judge, nbmeta, pipeline, simulate
from coursekit.sandbox import DEFAULTS, orphans

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
from corpus import SECRET_ENV, corpus  # noqa: E402

pytestmark = pytest.mark.slow
REPO = pipeline.REPO
ASSIGNMENTS = pipeline.assignments()


def _can_sandbox():
    if os.geteuid() != 0:
        pytest.skip("the grading sandbox needs root (as in CI)")


_RUNS: dict = {}


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def hostile(request, tmp_path_factory):
    return _run(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def hostile_full(tmp_path_factory):
    """The first assignment, whose corpus also holds runaway and broken
    code, a tampered notebook structure and broken files."""
    return _run(ASSIGNMENTS[0], tmp_path_factory)


def _run(A, tmp_path_factory):
    if A in _RUNS:
        return _RUNS[A]
    _can_sandbox()
    g = tmp_path_factory.mktemp(f"hostile-{A}")
    src = REPO / "solutions" / A / f"{A}.ipynb"
    release = nbformat.read(str(REPO / "exercises" / A / f"{A}.ipynb"),
                            as_version=4)
    sol = simulate.solution_answers(src)
    victim = g / "submitted" / "zz_victim" / A / f"{A}.ipynb"
    secret_value = f"hunter2-{os.getpid()}-{time.time_ns()}"
    checks = Path(judge.load(A).__file__)
    paths = dict(
        secret_value=secret_value,
        secret=[str(src), str(REPO / "solutions"), str(REPO / ".git"),
                str(checks), str(REPO / "coursekit"),
                str(REPO / "node_modules"), str(REPO / "_build"),
                str(g / "gradebook.db"),
                str(victim), str(g / "submitted"), str(REPO / "tests"),
                "/etc/shadow"],
        targets=[str(REPO / "exercises" / "hacked.txt"),
                 str(g / "gradebook.db"), str(victim), "/tmp/hacked.txt",
                 str(g / "hacked.txt")])
    env = {"COURSE_CELL_TIMEOUT": "5", "COURSE_SANDBOX_MEMORY_MB": "2048",
           SECRET_ENV: secret_value, "COURSE_DB_PASSWORD": secret_value}
    if A == "a06_practice":
        # graded on private held-out digits: the public ones, jittered
        # by a seed the corpus does not know (coursekit heldout)
        private = g / "private" / "heldout.npz"
        heldout.make(private, public=True, jitter_digits=True, n=6000,
                     calibrate=False, log=lambda _: None)
        env["COURSE_A06_HELDOUT"] = str(private)
        paths["secret"] += [str(private), str(private.parent)]
        paths["private"] = [str(private)]
    forbid = judge.load(A).KERNEL.get("forbid", [])
    cases = corpus(A, release, sol, paths, forbid, full=(A == ASSIGNMENTS[0]))
    for name, case in cases.items():
        folder = g / "submitted" / name / A
        folder.mkdir(parents=True)
        made = case["make"]()
        if made[0] == "nb":
            nbformat.write(made[1], str(folder / f"{A}.ipynb"))
            for name, to in (made[2] if len(made) > 2 else {}).items():
                os.symlink(to, folder / name)    # links beside it
            for name, text in (made[3] if len(made) > 3 else {}).items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text(text)  # files beside it
        else:
            (folder / made[1]).write_bytes(made[2])
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = grade.autograde(A, g, workers=1)
        pipeline.nbgrader("generate_feedback", A, "--force", grading_dir=g)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    scores = pipeline.scores(f"sqlite:///{g}/gradebook.db", A)
    _RUNS[A] = dict(A=A, dir=g, cases=cases, result=result, scores=scores,
                    paths=paths, release=release, checks=checks,
                    source=nbformat.read(str(src), as_version=4))
    return _RUNS[A]


def autograded(h, name) -> Path:
    return h["dir"] / "autograded" / name / h["A"] / f"{h['A']}.ipynb"


def outputs_text(nb_path, grade_id) -> str:
    nb = nbformat.read(str(nb_path), as_version=4)
    (cell,) = [c for c in nb.cells if nbmeta.grade_id(c) == grade_id]
    return "".join(str(o.get("text", "")) + str(o.get("evalue", ""))
                   for o in cell.get("outputs", []))


def test_every_submission_gets_the_grade_it_earns(hostile):
    wrong = {}
    for name, case in hostile["cases"].items():
        got = hostile["scores"].get(name, {}).get("total")
        if case["score"] is None:
            if got is None or got > case["at_most"]:
                wrong[name] = (got, f"<= {case['at_most']}")
        elif got != case["score"]:
            wrong[name] = (got, case["score"])
    assert not wrong, f"(got, expected) per student: {wrong}"


def test_controls_and_the_victim_are_intact(hostile):
    sc, total = hostile["scores"], hostile["cases"]["perfect"]["score"]
    assert sc["perfect"]["total"] == total > 0
    if "zz_victim" in hostile["cases"]:      # the full corpus (a01)
        assert sc["zz_victim"]["total"] == total, sc["zz_victim"]
    assert all(v == 0 for v in sc["stub"]["cells"].values())


def test_failed_cells_carry_the_right_message(hostile):
    for name, case in hostile["cases"].items():
        if not case["messages"]:
            continue
        errors = grade.cell_errors(autograded(hostile, name))
        for gid, phrase in case["messages"].items():
            assert gid in errors, (name, gid, errors)
            assert phrase in errors[gid], (name, gid, errors[gid])
            assert hostile["scores"][name]["cells"][gid] == 0


def test_what_the_attacks_found_is_nothing(hostile):
    forbid = judge.load(hostile["A"]).KERNEL.get("forbid", [])
    for name, case in hostile["cases"].items():
        for gid, phrase in case.get("printed", {}).items():
            if name == "forbidden_tools" and not forbid:
                continue
            text = outputs_text(autograded(hostile, name), gid)
            assert phrase in text, (name, text[:2000])


def test_no_secret_and_no_check_reaches_any_file_the_student_gets(hostile):
    g, A = hostile["dir"], hostile["A"]
    secret = hostile["paths"]["secret_value"]
    nb = hostile["release"]
    public = {ln.strip() for c in nb.cells for ln in c.source.splitlines()}
    # what the student may legitimately print: the release, and any
    # answer of their own (here the model solution, which a reference
    # check may share a line with, as a04's weight decay does)
    release_text = "\n".join(c.source for c in nb.cells) + "\n".join(
        c.source for c in hostile["source"].cells)
    check_lines = [ln.strip() for ln in
                   hostile["checks"].read_text().splitlines()
                   if len(ln.strip()) >= 25 and ln.strip() not in public
                   and ln.strip() not in release_text
                   and not ln.strip().startswith(("#", '"', "from ",
                                                  "import "))]
    assert check_lines
    files = list((g / "feedback").glob(f"*/{A}/*.html")) + \
        list((g / "autograded").glob(f"*/{A}/*.ipynb"))
    assert files
    for f in files:
        text = f.read_text(errors="replace")
        assert secret not in text, f
        # a06's private file: never named, unless the student's own
        # notebook holds the name (the corpus's attacks are given it)
        own = g / "submitted" / f.relative_to(g).parts[1] / A
        for p in hostile["paths"].get("private", []):
            assert p not in text or any(
                p in n.read_text(errors="replace")
                for n in own.glob("*.ipynb")), (f, p)
        shown = [ln for ln in check_lines if ln in text]
        assert not shown, (f, shown[:2])


def test_every_graded_student_gets_feedback(hostile):
    g, A = hostile["dir"], hostile["A"]
    for name, case in hostile["cases"].items():
        if "problem" in case and not case.get("graded"):
            continue
        pages = list((g / "feedback" / name / A).glob("*.html"))
        assert pages, f"no feedback for {name}"


def test_no_process_is_left_on_any_sandbox_uid(hostile):
    uids = range(DEFAULTS["uid_base"], DEFAULTS["uid_base"] + 16)
    left = orphans(uids)
    for _ in range(20):            # launchers clean up as they exit
        if not left:
            break
        time.sleep(0.25)
        left = orphans(uids)
    assert not left, left


def test_structure_tampering_is_undone(hostile_full):
    want = [nbmeta.grade_id(c) for c in hostile_full["release"].cells
            if nbmeta.grade_id(c)]
    for name in ("deleted_test_cells", "moved_test_cells"):
        nb = nbformat.read(str(autograded(hostile_full, name)), as_version=4)
        assert [nbmeta.grade_id(c) for c in nb.cells
                if nbmeta.grade_id(c)] == want, name
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{hostile_full['dir']}/gradebook.db") as gb:
        sub = gb.find_submission(hostile_full["A"], "edited_metadata_stub")
        assert sub.max_score == hostile_full["cases"]["perfect"]["score"]
        assert sub.needs_manual_grade is False


def test_broken_files_are_reported_by_student_and_file(hostile_full):
    problems = {p.student: str(p) for p in hostile_full["result"].problems}
    for name, case in hostile_full["cases"].items():
        if "problem" in case:
            assert name in problems, (name, problems)
            assert case["problem"] in problems[name]
    extra = set(problems) - {n for n, c in hostile_full["cases"].items()
                             if "problem" in c}
    assert not extra, f"unexpected problems: {extra}"


def test_runaway_output_and_writes_are_contained(hostile_full):
    assert autograded(hostile_full, "huge_output").stat().st_size < 500_000
    assert not (REPO / "exercises" / "hacked.txt").exists()
    assert not Path("/tmp/hacked.txt").exists()
    assert not (hostile_full["dir"] / "hacked.txt").exists()


def test_text_slow_to_render_is_shortened_in_the_feedback(hostile_full):
    """The student whose cells stall nbconvert gets feedback: their own
    text cut (coursekit.feedback.cap_student_text), the verdicts whole."""
    g, A = hostile_full["dir"], hostile_full["A"]
    (page,) = (g / "feedback" / "stalls_feedback" / A).glob("*.html")
    text = page.read_text()
    assert "is not shown in the feedback" in text
    assert "✘ failed" in text
    assert "[" * 300_000 not in text and "*" * 200_000 not in text

