"""Put a submission back into the released notebook's layout.

nbgrader restores the *source* of locked and test cells that are still in
a submission (``OverwriteCells``) but a test cell the student deleted is
simply missing ("needs manual grading" forever), a moved one runs in the
wrong place, and a cell whose nbgrader metadata was edited may no longer
be recognised. :class:`RestoreLayout` runs first in the sanitize step and
rebuilds the notebook from the release:

* every cell of the release, in the release's order, with the release's
  nbgrader metadata (ids, points, locked/solution/grade flags): a student
  cannot add points, turn a test into an answer or an answer into a test;
* answer cells take the student's code, matched by ``grade_id``; a deleted
  answer cell gets the release's stub (its tests then fail normally);
* cells the student added are kept, right after the release cell that
  preceded them, without any nbgrader metadata; an added copy of a test or
  answer cell (same ``grade_id``) is kept as a plain cell, never graded.

nbgrader's ``OverwriteCells`` then restores the instructor's source of
every locked and test cell from the gradebook, as usual.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _gid(cell):
    return _meta(cell).get("grade_id")


def _is_answer(cell) -> bool:
    m = _meta(cell)
    return bool(m.get("solution")) and not m.get("grade")


def rebuild(release_nb, submitted_nb):
    """The submitted notebook in the release's layout (a new notebook)."""
    out = copy.deepcopy(submitted_nb)
    student = {}
    for cell in submitted_nb.cells:
        gid = _gid(cell)
        if gid and gid not in student:
            student[gid] = cell
    release_ids = [_gid(c) for c in release_nb.cells]
    # extra cells, attached to the release cell that precedes them
    extras: dict[str | None, list] = {}
    anchor = None
    used = set()
    for cell in submitted_nb.cells:
        gid = _gid(cell)
        if gid in release_ids and gid not in used:
            used.add(gid)
            anchor = gid
            continue
        plain = copy.deepcopy(cell)
        plain.metadata.pop("nbgrader", None)
        plain.metadata.pop("deletable", None)
        plain.metadata.pop("editable", None)
        extras.setdefault(anchor, []).append(plain)
    cells = list(extras.get(None, []))
    for rel in release_nb.cells:
        gid = _gid(rel)
        new = copy.deepcopy(rel)
        if _is_answer(rel) and gid in student:
            new.source = student[gid].source
            if rel.cell_type == "code":
                new.outputs = []
        cells.append(new)
        cells.extend(extras.get(gid, []))
    seen = set()
    for cell in cells:   # cell ids must stay unique (nbformat 4.5)
        cid = cell.get("id")
        if cid is not None and cid in seen:
            import uuid
            cell["id"] = uuid.uuid4().hex[:8]
        seen.add(cell.get("id"))
    out.cells = cells
    out.metadata = copy.deepcopy(release_nb.metadata)
    return out


class RestoreLayout(NbGraderPreprocessor):
    """Sanitize step: see the module docstring."""

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        assignment = info.get("assignment")
        notebook = info.get("notebook")
        coursedir = CourseDirectory(config=self.config)
        path = Path(coursedir.format_path(
            coursedir.release_directory, ".", assignment)) / \
            f"{notebook}.ipynb"
        if not path.exists():
            self.log.warning("RestoreLayout: no release %s; layout of the "
                             "submission kept", path)
            return nb, resources
        release = nbformat.read(str(path), as_version=4)
        before = [_gid(c) for c in nb.cells]
        nb = rebuild(release, nb)
        after = [_gid(c) for c in nb.cells if _gid(c)]
        missing = [g for g in after if g not in before]
        if missing:
            self.log.warning("%s/%s: restored cells deleted by the "
                             "student: %s", info.get("student"),
                             assignment, missing)
        return nb, resources
