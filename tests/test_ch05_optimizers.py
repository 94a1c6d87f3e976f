"""Checks of every formula in chapter 5, "Optimizers": each update rule
as printed (NumPy, per array) and the dlopt building block that
implements it, both against torch.optim in float64."""
import math

import numpy as np
import pytest
import torch
from formulas import covers

from dlopt import optim
from dlopt.landscapes import quadratic

STEPS = 40


def problem(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(4, 4))
    H = A @ A.T / 4 + 0.1 * np.eye(4)
    c = rng.normal(size=4)
    return rng.normal(size=4), lambda th: H @ (th - c) + 0.05 * th ** 3


def torch_path(cls, theta0, grad, steps=STEPS, **kw):
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = cls([p], **kw)
    out = []
    for _ in range(steps):
        p.grad = torch.from_numpy(grad(p.detach().numpy().copy()))
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


def book_path(rule, theta0, grad, steps=STEPS):
    th, state, out = theta0.copy(), {"t": 0}, []
    for _ in range(steps):
        state["t"] += 1
        th = rule(th, grad(th), state)
        out.append(th.copy())
    return np.array(out)


def dlopt_path(opt, theta0, grad, steps=STEPS):
    """The iterates of a dlopt transformation (the library's code, not a
    copy of it)."""
    p, out = {"w": theta0.copy()}, []
    s = opt.init(p)
    for _ in range(steps):
        p, s = optim.step(opt, p, {"w": grad(p["w"])}, s)
        out.append(p["w"].copy())
    return np.array(out)


def lr_chain(lr, *blocks):
    return optim.chain(*blocks, optim.scale_by_learning_rate(lr))


@covers("eq-ch05-quadratic")
@pytest.mark.parametrize("kappa", [1.0, 10.0, 50.0])
def test_quadratic_and_its_gradient(kappa):
    land = quadratic(kappa)
    for x, y in [(0.3, -1.2), (-2.0, 0.5)]:
        t = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
        f = 0.5 * (t[0] ** 2 + kappa * t[1] ** 2)
        f.backward()
        assert land.value(x, y) == pytest.approx(f.item(), rel=1e-14)
        np.testing.assert_allclose(land.grad(x, y), t.grad.numpy(),
                                   rtol=1e-14)


@covers("eq-ch05-momentum")
@pytest.mark.parametrize("seed,lr,mu", [(0, 0.05, 0.9), (1, 0.1, 0.5)])
def test_momentum_as_printed_matches_torch(seed, lr, mu):
    theta0, grad = problem(seed)

    def rule(th, g, s):
        s["b"] = g.copy() if s["t"] == 1 else mu * s["b"] + g
        return th - lr * s["b"]
    ref = torch_path(torch.optim.SGD, theta0, grad, lr=lr, momentum=mu)
    np.testing.assert_allclose(book_path(rule, theta0, grad), ref,
                               rtol=1e-11, atol=1e-13)
    # and dlopt's sgd(momentum=...)
    p, opt = {"w": theta0.copy()}, optim.sgd(lr, momentum=mu)
    s = opt.init(p)
    for k in range(STEPS):
        p, s = optim.step(opt, p, {"w": grad(p["w"])}, s)
    np.testing.assert_allclose(p["w"], ref[-1], rtol=1e-11)


