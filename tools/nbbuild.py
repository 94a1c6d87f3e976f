"""Write nbgrader source notebooks from a compact Python description.

Instructors may edit the notebooks in Jupyter directly (they are the
source of truth); this module only makes it easy to write a new one from
a script, with the nbgrader cell metadata (schema 3) spelled correctly.
"""
from __future__ import annotations

import textwrap

import nbformat

KERNEL = {"display_name": "Python 3", "language": "python",
          "name": "python3"}


def _meta(grade_id: str, *, grade=False, solution=False, locked=False,
          points=None, task=False) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked,
            "schema_version": 3, "solution": solution, "task": task}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _src(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def md(text: str, grade_id: str | None = None):
    cell = nbformat.v4.new_markdown_cell(_src(text))
    if grade_id:
        cell.metadata.update(_meta(grade_id, locked=True))
    return cell


def setup(grade_id: str, text: str):
    """A read-only code cell (imports, data, helpers)."""
    cell = nbformat.v4.new_code_cell(_src(text))
    cell.metadata.update(_meta(grade_id, locked=True))
    return cell


def answer(grade_id: str, text: str):
    """A code cell the student completes (BEGIN/END SOLUTION inside)."""
    cell = nbformat.v4.new_code_cell(_src(text))
    cell.metadata.update(_meta(grade_id, solution=True))
    return cell


def tests(grade_id: str, points: float, text: str):
    """An autograded test cell (hidden part between BEGIN/END HIDDEN)."""
    cell = nbformat.v4.new_code_cell(_src(text))
    cell.metadata.update(_meta(grade_id, grade=True, locked=True,
                               points=points))
    return cell


def write(path, cells) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = list(cells)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
