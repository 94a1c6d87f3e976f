"""Checks of every formula in chapter 4, "Gradient descent"."""
import itertools

import numpy as np
import pytest
import torch
from formulas import covers

from dlopt import optim
from dlopt.gradcheck import numerical_gradient
from dlopt.losses import mse
from dlopt.maps import affine_backward, affine_forward


def data(seed=0, N=30):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2, size=N)
    return x, 2 * x + 1 + rng.normal(scale=0.2, size=N)


def cost(theta, x, y):
    """eq-ch04-cost as printed."""
    return np.sum((theta[0] + theta[1] * x - y) ** 2) / (2 * len(x))


def torch_cost_and_grad(theta, x, y, lam=0.0):
    th = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    J = 0.5 * torch.nn.functional.mse_loss(th[0] + th[1] * xt, yt)
    J = J + lam / (2 * len(x)) * (th * th).sum()
    J.backward()
    return J.item(), th.grad.numpy()


@covers("eq-ch04-cost")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cost_is_half_mse_and_dlopt_mse(seed):
    x, y = data(seed)
    theta = np.random.default_rng(seed).normal(size=2)
    J_ref, _ = torch_cost_and_grad(theta, x, y)
    assert cost(theta, x, y) == pytest.approx(J_ref, rel=1e-12)
    Y_hat = (theta[0] + theta[1] * x)[:, None]
    assert mse(Y_hat, y[:, None])[0] == pytest.approx(J_ref, rel=1e-12)


@covers("eq-ch04-grad")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_components_match_autograd(seed):
    x, y = data(seed)
    theta = np.random.default_rng(seed).normal(size=2)
    r = theta[0] + theta[1] * x - y
    mine = np.array([r.mean(), (r * x).mean()])
    _, ref = torch_cost_and_grad(theta, x, y)
    np.testing.assert_allclose(mine, ref, rtol=1e-12)
    num = numerical_gradient(lambda th: cost(th, x, y), theta.copy())
    np.testing.assert_allclose(mine, num, rtol=1e-6)
    # The article's version (sign, factor 2, one scalar) is not it.
    wrong = np.sum(2 * (-r)) + np.sum(2 * (-r) * x)
    assert not np.any(np.isclose(wrong, ref))


@covers("eq-ch04-grad-matrix")
def test_matrix_form_and_the_chapter_maps():
    x, y = data(3)
    theta = np.array([0.4, -1.2])
    Xt = np.c_[np.ones_like(x), x]
    g = Xt.T @ (Xt @ theta - y) / len(x)
    _, ref = torch_cost_and_grad(theta, x, y)
    np.testing.assert_allclose(g, ref, rtol=1e-12)
    # The chapter computes it with affine maps + mse.
    Y_hat, cache = affine_forward(x[:, None], np.array([[theta[1]]]),
                                  np.array([theta[0]]))
    _, dY = mse(Y_hat, y[:, None])
    _, dW, db = affine_backward(dY, cache)
    np.testing.assert_allclose([db[0], dW[0, 0]], ref, rtol=1e-12)


@covers("eq-ch04-gd")
def test_gd_step_matches_torch_sgd():
    x, y = data(4)
    theta = np.array([0.0, 0.0])
    th = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt_t = torch.optim.SGD([th], lr=0.3)
    opt = optim.sgd(0.3)
    params = {"theta": theta}
    state = opt.init(params)
    for _ in range(25):
        r = params["theta"][0] + params["theta"][1] * x - y
        g = np.array([r.mean(), (r * x).mean()])
        expected = params["theta"] - 0.3 * g            # as printed
        u, state = opt.update({"theta": g}, state, params)
        params = optim.apply_updates(params, u)
        np.testing.assert_allclose(params["theta"], expected, rtol=1e-14)
        opt_t.zero_grad()
        J = 0.5 * torch.nn.functional.mse_loss(
            th[0] + th[1] * torch.from_numpy(x), torch.from_numpy(y))
        J.backward()
        opt_t.step()
    np.testing.assert_allclose(params["theta"], th.detach().numpy(),
                               rtol=1e-12)


def random_spd(rng, n=3, lo=0.1, hi=4.0):
    Q = np.linalg.qr(rng.normal(size=(n, n)))[0]
    return Q @ np.diag(np.linspace(lo, hi, n)) @ Q.T