@covers("eq-ch05-nesterov")
@pytest.mark.parametrize("seed,lr,mu", [(2, 0.05, 0.9), (3, 0.1, 0.6)])
def test_nesterov_as_printed_matches_torch(seed, lr, mu):
    theta0, grad = problem(seed)

    def rule(th, g, s):
        s["b"] = g.copy() if s["t"] == 1 else mu * s["b"] + g
        return th - lr * (g + mu * s["b"])
    ref = torch_path(torch.optim.SGD, theta0, grad, lr=lr, momentum=mu,
                     nesterov=True)
    np.testing.assert_allclose(book_path(rule, theta0, grad), ref,
                               rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(
        dlopt_path(lr_chain(lr, optim.trace(mu, nesterov=True)), theta0,
                   grad), ref, rtol=1e-11, atol=1e-13)


@covers("eq-ch05-heavy-ball")
def test_momentum_is_the_second_order_recurrence():
    lr, mu, lam = 0.1, 0.7, 3.0
    e, b, es = 1.0, 0.0, [1.0]
    for t in range(1, 30):                       # eq-ch05-momentum, 1-D
        g = lam * e
        b = g if t == 1 else mu * b + g
        e = e - lr * b
        es.append(e)
    for t in range(2, 30):
        rec = es[t - 1] - lr * lam * es[t - 1] + mu * (es[t - 1] - es[t - 2])
        assert es[t] == pytest.approx(rec, rel=1e-12, abs=1e-15)


@covers("eq-ch05-char")
@pytest.mark.parametrize("lr,mu,lam", [(0.1, 0.3, 1.0), (0.05, 0.9, 4.0),
                                       (0.02, 0.5, 50.0)])
def test_roots_give_the_convergence_rate(lr, mu, lam):
    roots = np.roots([1, -(1 + mu - lr * lam), mu])
    # The recurrence's companion matrix has exactly these eigenvalues.
    M = np.array([[1 + mu - lr * lam, -mu], [1.0, 0.0]])
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(M)),
                               np.sort_complex(roots), rtol=1e-10)
    # Measured: the error shrinks like max|r|^t.
    e = [1.0, 1.0 - lr * lam]
    for _ in range(400):
        e.append(e[-1] - lr * lam * e[-1] + mu * (e[-1] - e[-2]))
    rho = np.abs(roots).max()
    measured = (np.hypot(e[-1], e[-2]) / np.hypot(e[-201], e[-202])) \
        ** (1 / 200)
    assert measured == pytest.approx(rho, rel=2e-2)


@covers("eq-ch05-polyak")
@pytest.mark.parametrize("kappa", [10.0, 50.0, 400.0])
def test_polyak_parameters_reach_the_sqrt_kappa_rate(kappa):
    m, L = 1.0, kappa
    a = 4 / (math.sqrt(L) + math.sqrt(m)) ** 2
    mu = ((math.sqrt(L) - math.sqrt(m)) / (math.sqrt(L) + math.sqrt(m))) ** 2

    def rate(a, mu):
        return max(np.abs(np.roots([1, -(1 + mu - a * lam), mu])).max()
                   for lam in (m, L))
    best = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    assert rate(a, mu) == pytest.approx(best, rel=1e-6)
    # and no nearby setting does better
    for da in (0.9, 1.1):
        for dm in (0.95, 1.05):
            assert rate(a * da, min(mu * dm, 0.999)) >= best - 1e-9


