"""nbgrader's cell metadata, read in one place.

Every coursekit stage asks the same questions of a cell: its
``grade_id``, whether it is an answer (a solution cell that is not
graded), a graded test, a locked instructor cell, and how many points it
carries. nbgrader keeps the answers in ``cell.metadata.nbgrader``; these
functions read it, and never raise on a cell without it.
"""
from __future__ import annotations


# The metadata key that marks the grader's own message in a test cell's
# outputs (a note on a passing check, a partial-credit explanation): the
# sandboxed grading strips it from the kernel's outputs, so feedback can
# tell the two apart (coursekit.execute, coursekit.feedback).
GRADER_KEY = "coursekit"


def meta(cell) -> dict:
    """The cell's nbgrader metadata (empty dict when it has none)."""
    md = cell.get("metadata", {}) if hasattr(cell, "get") else {}
    return md.get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    return meta(cell).get("grade_id")


def is_answer(cell) -> bool:
    """A cell the student writes (``solution`` and not ``grade``)."""
    m = meta(cell)
    return bool(m.get("solution")) and not m.get("grade")


def is_test(cell) -> bool:
    """An autograded test cell: ``grade``, code, not a solution."""
    m = meta(cell)
    return (bool(m.get("grade")) and not m.get("solution")
            and cell.get("cell_type") == "code")


def is_locked(cell) -> bool:
    """An instructor cell the student may not change (not a test)."""
    m = meta(cell)
    return bool(m.get("locked")) and not m.get("grade") \
        and not m.get("solution")


def points(cell) -> float:
    """Points of a graded cell (0 for any other)."""
    m = meta(cell)
    return float(m.get("points", 0) or 0) if m.get("grade") else 0.0


def test_cells(nb) -> list:
    return [c for c in nb.cells if is_test(c)]


def total_points(nb) -> float:
    return sum(points(c) for c in nb.cells)