@covers("eq-ch04-error-map")
def test_error_follows_the_linear_map():
    rng = np.random.default_rng(5)
    H, star = random_spd(rng), rng.normal(size=3)
    theta, alpha = rng.normal(size=3), 0.2
    e0 = theta - star
    for t in range(1, 20):
        theta = theta - alpha * H @ (theta - star)
        np.testing.assert_allclose(
            theta - star,
            np.linalg.matrix_power(np.eye(3) - alpha * H, t) @ e0,
            rtol=1e-9, atol=1e-12)


@covers("eq-ch04-stability")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_over_L_is_the_threshold(seed):
    rng = np.random.default_rng(seed)
    H, star = random_spd(rng), rng.normal(size=3)
    L = np.linalg.eigvalsh(H).max()

    def final_error(alpha, steps=3000):
        th = star + rng.normal(size=3)
        for _ in range(steps):
            th = th - alpha * H @ (th - star)
        return np.linalg.norm(th - star)
    assert final_error(1.98 / L) < 1e-6
    assert final_error(2.02 / L) > 1e6


@covers("eq-ch04-minibatch")
def test_minibatch_gradient_is_the_batch_mean_and_unbiased():
    x, y = data(6, N=12)
    theta = np.array([0.5, 0.5])
    per = np.stack([(theta[0] + theta[1] * x - y),
                    (theta[0] + theta[1] * x - y) * x], axis=1)
    full = torch_cost_and_grad(theta, x, y)[1]
    B = 4
    batches = list(itertools.combinations(range(12), B))
    means = np.array([per[list(b)].mean(axis=0) for b in batches])
    # each batch: autograd of the batch's mean cost
    for b in batches[:5]:
        b = list(b)
        np.testing.assert_allclose(
            per[b].mean(axis=0), torch_cost_and_grad(theta, x[b], y[b])[1],
            rtol=1e-12)
    # unbiased: the mean over all batches is the full gradient
    np.testing.assert_allclose(means.mean(axis=0), full, rtol=1e-12)


@covers("eq-ch04-minibatch-var")
@pytest.mark.parametrize("B", [1, 2, 3])
def test_minibatch_covariance_is_sigma_over_B(B):
    # Exact: enumerate every ordered batch of B independent uniform draws.
    x, y = data(7, N=5)
    theta = np.array([-0.3, 1.1])
    r = theta[0] + theta[1] * x - y
    per = np.stack([r, r * x], axis=1)
    gbar = per.mean(axis=0)
    Sigma = (per - gbar).T @ (per - gbar) / len(x)
    gs = np.array([per[list(b)].mean(axis=0) for b in
                   itertools.product(range(5), repeat=B)])
    cov = (gs - gbar).T @ (gs - gbar) / len(gs)
    np.testing.assert_allclose(cov, Sigma / B, rtol=1e-12)


@covers("eq-ch04-l2", "eq-ch04-l2-grad")
@pytest.mark.parametrize("lam", [0.0, 0.5, 3.0])
def test_l2_penalty_and_its_gradient(lam):
    x, y = data(8)
    N = len(x)
    theta = np.array([0.7, -0.4])
    J_ref, g_ref = torch_cost_and_grad(theta, x, y, lam)
    J = cost(theta, x, y) + lam / (2 * N) * np.sum(theta ** 2)
    assert J == pytest.approx(J_ref, rel=1e-12)
    r = theta[0] + theta[1] * x - y
    g = np.array([r.mean(), (r * x).mean()]) + lam / N * theta
    np.testing.assert_allclose(g, g_ref, rtol=1e-12)
    # The article's sum over samples is N times the penalty.
    article = lam / (2 * N) * sum(np.sum(theta ** 2) for _ in range(N))
    assert article == pytest.approx(N * lam / (2 * N) * np.sum(theta ** 2))
    if lam:
        assert article != pytest.approx(J - cost(theta, x, y))


# ------------------------------------------- the page's own data

@pytest.fixture(scope="module")
def page():
    from chapter import run_page
    return run_page("ch04_gradient_descent")


