"""Assignment 4's promise: the optimizers a student composes there are
``GradientTransformation``s like the library's, so ``dlopt.train.fit``
and the playground take them as they are and compute what the library's
optimizers compute.

The student here is the instructor's solution: the notebook's setup cell
and answer cells, executed in order in one namespace (what a student's
kernel holds after running them).
"""
import nbformat
import numpy as np
import pytest

from coursekit import nbmeta, pipeline, simulate
from dlopt import landscapes, optim
from dlopt.playground import START, Playground
from dlopt.train import fit

NB = pipeline.REPO / "solutions" / "a04_optimizers" / "a04_optimizers.ipynb"


@pytest.fixture(scope="module")
def student():
    nb = nbformat.read(str(NB), as_version=4)
    answers = simulate.solution_answers(NB)
    ns: dict = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if nbmeta.grade_id(cell) == "setup":
            exec(compile(cell.source, "<a04 setup>", "exec"), ns)
        elif nbmeta.is_answer(cell):
            gid = nbmeta.grade_id(cell)
            exec(compile(answers[gid], f"<a04 {gid}>", "exec"), ns)
    return ns


# (the student's composition, torch-named keywords) -> dlopt's alias
CASES = {
    "sgd": (dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
            lambda lr, **kw: optim.sgd(lr, **kw)),
    "nesterov": (dict(lr=0.05, momentum=0.9, nesterov=True),
                 lambda lr, **kw: optim.sgd(lr, **kw)),
    "adagrad": (dict(lr=0.3, weight_decay=0.01), optim.adagrad),
    "rmsprop": (dict(lr=0.05, alpha=0.9, weight_decay=0.01), optim.rmsprop),
    "adam": (dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.01),
             optim.adam),
    "adamw": (dict(lr=0.05, weight_decay=0.1), optim.adamw),
    "nadam": (dict(lr=0.05, weight_decay=0.01), optim.nadam),
}


def _linear_problem():
    X = np.random.default_rng(4).normal(size=(256, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1

    def loss_and_grads(params, Xb, yb):
        r = Xb @ params["w"] + params["b"] - yb
        return 0.5 * np.mean(r * r), {"w": Xb.T @ r / len(r),
                                      "b": np.asarray(np.mean(r))}
    return {"w": np.zeros(3), "b": np.zeros(())}, loss_and_grads, (X, y)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_runs_the_students_optimizer_like_the_librarys(student, name):
    kw, library = CASES[name]
    mine = dict(kw)
    make = student["sgd" if name == "nesterov" else name]
    p0, loss, data = _linear_problem()
    ref_kw = {k: v for k, v in kw.items() if k != "lr"}
    got, h_got = fit(p0, loss, data, make(**mine), epochs=5, batch_size=32,
                     progress=False, seed=0)
    want, h_want = fit(p0, loss, data, library(kw["lr"], **ref_kw),
                       epochs=5, batch_size=32, progress=False, seed=0)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12,
                                   err_msg=f"{name}: params[{k!r}]")
    np.testing.assert_allclose(h_got.loss, h_want.loss, rtol=1e-10)
    assert h_got.loss[-1] < 0.5 * h_got.loss[0]      # it trained


@pytest.mark.parametrize("name", ["adam", "nadam"])
def test_the_playground_runs_the_students_optimizer(student, name):
    make = student[name]
    pg = Playground(optimizers={f"my {name}": lambda lr, b, b2: make(
        lr, betas=(b, b2))}, landscape="rosenbrock",
        optimizer=f"my {name}", lr=0.02, steps=60)
    pg.controls["beta"].value = 0.8
    library = getattr(optim, name)(0.02, betas=(0.8, 0.999))
    ref = landscapes.run(library, landscapes.rosenbrock(),
                         START["rosenbrock"], 60)
    assert pg.message is None
    np.testing.assert_allclose(pg.result.params, ref.params, rtol=1e-10,
                               atol=1e-12)


def test_float32_adam_direction_is_read_back_from_the_run():
    """AdamW with its Adam direction rounded to float32 (a float32 block
    upcast by the float64 decay) agrees with torch to 1e-6 on some draws
    and not on others; read back from the params' path, the direction
    is a float32 on every draw and a float64 one on none."""
    from coursekit.checks import a04_optimizers as ck
    for seed in range(12):
        rng = np.random.default_rng([7, seed])
        hp = dict(lr=ck._r(rng, 0.01, 0.05),
                  betas=(ck._r(rng, 0.7, 0.9), ck._r(rng, 0.9, 0.99)),
                  eps=0.01, weight_decay=ck._r(rng, 0.2, 0.8))
        params0, problem = ck._problem(rng)
        p0 = ck._flat({k: np.asarray(v)[None] for k, v in params0.items()})
        honest = ck._flat(ck._np_run("adamw", hp, params0, problem,
                                     ck.STEPS))
        assert not ck._float32_direction(honest, p0[0], hp), seed
        # the same run with the direction rounded, step by step
        p = {k: np.array(v, float) for k, v in params0.items()}
        m = {k: np.zeros_like(v) for k, v in p.items()}
        v2 = {k: np.zeros_like(v) for k, v in p.items()}
        b1, b2 = hp["betas"]
        path = []
        for t in range(1, ck.STEPS + 1):
            g = ck._np_gradient(problem, p)
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v2[k] = b2 * v2[k] + (1 - b2) * g[k] ** 2
                d = (m[k] / (1 - b1 ** t)) / (
                    np.sqrt(v2[k] / (1 - b2 ** t)) + hp["eps"])
                d = d.astype(np.float32)
                p[k] = p[k] - hp["lr"] * (d + hp["weight_decay"] * p[k])
            path.append({k: x.copy() for k, x in p.items()})
        run = {k: np.array([s[k] for s in path]) for k in p}
        assert ck._float32_direction(ck._flat(run), p0[0], hp), seed
