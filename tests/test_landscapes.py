"""Landscapes: exact gradients vs torch.autograd, minima, runner, plots."""
import matplotlib
import numpy as np
import pytest
import torch

from dlopt import landscapes as Ls
from dlopt import optim as O
from dlopt import schedules as S
from dlopt.plotting import plot_contours, plot_losses, plot_trajectories

matplotlib.use("Agg")
ALL = [f() for f in Ls.LANDSCAPES.values()] + [Ls.quadratic(100.0),
                                               Ls.rosenbrock(2.0, 10.0),
                                               Ls.rotated_quadratic(50.0),
                                               Ls.rotated_quadratic(7.0, 0.3)]


@pytest.mark.parametrize("ls", ALL, ids=lambda s: s.name)
def test_gradient_matches_autograd(ls):
    rng = np.random.default_rng(0)
    x0, x1, y0, y1 = ls.window
    pts = np.column_stack([rng.uniform(x0, x1, 50), rng.uniform(y0, y1, 50)])
    for x, y in pts:
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        ty = torch.tensor(y, dtype=torch.float64, requires_grad=True)
        ls.value(tx, ty).backward()
        gx, gy = ls.grad(x, y)
        np.testing.assert_allclose([gx, gy], [tx.grad.item(),
                                              ty.grad.item()],
                                   rtol=1e-12, atol=1e-9)
        assert np.isclose(ls.value(x, y), ls.value(tx, ty).item())


@pytest.mark.parametrize("ls", ALL, ids=lambda s: s.name)
def test_minima_are_stationary_and_lowest(ls):
    for mx, my in ls.minima:
        np.testing.assert_allclose(ls.grad(mx, my), 0.0, atol=1e-9)
        rng = np.random.default_rng(1)
        d = rng.normal(scale=1e-3, size=(20, 2))
        assert np.all(ls.value(mx + d[:, 0], my + d[:, 1])
                      > ls.value(mx, my))


@pytest.mark.parametrize("kappa,angle", [(50.0, np.pi / 4), (7.0, 0.3)])
def test_rotated_quadratic_has_the_turned_hessian(kappa, angle):
    land = Ls.rotated_quadratic(kappa, angle)
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s], [s, c]])
    H = R @ np.diag([1.0, kappa]) @ R.T
    for p in np.random.default_rng(2).normal(size=(10, 2)):
        np.testing.assert_allclose(land.grad(*p), H @ p, rtol=1e-12,
                                   atol=1e-14)
        assert land.value(*p) == pytest.approx(0.5 * p @ H @ p)
    # the curvature is 1 and kappa along the turned axes
    np.testing.assert_allclose(np.linalg.eigvalsh(H), [1.0, kappa])
    with pytest.raises(ValueError, match="kappa must be >= 1"):
        Ls.rotated_quadratic(0.5)


def test_saddles_are_stationary_not_minima():
    for ls in (Ls.saddle(), Ls.monkey_saddle()):
        np.testing.assert_allclose(ls.grad(0.0, 0.0), 0.0)
        assert ls.value(0.1, 0.05) != ls.value(-0.1, 0.05) or \
            ls.value(0.0, 0.1) < 0


def test_grid_broadcasting():
    X, Y = np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 3))
    for ls in ALL:
        assert ls.value(X, Y).shape == (3, 4)
        gx, gy = ls.grad(X, Y)
        assert np.shape(gx) == np.shape(gy) == (3, 4)


def test_run_records_and_converges():
    ls = Ls.quadratic(10.0)
    traj = Ls.run(O.sgd(0.09), ls, [2.0, 1.0], 200)
    assert traj.params.shape == (201, 2) and traj.loss.shape == (201,)
    np.testing.assert_array_equal(traj.params[0], [2.0, 1.0])
    assert traj.loss[-1] < 1e-8 * traj.loss[0]
    assert np.all(np.diff(traj.loss) <= 0)
    # recorded loss is the value at the recorded params
    np.testing.assert_allclose(traj.loss, ls.value(*traj.params.T))
    # Adam with a schedule finds the Rosenbrock valley floor
    tr = Ls.run(O.adam(S.cosine(0.05, 3000)), Ls.rosenbrock(),
                [-1.5, 2.0], 3000)
    assert tr.loss[-1] < 1e-3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_run_errors():
    ls = Ls.beale()
    with pytest.raises(ValueError, match="x0 must have shape"):
        Ls.run(O.sgd(0.1), ls, [1.0, 2.0, 3.0], 5)
    with pytest.raises(ValueError, match="steps must be"):
        Ls.run(O.sgd(0.1), ls, [1.0, 2.0], -1)
    with pytest.raises(TypeError, match="GradientTransformation"):
        Ls.run(lambda g: g, ls, [1.0, 2.0], 5)
    with pytest.raises(FloatingPointError, match="xy"):
        Ls.run(O.sgd(10.0), Ls.rosenbrock(), [-1.5, 2.0], 50)
    with pytest.raises(ValueError, match="kappa"):
        Ls.quadratic(0.5)


def test_plots_return_fig_ax():
    import matplotlib.pyplot as plt
    ls = Ls.himmelblau()
    trajs = {"sgd": Ls.run(O.sgd(0.01), ls, [0.0, 0.0], 30),
             "adam": Ls.run(O.adam(0.1), ls, [0.0, 0.0], 30)}
    fig, ax = plot_trajectories(ls, trajs)
    assert len(ax.get_legend().get_texts()) == 2
    assert len(ax.lines) >= 2 + len(ls.minima)
    fig2, ax2 = plt.subplots()
    f, a = plot_contours(Ls.saddle(), ax=ax2)
    assert f is fig2 and a is ax2
    f, a = plot_losses(trajs)
    assert len(a.lines) == 2 and a.get_yscale() == "log"
    # every iterate is drawn; with markevery only every k-th has a dot
    _, ax3 = plot_trajectories(ls, {"sgd": trajs["sgd"]}, markevery=5)
    (path,) = [ln for ln in ax3.lines if ln.get_label() == "sgd"]
    assert len(path.get_xdata()) == 31 and path.get_markevery() == 5
    plt.close("all")