def test_gd_lands_near_the_true_line(page):
    g, x, y = page["_glued"], page["x"], page["y"]
    # least squares by torch, independent of the page's lstsq
    A = torch.stack([torch.ones(len(x), dtype=torch.float64),
                     torch.from_numpy(x)], 1)
    sol = torch.linalg.lstsq(A, torch.from_numpy(y)[:, None]).solution
    np.testing.assert_allclose([g["ch04-theta0"], g["ch04-theta1"]],
                               sol[:, 0].numpy(), atol=1e-4)
    assert abs(g["ch04-theta0"] - 1) < 0.1 and abs(g["ch04-theta1"] - 2) < 0.1


def gap(page, tr):
    return tr.loss - page["J"](*page["exact"])


def test_four_learning_rates_plot(page):
    runs, g = page["runs"], page["_glued"]
    gaps = {k.split(" (")[1].rstrip(")"): gap(page, tr)
            for k, tr in runs.items()}
    # the start and one point per step
    assert all(len(v) == g["ch04-path-steps"] + 1 == 61
               for v in gaps.values())
    slow, mono, osc, div = (gaps[k] for k in ("too small", "monotone",
                                              "oscillates", "divergent"))
    assert 0.1 < slow[-1] / slow[0] < 0.9            # falls, slowly
    assert np.all(np.diff(mono) < 0)                 # falls steadily
    assert osc[-1] < mono[-1] < slow[-1]             # 1.9 fastest
    assert div[-1] > 1e3 * div[0] and np.all(np.diff(div[10:]) > 0)


def test_stability_sweep(page):
    g = page["_glued"]
    cs, final = page["cs"], np.asarray(page["final"])
    h = np.linalg.eigvalsh(page["H"])
    assert g["ch04-best-ah"] == pytest.approx(2 * h[1] / (h[0] + h[1]))
    assert 1.8 < g["ch04-best-ah"] < 2               # "just under"
    best = cs[np.argmin(final)]
    assert g["ch04-sweep-best"] == best
    assert abs(best - g["ch04-best-ah"]) < 2 * (cs[1] - cs[0])
    # alt text: 0.1 at 0.05, falls steadily, below 1e-11 near 1.9,
    # still converging below 2, explodes above
    assert round(final[0], 1) == 0.1
    assert np.all(np.diff(final[cs < 1.85]) < 0)
    assert final.min() < 1e-11
    start = gap(page, page["runs"]["alpha h_max = 1 (monotone)"])[0]
    assert np.all(final[cs < 2] < start)
    assert np.all(final[cs > 2.01] > start) and final[-1] > 1e4


def test_batch_size_per_epoch_and_per_update(page):
    best = page["best"]
    gaps = {B: np.asarray(h.loss) - best for B, h in page["hists"].items()}
    # per epoch: B = 1 fastest, then 10, then 100
    assert gaps[1][4] < gaps[10][4] < gaps[100][4]
    # B = 1 ends in a noisy band: not monotone over the last 30 epochs
    assert np.sum(np.diff(gaps[1][10:]) > 0) >= 5
    assert np.all(np.diff(gaps[100]) < 0)            # full batch: exact
    # per update (N // B updates per epoch): the full batch is fastest
    assert gaps[100][39] < gaps[10][3]               # 40 updates
    assert gaps[10][9] < gaps[1][0]                  # 100 updates


def test_batch_size_against_learning_rate(page):
    g, alphas, sweep = page["_glued"], page["alphas"], page["sweep"]
    bound = 2 / page["h_max"]
    assert g["ch04-two-over-hmax"] == pytest.approx(
        2 / np.linalg.eigvalsh(page["H"]).max())
    lrs = []
    for B, ends in sweep.items():
        np.testing.assert_array_equal(np.isnan(ends), alphas > bound)
        k = int(np.nanargmin(ends))
        assert g[f"ch04-best-lr-{B}"] == alphas[k]
        lrs.append(alphas[k])
        finite = ends[~np.isnan(ends)]
        assert 0 < k < len(finite) - 1                # falls, then rises
        assert finite[0] > 3 * finite[k] and finite[-1] > 3 * finite[k]
    assert lrs == sorted(lrs) and len(set(lrs)) == 3  # moves right
    assert g["ch04-sweep-epochs"] == 20