@covers("eq-ch05-adagrad")
@pytest.mark.parametrize("seed,lr,eps", [(4, 0.1, 1e-10), (5, 0.3, 0.1)])
def test_adagrad_as_printed_matches_torch(seed, lr, eps):
    theta0, grad = problem(seed)

    def rule(th, g, s):
        s["s"] = s.get("s", 0.0) + g * g
        return th - lr * g / (np.sqrt(s["s"]) + eps)
    ref = torch_path(torch.optim.Adagrad, theta0, grad, lr=lr, eps=eps)
    np.testing.assert_allclose(book_path(rule, theta0, grad), ref,
                               rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(
        dlopt_path(lr_chain(lr, optim.scale_by_rss(eps=eps)), theta0, grad),
        ref, rtol=1e-11, atol=1e-13)


@covers("eq-ch05-rmsprop")
@pytest.mark.parametrize("seed,lr,rho,eps", [(6, 0.01, 0.99, 1e-8),
                                             (7, 0.03, 0.9, 0.05)])
def test_rmsprop_as_printed_matches_torch(seed, lr, rho, eps):
    theta0, grad = problem(seed)

    def rule(th, g, s):
        s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
        return th - lr * g / (np.sqrt(s["v"]) + eps)
    ref = torch_path(torch.optim.RMSprop, theta0, grad, lr=lr, alpha=rho,
                     eps=eps)
    np.testing.assert_allclose(book_path(rule, theta0, grad), ref,
                               rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(
        dlopt_path(lr_chain(lr, optim.scale_by_rms(rho, eps)), theta0,
                   grad), ref, rtol=1e-11, atol=1e-13)


def adam_rule(lr, b1, b2, eps, wd=0.0, decoupled=False):
    def rule(th, g, s):
        t = s["t"]
        if decoupled:
            th = (1 - lr * wd) * th
        else:
            g = g + wd * th
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        mh, vh = s["m"] / (1 - b1 ** t), s["v"] / (1 - b2 ** t)
        return th - lr * mh / (np.sqrt(vh) + eps)
    return rule


@covers("eq-ch05-adam")
@pytest.mark.parametrize("seed,lr,b1,b2,eps", [
    (8, 1e-2, 0.9, 0.999, 1e-8), (9, 3e-2, 0.8, 0.95, 1e-3)])
def test_adam_as_printed_matches_torch(seed, lr, b1, b2, eps):
    theta0, grad = problem(seed)
    ref = torch_path(torch.optim.Adam, theta0, grad, lr=lr, betas=(b1, b2),
                     eps=eps)
    np.testing.assert_allclose(
        book_path(adam_rule(lr, b1, b2, eps), theta0, grad), ref,
        rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        dlopt_path(lr_chain(lr, optim.scale_by_adam(b1, b2, eps)), theta0,
                   grad), ref, rtol=1e-10, atol=1e-12)


@covers("eq-ch05-bias")
@pytest.mark.parametrize("b", [0.9, 0.999])
def test_bias_of_the_moving_average(b):
    # Constant gradient: m_t = (1 - b^t) g exactly, and dlopt's
    # bias_correction gives g back.
    g, m = 2.5, 0.0
    for t in range(1, 200):
        m = optim.update_moment(g, m, b)
        assert m == pytest.approx((1 - b ** t) * g, rel=1e-12)
        assert optim.bias_correction(m, b, t) == pytest.approx(g,
                                                               rel=1e-12)
    # Random gradients with mean mu: the average over many runs.
    rng = np.random.default_rng(0)
    G = 1.5 + rng.normal(size=(20000, 10))
    m = np.zeros(20000)
    for t in range(10):
        m = optim.update_moment(G[:, t], m, b)
    assert m.mean() == pytest.approx((1 - b ** 10) * 1.5, rel=0.02)
    # Adam's very first step is alpha * sign(g) with the correction.
    th = adam_rule(0.1, 0.9, 0.999, 0.0)(np.array([0.0, 0.0]),
                                          np.array([3.0, -0.2]), {"t": 1})
    np.testing.assert_allclose(th, [-0.1, 0.1], rtol=1e-12)
    adam = lr_chain(0.1, optim.scale_by_adam(eps=0.0))
    p = {"w": np.zeros(2)}
    u, _ = adam.update({"w": np.array([3.0, -0.2])}, adam.init(p), p)
    np.testing.assert_allclose(u["w"], [-0.1, 0.1], rtol=1e-12)
    # without the correction the first step is (1 - b1)/sqrt(1 - b2) lr
    raw = lr_chain(0.1, optim.scale_by_adam(eps=0.0, bias_correction=False))
    u, _ = raw.update({"w": np.array([3.0, -0.2])}, raw.init(p), p)
    np.testing.assert_allclose(np.abs(u["w"]), 0.1 * 0.1 / math.sqrt(1e-3),
                               rtol=1e-12)


@covers("eq-ch05-nadam")
@pytest.mark.parametrize("seed,lr,b1,b2", [(10, 2e-3, 0.9, 0.999),
                                           (11, 2e-2, 0.8, 0.99)])
def test_nadam_as_printed_matches_torch(seed, lr, b1, b2):
    theta0, grad = problem(seed)
    psi, eps = 4e-3, 1e-8

    def rule(th, g, s):
        t = s["t"]
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        s["P"] = s.get("P", 1.0) * mu_t
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        d = np.sqrt(s["v"] / (1 - b2 ** t)) + eps
        return th - lr * ((1 - mu_t) / (1 - s["P"]) * g / d
                          + mu_next / (1 - s["P"] * mu_next) * s["m"] / d)
    # torch keeps NAdam's mu_product in the default scalar dtype: make it
    # float64 too, or torch itself is only float32-accurate here.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref = torch_path(torch.optim.NAdam, theta0, grad, lr=lr,
                         betas=(b1, b2))
    finally:
        torch.set_default_dtype(old)
    np.testing.assert_allclose(book_path(rule, theta0, grad), ref,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        dlopt_path(lr_chain(lr, optim.scale_by_nadam(b1, b2)), theta0,
                   grad), ref, rtol=1e-10, atol=1e-12)


@covers("eq-ch05-adam-l2")
@pytest.mark.parametrize("wd", [0.1, 1.0])
def test_adam_weight_decay_is_coupled_l2(wd):
    theta0, grad = problem(12)
    ref = torch_path(torch.optim.Adam, theta0, grad, lr=1e-2,
                     weight_decay=wd)
    np.testing.assert_allclose(
        book_path(adam_rule(1e-2, 0.9, 0.999, 1e-8, wd), theta0, grad),
        ref, rtol=1e-10, atol=1e-12)
    coupled = lr_chain(1e-2, optim.add_decayed_weights(wd),   # before
                       optim.scale_by_adam())
    np.testing.assert_allclose(dlopt_path(coupled, theta0, grad), ref,
                               rtol=1e-10, atol=1e-12)
    # ... and it is not AdamW.
    other = torch_path(torch.optim.AdamW, theta0, grad, lr=1e-2,
                       weight_decay=wd)
    assert not np.allclose(ref, other, rtol=1e-6)


@covers("eq-ch05-adamw")
@pytest.mark.parametrize("wd,lr", [(0.01, 1e-2), (0.5, 3e-2)])
def test_adamw_as_printed_matches_torch(wd, lr):
    theta0, grad = problem(13)
    ref = torch_path(torch.optim.AdamW, theta0, grad, lr=lr,
                     weight_decay=wd)
    np.testing.assert_allclose(
        book_path(adam_rule(lr, 0.9, 0.999, 1e-8, wd, decoupled=True),
                  theta0, grad), ref, rtol=1e-10, atol=1e-12)
    decoupled = lr_chain(lr, optim.scale_by_adam(),
                         optim.add_decayed_weights(wd))       # after
    np.testing.assert_allclose(dlopt_path(decoupled, theta0, grad), ref,
                               rtol=1e-10, atol=1e-12)


def test_chapter_decay_experiment_shows_the_difference():
    """The chapter's claim: with pure-noise gradients AdamW decays both
    parameters like (1 - alpha lambda)^t; Adam + L2 does not."""
    def run(opt, T):
        rng = np.random.default_rng(0)
        p = {"w": np.ones(2)}
        s = opt.init(p)
        for _ in range(T):
            g = {"w": np.array([0.01, 10.0]) * rng.normal(size=2)}
            p, s = optim.step(opt, p, g, s)
        return np.abs(p["w"])
    lr, lam, T = 1e-3, 1.0, 1500
    w_adamw = run(optim.adamw(lr, weight_decay=lam), T)
    w_adam = run(optim.adam(lr, weight_decay=lam), T)
    target = (1 - lr * lam) ** T
    # AdamW: both within a band around the pure decay (noise moves them)
    assert abs(np.log(w_adamw[1] / target)) < 0.5
    # Adam + L2: the noisy coordinate barely decays, the quiet one collapses
    assert w_adam[1] > 0.7 and w_adam[0] < 0.15
    assert abs(np.log(w_adamw[0] / target)) < 0.5


# ------------------------------------------- stability and rates

def _max_root(a_h, mu):
    return np.abs(np.roots([1, -(1 + mu - a_h), mu])).max()


@covers("eq-ch05-momentum-stable")
def test_momentum_is_stable_exactly_inside_the_widened_range():
    for mu in np.linspace(0.0, 0.98, 15):
        for a_h in np.linspace(0.05, 4.5, 60):
            inside = a_h < 2 * (1 + mu)
            if abs(a_h - 2 * (1 + mu)) < 1e-3:
                continue                       # on the boundary |r| = 1
            assert (_max_root(a_h, mu) < 1) == inside, (a_h, mu)


@covers("eq-ch05-momentum-stable")
@pytest.mark.parametrize("mu", [0.0, 0.5, 0.9])
def test_torch_sgd_converges_or_diverges_where_the_bound_says(mu):
    h = 4.0                                     # f = h w^2 / 2
    for factor, converges in [(0.95, True), (1.05, False)]:
        lr = factor * 2 * (1 + mu) / h
        w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([w], lr=lr, momentum=mu)
        for _ in range(3000):
            opt.zero_grad()
            (0.5 * h * w ** 2).sum().backward()
            opt.step()
        assert (abs(w.item()) < 1e-3) == converges, (mu, factor, w.item())


@covers("eq-ch05-gd-rate")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_fixed_step_and_its_rate(seed):
    rng = np.random.default_rng(seed)
    h = np.sort(rng.uniform(0.1, 20.0, size=6))
    kappa = h[-1] / h[0]
    a_star = 2 / (h[0] + h[-1])
    rate = np.abs(1 - a_star * h).max()
    assert rate == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-12)
    grid = np.linspace(0.01, 2 / h[-1], 2001)
    assert np.abs(1 - np.outer(grid, h)).max(1).min() >= rate - 1e-12
    # measured on torch.optim.SGD, diagonal quadratic
    w = torch.ones(6, dtype=torch.float64, requires_grad=True)
    ht = torch.tensor(h)
    opt = torch.optim.SGD([w], lr=a_star)
    norms = []
    for _ in range(400):
        opt.zero_grad()
        (0.5 * ht * w ** 2).sum().backward()
        opt.step()
        norms.append(w.detach().abs().max().item())
    measured = (norms[-1] / norms[-101]) ** (1 / 100)
    assert measured == pytest.approx(rate, rel=1e-6)


