"""dlopt.second_order: finite-difference Hessians against
torch.autograd, Newton's direction, Armijo's backtracking rule, and the
runner, plus the formulas of the chapter that uses them."""
import numpy as np
import pytest
import torch
from formulas import covers

from dlopt.landscapes import rosenbrock
from dlopt.second_order import (armijo_backtracking, descend, fd_hessian,
                                hessian_vector, newton_direction,
                                top_curvature)

ROS = rosenbrock()


def f_ros(x):
    return ROS.value(x[0], x[1])


def g_ros(x):
    return np.array(ROS.grad(x[0], x[1]), dtype=np.float64)


def torch_hessian(x):
    def f(t):
        return (1 - t[0]) ** 2 + 100 * (t[1] - t[0] ** 2) ** 2
    return torch.autograd.functional.hessian(
        f, torch.tensor(x, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("x", [(-1.5, 2.5), (0.3, -0.2), (1.0, 1.0)])
def test_fd_hessian_matches_autograd(x):
    np.testing.assert_allclose(fd_hessian(g_ros, np.array(x)),
                               torch_hessian(x), rtol=1e-7, atol=1e-5)


@covers("eq-ch10-newton")
def test_newton_solves_a_quadratic_in_one_step():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    H = A @ A.T + 0.01 * np.eye(6)             # ill-conditioned SPD
    c = rng.normal(size=6)
    x0 = rng.normal(size=6)
    d = newton_direction(H @ (x0 - c), H)
    np.testing.assert_allclose(x0 + d, c, rtol=1e-8, atol=1e-10)
    # and the direction is H^{-1} g, via torch's solver
    g = torch.tensor(H @ (x0 - c))
    ref = -torch.linalg.solve(torch.tensor(H), g).numpy()
    np.testing.assert_allclose(d, ref, rtol=1e-10)
    run = descend(lambda x: 0.5 * (x - c) @ H @ (x - c),
                  lambda x: H @ (x - c), x0, steps=3, method="newton",
                  hessian=lambda x: H)
    assert run.loss[1] < 1e-18


@covers("eq-ch10-newton")
def test_newton_converges_quadratically_on_rosenbrock_near_the_minimum():
    x = np.array([1.2, 1.5])
    errs = []
    for _ in range(6):
        x = x + newton_direction(g_ros(x), torch_hessian(x))
        errs.append(np.linalg.norm(x - 1.0))
    # e_{k+1} <= C e_k^2 once close (from the third step): digits double
    assert errs[-1] < 1e-12
    for a, b in zip(errs[2:], errs[3:]):
        if b > 1e-14:
            assert b < 50 * a ** 2


def test_newton_direction_errors():
    with pytest.raises(ValueError, match="H must have shape"):
        newton_direction(np.ones(2), np.eye(3))
    with pytest.raises(ValueError, match="damping"):
        newton_direction(np.ones(2), np.eye(2), damping=-1)
    d = newton_direction(np.ones(2), np.zeros((2, 2)), damping=1.0)
    np.testing.assert_allclose(d, -np.ones(2))


@covers("eq-ch10-armijo")
@pytest.mark.parametrize("x", [(-1.5, 2.5), (0.0, 0.0), (2.0, -1.0)])
def test_armijo_returns_the_first_step_with_sufficient_decrease(x):
    x = np.array(x, dtype=np.float64)
    g = g_ros(x)
    d = -g
    c, shrink = 1e-4, 0.5
    a, k = armijo_backtracking(f_ros, x, f_ros(x), g, d, alpha0=1.0,
                               shrink=shrink, c=c)
    assert a == shrink ** (k - 1)
    # the rule, checked in torch
    t = torch.tensor(x, requires_grad=True)
    ((1 - t[0]) ** 2 + 100 * (t[1] - t[0] ** 2) ** 2).backward()
    slope = float(t.grad.numpy() @ d)
    assert f_ros(x + a * d) <= f_ros(x) + c * a * slope
    # ... and every longer step tried before it failed the rule
    for j in range(k - 1):
        b = shrink ** j
        assert f_ros(x + b * d) > f_ros(x) + c * b * slope


def test_armijo_errors():
    x = np.zeros(2)
    with pytest.raises(ValueError, match="not a descent direction"):
        armijo_backtracking(f_ros, x, f_ros(x), g_ros(x), g_ros(x))
    with pytest.raises(ValueError, match="shrink"):
        armijo_backtracking(f_ros, x, f_ros(x), g_ros(x), -g_ros(x),
                            shrink=1.5)


def test_descend_runs_and_validates():
    run = descend(f_ros, g_ros, (-1.5, 2.5), steps=200, method="gd",
                  alpha=1.0, line_search=True)
    assert run.params.shape[1] == 2 and len(run.loss) == len(run.steps) + 1
    assert np.all(np.diff(run.loss) <= 0)          # Armijo: monotone
    assert run.evaluations >= len(run.steps)
    newton = descend(f_ros, g_ros, (-1.5, 2.5), steps=100,
                     method="newton", line_search=True)
    assert newton.loss[-1] < 1e-20 and len(newton.steps) < 40
    with pytest.raises(ValueError, match="method"):
        descend(f_ros, g_ros, (0.0, 0.0), 3, method="bfgs")


def _mlp_loss(t, X, y):
    """A small tanh network's cross-entropy, parameters flat in t."""
    W1, b1 = t[:12].reshape(4, 3), t[12:16]
    W2, b2 = t[16:28].reshape(3, 4), t[28:31]
    Z = torch.tanh(X @ W1.T + b1) @ W2.T + b2
    return torch.nn.functional.cross_entropy(Z, y)


@covers("eq-ch11-hvp")
def test_hessian_vector_and_top_curvature_match_autograd():
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.normal(size=(20, 3)))
    y = torch.tensor(rng.integers(0, 3, size=20))
    x0 = rng.normal(size=31)

    def grad(x):
        t = torch.tensor(x, requires_grad=True)
        _mlp_loss(t, X, y).backward()
        return t.grad.numpy()
    H = torch.autograd.functional.hessian(
        lambda t: _mlp_loss(t, X, y), torch.tensor(x0)).numpy()
    v = rng.normal(size=31)
    v /= np.linalg.norm(v)
    np.testing.assert_allclose(hessian_vector(grad, x0, v), H @ v,
                               rtol=1e-6, atol=1e-8)
    lam, u = top_curvature(grad, x0, iters=500, tol=1e-12)
    eig = np.linalg.eigvalsh(H)
    top = eig[np.argmax(np.abs(eig))]
    assert lam == pytest.approx(top, rel=1e-5)
    np.testing.assert_allclose(H @ u, lam * u, atol=1e-3 * abs(lam))


def test_hessian_vector_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        hessian_vector(lambda x: x, np.zeros(3), np.zeros(4))
