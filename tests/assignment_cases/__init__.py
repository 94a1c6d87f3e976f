"""Simulated students for each graded notebook.

Each module ``<assignment>.py`` defines ``STUDENTS``: name -> a dict with
``edit`` (answer cell grade_id -> list of ``(old, new)`` replacements
applied to the instructor's solution, or a full replacement string),
``messages`` (test cell grade_id -> a phrase its failure message must
contain), optionally ``fails`` (further test cells that must score 0) and
``partial`` (test cell grade_id -> the fraction of its points it earns)
and ``notes`` (test cell grade_id -> a phrase of the grader's note in a
cell that keeps its points: what only the kernel can report, such as an
input changed in place, is said but never scored).
The expected total is computed from the notebook's points metadata: every
test cell named in ``messages`` or ``fails`` scores 0, those in
``partial`` their fraction, every other one its full points. The perfect
student (the solution) and the untouched stub are added automatically.
"""
from coursekit import nbmeta


def expected_score(source_nb, case) -> float:
    """The total a simulated student must get, from the points metadata."""
    failing = set(case.get("messages", {})) | set(case.get("fails", ()))
    partial = case.get("partial", {})
    tests = {nbmeta.grade_id(c): nbmeta.points(c)
             for c in nbmeta.test_cells(source_nb)}
    unknown = (failing | set(partial)) - set(tests)
    if unknown:
        raise KeyError(f"no test cell {sorted(unknown)}; test cells: "
                       f"{sorted(tests)}")
    return sum(0.0 if g in failing else pts * partial.get(g, 1.0)
               for g, pts in tests.items())