# ------------------------------------------- the page's own data

@pytest.fixture(scope="module")
def page():
    from chapter import run_page
    return run_page("ch05_optimizers")


def test_damping_plot_shows_gd_diverging_at_polyaks_rate(page):
    mus, damping = page["mus"], page["damping"]
    glued = page["_glued"]
    # "At mu = 0 the factor is about 2.07": gradient descent diverges
    assert damping[0] == pytest.approx(2.07, abs=0.005)
    assert glued["ch05-factor-mu0"] == pytest.approx(damping[0])
    # "below 1 only from mu of about 0.54"
    first = mus[np.argmax(damping < 1)]
    assert np.all(damping[mus < glued["ch05-mu-stable"] - 1e-9] >= 1)
    assert abs(first - glued["ch05-mu-stable"]) < mus[1] - mus[0]
    assert round(glued["ch05-mu-stable"], 2) == 0.54
    # "reaches its minimum 0.75 at Polyak's mu"
    k = int(np.argmin(damping))
    assert abs(mus[k] - page["mu_opt"]) <= mus[1] - mus[0]
    assert glued["ch05-polyak-rate"] == pytest.approx(0.7522, abs=1e-4)
    assert glued["ch05-gd-best-rate"] == pytest.approx(49 / 51)
    # "then rises as sqrt(mu)"
    under = mus > page["mu_opt"] + 0.02
    np.testing.assert_allclose(damping[under], np.sqrt(mus[under]),
                               rtol=1e-6)


