"""The simulated class of every graded notebook, checked without nbgrader.

tests/test_assignments.py grades these students for real (slow); this
file checks, in a second, what that run relies on: every assignment in
solutions/ has its simulated students, at least five of them make a
named mistake that fails a test cell with a message, each expected total
is computed from the notebook's points metadata and is below full marks,
and every edit still applies to the instructor's solution.
"""
import importlib

import nbformat
import pytest

from assignment_cases import expected_score
from coursekit import nbmeta, pipeline, simulate

REPO = pipeline.REPO
ASSIGNMENTS = pipeline.assignments()
MIN_NAMED = 5


def _source(assignment):
    (nb,) = sorted((REPO / "solutions" / assignment).glob("*.ipynb"))
    return nb


def test_every_assignment_folder_is_an_assignment():
    folders = sorted(p.name for p in (REPO / "solutions").iterdir()
                     if p.is_dir() and not p.name.startswith((".", "_")))
    assert ASSIGNMENTS == folders, "a solutions/ folder has no notebook"
    assert len(ASSIGNMENTS) >= 6, ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_simulated_students_name_enough_mistakes(assignment):
    try:
        students = importlib.import_module(
            f"assignment_cases.{assignment}").STUDENTS
    except ModuleNotFoundError:
        pytest.fail(f"tests/assignment_cases/{assignment}.py is missing")
    path = _source(assignment)
    nb = nbformat.read(str(path), as_version=4)
    total = nbmeta.total_points(nb)
    tests = {nbmeta.grade_id(c): nbmeta.points(c)
             for c in nbmeta.test_cells(nb)}
    assert total > 0 and total == sum(tests.values())
    # with nothing failing, the expected total is the points metadata's
    assert expected_score(nb, {"edit": {}}) == total
    solution = simulate.solution_answers(path)
    named = []
    for name, case in students.items():
        where = f"{assignment}/{name}"
        for gid, edit in case["edit"].items():
            assert gid in solution, f"{where}: no answer cell {gid!r}"
            if isinstance(edit, str):
                assert edit != solution[gid], f"{where}: edit changes nothing"
                continue
            for old, new in edit:
                assert old in solution[gid], (
                    f"{where}: the solution of {gid!r} no longer contains "
                    f"{old!r}")
                assert old != new, f"{where}: edit changes nothing"
        for gid, phrase in case.get("messages", {}).items():
            assert gid in tests, f"{where}: no test cell {gid!r}"
            assert isinstance(phrase, str) and len(phrase) >= 6, \
                f"{where}: the expected message {phrase!r} says nothing"
        score = expected_score(nb, case)      # KeyError on unknown cells
        lost = total - score
        want = sum(tests[g] for g in set(case.get("messages", {}))
                   | set(case.get("fails", ())))
        want += sum(tests[g] * (1 - f)
                    for g, f in case.get("partial", {}).items())
        assert lost == pytest.approx(want), where
        if case.get("messages") and 0 <= score < total:
            named.append(name)
    assert len(named) >= MIN_NAMED, (
        f"{assignment}: {len(named)} named mistakes that fail a test cell "
        f"with a message ({named}); at least {MIN_NAMED} are required")
