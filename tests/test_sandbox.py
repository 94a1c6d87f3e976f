"""The grading sandbox's parts: the guard, the layout, the kernel.

The guard and layout tests are fast unit tests (they run in this process
on plain objects); the kernel tests start a real sandboxed kernel (root,
as in CI) and probe what it can reach.
"""
import builtins
import math
import os
import socket
import sys

import nbformat
import numpy as np
import pytest

from coursekit import guard, layout, pipeline, simulate
from dlopt import grading

REPO = pipeline.REPO
A = "a01_mapping"


@pytest.fixture
def snap():
    guard._state.clear()
    guard.snapshot()
    yield
    guard.restore()
    guard._state.clear()


def test_patched_libraries_fool_the_checks_until_the_guard_restores(snap):
    wrong, right = np.array([1.0, 2.0]), np.array([1.0, 3.0])
    saved_abs, saved_isnan = builtins.abs, math.isnan
    builtins.abs = lambda x: 0.0          # every difference looks like 0
    math.isnan = lambda x: False
    np.allclose = lambda *a, **k: True
    try:
        grading.check_array("x", wrong, right)   # fooled: no error
    finally:
        undone = guard.restore()
    assert builtins.abs is saved_abs and math.isnan is saved_isnan
    assert "builtins.abs" in undone and "numpy.allclose" in undone
    with pytest.raises(grading.Feedback, match="wrong"):
        grading.check_array("x", wrong, right)


def test_guard_restores_function_code_and_module_entries(snap):
    code = grading.check_array.__code__
    grading.check_array.__code__ = (lambda *a, **k: None).__code__
    real_np = sys.modules["numpy"]
    sys.modules["numpy"] = object()
    undone = guard.restore()
    assert grading.check_array.__code__ is code
    assert sys.modules["numpy"] is real_np
    assert any("check_array.__code__" in u for u in undone)


def test_guard_restores_notebook_names_set_by_the_course(snap):
    ns = {"check_array": grading.check_array, "np": np}
    guard.mark_locked(ns, ["check_array", "np"])
    ns["check_array"] = lambda *a, **k: None
    ns["isinstance"] = lambda *a: True
    undone = guard.restore(ns)
    assert ns["check_array"] is grading.check_array
    assert "isinstance" not in ns
    assert len(undone) == 3     # check_array, isinstance, __builtins__


def test_guard_has_nothing_to_undo_when_nothing_was_patched(snap):
    assert guard.restore() == []


def _release():
    return nbformat.read(str(REPO / "exercises" / A / f"{A}.ipynb"),
                         as_version=4)


def test_layout_restores_order_cells_and_metadata():
    release = _release()
    sub = nbformat.read(str(REPO / "exercises" / A / f"{A}.ipynb"),
                        as_version=4)
    cells = sub.cells
    test = next(c for c in cells if simulate.grade_id(c) == "test_affine")
    answer = next(c for c in cells if simulate.grade_id(c) == "affine")
    answer.source = "def affine(X, W, b):\n    return X @ W.T + b\n"
    answer.metadata["nbgrader"]["points"] = 99
    answer.metadata["nbgrader"]["grade"] = True
    extra = nbformat.v4.new_code_cell("print('scratch')")
    extra.metadata["nbgrader"] = dict(test.metadata["nbgrader"])
    cells.insert(0, extra)                 # a fake copy of a test cell
    dw = next(c for c in cells
              if simulate.grade_id(c) == "test_affine_grads_dW")
    cells.remove(dw)
    cells.append(dw)                       # moved to the end
    out = layout.rebuild(release, sub)
    ids = [simulate.grade_id(c) for c in out.cells if simulate.grade_id(c)]
    assert ids == [simulate.grade_id(c) for c in release.cells
                   if simulate.grade_id(c)]
    new_answer = next(c for c in out.cells
                      if simulate.grade_id(c) == "affine")
    assert "X @ W.T + b" in new_answer.source
    assert new_answer.metadata["nbgrader"] == \
        next(c for c in release.cells
             if simulate.grade_id(c) == "affine").metadata["nbgrader"]
    graded = [c for c in out.cells if "nbgrader" in c.metadata]
    assert len(graded) == len(release.cells)
    assert len(out.cells) == len(release.cells) + 1   # the copy, ungraded
    nbformat.validate(out)


def _root():
    if os.geteuid() != 0:
        pytest.skip("the grading sandbox needs root (as in CI)")


@pytest.mark.slow
def test_sandboxed_kernel_sees_no_course_files_no_network(tmp_path):
    _root()
    from coursekit.selfcheck import probe
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    mine = tmp_path / "student"
    mine.mkdir()
    (mine / "data.txt").write_text("mine")
    secret = [REPO / "solutions" / A / f"{A}.ipynb", REPO / ".git",
              REPO / "tests" / "conftest.py", tmp_path, "/etc/shadow"]
    try:
        res = probe(secret + ["data.txt"], port=port, cwd=mine)
    finally:
        listener.close()
    for p in secret:
        assert not res["read"][str(p)], p
    assert res["read"]["data.txt"] is True       # its own copied folder
    assert res["network"] is False and res["loopback"] is False
    assert res["write_repo"] is False
    assert res["uid"] >= 3_000_000
    assert not res["env_db"]
    assert 0 < res["mem_limit"] <= 8 * 2**30


@pytest.mark.slow
def test_selfcheck_passes():
    _root()
    from coursekit.selfcheck import run
    ok, lines = run()
    assert ok, "\n".join(lines)