def test_rate_map_is_stable_left_of_the_line_and_darkest_at_polyak(page):
    for k, (a_h, mus, R) in page["maps"].items():
        A, M = np.meshgrid(a_h, mus)
        off = np.abs(A - 2 * (1 + M)) > 0.02
        np.testing.assert_array_equal((R < 1)[off], (A < 2 * (1 + M))[off])
        i, j = np.unravel_index(np.argmin(R), R.shape)
        polyak = (np.sqrt(k) - 1) / (np.sqrt(k) + 1)
        assert R.min() == pytest.approx(polyak, abs=0.02)
        assert a_h[j] > 2                   # beyond GD's limit
        # the bottom edge (mu = 0) is gradient descent: best at alpha*
        assert R[0].min() == pytest.approx((k - 1) / (k + 1), abs=2e-3)
    g = page["_glued"]
    assert (g["ch05-steps-gd"], g["ch05-steps-polyak"]) == (346, 49)
    assert g["ch05-steps-gd"] > 5 * g["ch05-steps-polyak"]


def test_turned_valley_removes_the_adaptive_advantage(page):
    best = page["best_f"]
    # gradient descent is rotation invariant
    assert best["GD", "turned"] == pytest.approx(best["GD", "aligned"],
                                                 rel=1e-6)
    for name in ("AdaGrad", "RMSprop"):
        assert best[name, "aligned"] < 1e-20
        assert best[name, "turned"] > 1e10 * best[name, "aligned"]
        assert best[name, "turned"] > 1e-5
    g = page["_glued"]
    assert g["ch05-rms-turned"] == best["RMSprop", "turned"]
    # the drawn paths at the aligned valley's rates: still far from 0
    aligned = page["adaptive"]
    for name in ("AdaGrad", "RMSprop"):
        assert page["turned_runs"][name].loss[-1] > \
            1e6 * aligned[name].loss[-1]


def test_bias_correction_plot_ratio(page):
    g = page["_glued"]
    assert g["ch05-uncorrected-ratio"] == pytest.approx(
        0.1 / math.sqrt(0.001), rel=1e-6)
    # "start about three times too long and merge with the corrected
    # ones only after several hundred steps" (windows: the steps are noisy)
    wo, w = page["without"], page["with_bc"]
    assert wo[10:100].mean() > 2 * w[10:100].mean()
    assert abs(np.log(wo[300:].mean() / w[300:].mean())) < np.log(1.5)
