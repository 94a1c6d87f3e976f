"""Build simulated student submissions from an nbgrader assignment.

A submission is the *released* notebook with some answer cells filled in,
exactly what a student would hand in.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

_BEGIN = re.compile(r"^\s*### BEGIN SOLUTION\s*$")
_END = re.compile(r"^\s*### END SOLUTION\s*$")


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_answer(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution")) and not meta.get("grade")


def strip_solution_markers(source: str) -> str:
    """The solution code of a source cell, without nbgrader's markers."""
    lines = [ln for ln in source.splitlines()
             if not (_BEGIN.match(ln) or _END.match(ln))]
    return "\n".join(lines)


def solution_answers(source_nb_path) -> dict[str, str]:
    """grade_id -> solution code for every answer cell of a source nb."""
    nb = nbformat.read(str(source_nb_path), as_version=4)
    return {grade_id(c): strip_solution_markers(c.source)
            for c in nb.cells if is_answer(c)}


def make_submission(release_nb_path, answers: dict[str, str],
                    out_path) -> Path:
    """Write the released notebook with ``answers`` put into its cells.

    ``answers`` maps an answer cell's grade_id to the code a student
    wrote; cells not named keep the release's stub. An unknown grade_id is
    an error (it would silently test nothing).
    """
    nb = nbformat.read(str(release_nb_path), as_version=4)
    nb = copy.deepcopy(nb)
    ids = {grade_id(c) for c in nb.cells if is_answer(c)}
    unknown = set(answers) - ids
    if unknown:
        raise KeyError(f"no answer cell with grade_id {sorted(unknown)} in "
                       f"{release_nb_path}; answer cells: {sorted(ids)}")
    for cell in nb.cells:
        gid = grade_id(cell)
        if is_answer(cell) and gid in answers:
            cell.source = answers[gid]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
    return out
