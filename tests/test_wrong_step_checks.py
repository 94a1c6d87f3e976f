"""a02's failing_step and a03's find_wrong_gradients: the wrong step is
told by the values of what the student's function is handed, nothing
else (issue #11, finding 3).

The checks run here in this process against the solution notebook's code
(its answer cells replaced), through the protocol's in-process kernel
(tests/test_sandbox.py): honest answers pass on every draw; the hostile
corpus's answers that read the callables (bytecode, names, closures) or
count the checks fail on every draw; and a served backward refuses a bad
call in the same words whichever form it computes. The same answers are
graded in real sandboxed kernels by tests/test_hostile.py.
"""
import contextlib
import io
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from coursekit import judge, nbmeta, pipeline, remote, simulate
from coursekit.checks import a02_losses as a02
from coursekit.checks import a03_backprop as a03
from test_sandbox import _FakeKernel

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
import corpus  # noqa: E402

REPO = pipeline.REPO
SEEDS = range(4)
CASES = {"a02_losses": ("failing_step", "test_failing_step"),
         "a03_backprop": ("find_wrong_gradients",
                          "test_find_wrong_gradients")}


def _notebook(A, answer=None) -> dict:
    """The solution notebook's code cells but its test cells, run here
    (as ipykernel names them), with ``answer`` in the question's cell."""
    src = REPO / "solutions" / A / f"{A}.ipynb"
    nb = nbformat.read(str(src), as_version=4)
    sol = simulate.solution_answers(src)
    fname, _ = CASES[A]
    if answer is not None:
        sol[fname] = answer
    ns = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for c in nb.cells:
            if c.cell_type != "code" or nbmeta.is_test(c):
                continue
            code = sol.get(nbmeta.grade_id(c), c.source)
            exec(compile(code, f"/tmp/ipykernel_1/{nbmeta.grade_id(c)}.py",
                         "exec"), ns)
    return ns


def _passes(A, ns) -> list:
    _, test = CASES[A]
    fn = getattr(judge.load(A), test)
    out, kernel = [], _FakeKernel(ns)
    for seed in SEEDS:
        with contextlib.redirect_stdout(io.StringIO()):
            v = judge.run_check(fn, remote.Student(kernel),
                                np.random.default_rng([7, seed]))
        out.append(v.passed)
    return out


def _answers(A):
    sol = simulate.solution_answers(REPO / "solutions" / A / f"{A}.ipynb")
    fname, _ = CASES[A]
    honest = sol[fname].replace(f"def {fname}(", "def _honest_failing_step("
                                if A == "a02_losses" else "def _honest_find(")
    if A == "a02_losses":
        return sol[fname], corpus.A02_HONEST, {
            "fingerprints": honest + corpus.A02_FINGERPRINT,
            "counts": honest + corpus.A02_COUNTS}
    return sol[fname], corpus.A03_HONEST, {
        "reads_code": honest + corpus.A03_READS_CODE,
        "counts": honest + corpus.A03_COUNTS}


@pytest.mark.parametrize("A", sorted(CASES))
def test_honest_answers_pass_every_draw(A):
    solution, other, _ = _answers(A)
    for answer in (solution, other):
        assert all(_passes(A, _notebook(A, answer))), answer


@pytest.mark.parametrize("A", sorted(CASES))
def test_answers_that_read_the_callables_fail_every_draw(A):
    _, _, attacks = _answers(A)
    for name, answer in attacks.items():
        assert not any(_passes(A, _notebook(A, answer))), name


def _refusal(fn, *args):
    try:
        fn(*args)
    except remote.Refused as exc:
        return str(exc)
    return None


def test_a02_backward_forms_refuse_alike_and_compute_both():
    d = a02._checkable_derivation(np.random.default_rng(1))
    for name in a02.NAMES:
        x = d.points[name]
        g = 1.0 if name == "dL/dP" else np.ones(d.points["dP/dZ"].shape)
        bad = [(x[:1], g), (x, np.ones((7, 7))), ("x", g), (x, [g, g]),
               (x + 0j, g), (np.ones(3), "g")]
        right, wrong = d.backward(name, False), d.backward(name, True)
        for args in bad:
            said = _refusal(right, *args)
            assert said and said == _refusal(wrong, *args), (name, args)
        with np.errstate(all="ignore"):      # values: the only difference
            for bwd in (right, wrong):
                assert bwd(np.full(x.shape, np.nan), g).shape == x.shape
        assert not np.allclose(right(x, g), wrong(x, g))


def test_a03_backward_forms_refuse_alike():
    X, Y, p = a03._checkable_case(np.random.default_rng(2))
    _, cache = a03._forward(X, p)
    bad = [(X[:, :1], Y, p, cache), (X, Y[:1], p, cache),
           (X, Y, {k: v for k, v in p.items() if k != "b1"}, cache),
           (X, Y, dict(p, W2=p["W2"].T), cache), (X, Y, p, {"A1": 1}),
           (X, Y, p, dict(cache, A1=cache["A1"][:, :1])),
           (X, Y, p, [cache]), ("X", Y, p, cache),
           (np.ones((500, 400)), Y, p, cache)]
    shapes = X.shape + (p["W1"].shape[0], p["W2"].shape[0])
    forms = {f: a03._served_backward(f, *shapes) for f in a03._HANDED}
    for args in bad:
        said = {_refusal(fn, *args) for fn in forms.values()}
        assert len(said) == 1 and None not in said, (args, said)
    out = {f: fn(X, Y, p, cache) for f, fn in forms.items()}
    assert all(list(g) == ["W2", "b2", "W1", "b1"] for g in out.values())


def test_the_hidden_order_is_drawn():
    orders = {tuple(a02._hidden_answers(np.random.default_rng(s)))
              for s in range(20)}
    assert len(orders) > 10
    assert all(set(o) == set(a02.NAMES + [None]) for o in orders)
