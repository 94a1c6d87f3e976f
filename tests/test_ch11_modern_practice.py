"""Chapter 11, "Modern practice and generalisation": clipping, Adam's
first step and AMSGrad as printed against torch, and the claims the page
makes about the data it draws."""
import numpy as np
import pytest
import torch
from formulas import covers

from chapter import run_page
from dlopt import optim


@covers("eq-ch11-clip")
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 100.0])
def test_clip_as_printed_matches_torch(max_norm):
    rng = np.random.default_rng(0)
    grads = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=3)}
    norm = np.sqrt(sum((g ** 2).sum() for g in grads.values()))
    book = {k: g * min(1.0, max_norm / norm) for k, g in grads.items()}
    ts = [torch.zeros_like(torch.tensor(g), requires_grad=True)
          for g in grads.values()]
    for t, g in zip(ts, grads.values()):
        t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_norm_(ts, max_norm)
    ours, _ = optim.clip_by_global_norm(max_norm).update(grads, None)
    for (k, g), t in zip(book.items(), ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5)
        np.testing.assert_allclose(ours[k], t.grad.numpy(), rtol=1e-12)


@covers("eq-ch11-adam-first")
def test_adams_first_step_is_alpha_times_sign():
    g = np.array([1e-6, -3.0, 250.0, -1e-3])
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.01)
    p.grad = torch.tensor(g)
    opt.step()
    book = -0.01 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(p.detach().numpy(), book, rtol=1e-12)
    big = np.abs(g) > 1e-4
    np.testing.assert_allclose(np.abs(book[big]), 0.01, rtol=1e-4)


@covers("eq-ch11-amsgrad")
def test_amsgrad_as_printed_matches_torch():
    rng = np.random.default_rng(1)
    gs = rng.normal(size=(60, 5)) * rng.uniform(0.1, 10, size=(60, 1))
    lr, b1, b2, eps = 0.01, 0.9, 0.99, 1e-8
    p = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr, betas=(b1, b2), amsgrad=True)
    th, m, v, vmax = np.zeros(5), np.zeros(5), np.zeros(5), np.zeros(5)
    for t, g in enumerate(gs, start=1):
        p.grad = torch.tensor(g)
        opt.step()
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        th = th - lr * (m / (1 - b1 ** t)) / (np.sqrt(vmax / (1 - b2 ** t))
                                              + eps)
        np.testing.assert_allclose(th, p.detach().numpy(), rtol=1e-10,
                                   atol=1e-14)


# ------------------------------------------- the page's own data

@pytest.fixture(scope="module")
def page():
    return run_page("ch11_modern_practice")


def test_cliff_and_clipping(page):
    curve, g = page["curve"], page["_glued"]
    ws = page["ws"]
    grad = np.abs(curve[:, 1])
    cliff = ws[int(np.argmax(grad))]
    assert 1.2 < cliff < 1.4                              # "above 1.3"
    assert grad.max() > 100 and np.median(grad) < 1       # "below 1"
    valley = (ws > -0.9) & (ws < 1.25)
    assert curve[valley, 0].max() < 0.4
    assert curve[ws > 1.35, 0].min() > 1.15
    plain, clipped = page["plain"], page["clipped"]
    assert np.abs(np.diff(plain)).max() > 50               # catapulted
    assert plain[-1] < -50 and g["ch11-plain-loss"] > 1.7  # stays there
    assert np.abs(np.diff(clipped)).max() <= 0.25 + 1e-12
    assert -0.9 < clipped[-1] < 1.25 and g["ch11-clipped-loss"] < 0.05


def test_range_test_curve(page):
    lrs, losses, g = page["lrs"], page["losses"], page["_glued"]
    assert np.all(np.abs(losses[lrs < 1e-3] - losses[0]) < 0.4)
    assert 0.1 < g["ch11-lr-min"] < 1.0
    assert page["smooth"].min() < 0.5 * losses[0]
    assert losses[-1] > page["smooth"].min() * 2        # shoots up


def test_adam_spread_and_amsgrad_example(page):
    g = page["_glued"]
    assert g["ch11-spread-1"] > 10 and g["ch11-spread-end"] < 1.3
    pct = page["pct"]
    spread = pct[:, 2] / pct[:, 0]
    assert spread[0] > spread[99] > spread[-1]
    assert g["ch11-adam-end"] == pytest.approx(1.0)
    assert g["ch11-ams-end"] < -0.9


def test_random_labels_are_memorised(page):
    g = page["_glued"]
    assert g["ch11-random-train"] == 1.0
    assert 0.03 < g["ch11-random-val"] < 0.17              # chance: 0.1
    assert g["ch11-real-val"] > 0.85
    h_real, _ = page["memo"]["real labels"]
    h_rand, _ = page["memo"]["random labels"]
    # "the random labels more slowly"
    assert h_rand.loss[50] > h_real.loss[50]


def test_sharp_and_flat_minima(page):
    g, runs = page["_glued"], page["sharp"]
    small, full = runs["batch 16"], runs["full batch"]
    # "Both runs fit the training set"
    assert small["train_loss"] < 0.05 and full["train_loss"] < 0.05
    # "the sharper, ... but only ... times", "far inside the bound"
    assert 1.0 < g["ch11-sharp-ratio"] < 1.6
    assert full["h_max"] < g["ch11-stable-bound"] / 4
    # the curvature is a curvature: the loss profile along d bends by it
    ts, prof = full["ts"], full["profile"]
    i = len(ts) // 2
    dt = ts[1] - ts[0]
    second = (prof[i + 1] - 2 * prof[i] + prof[i - 1]) / dt ** 2
    assert second == pytest.approx(full["h_max"], rel=0.05)
    # the picture: valleys with their floor near zero loss, close to 0
    for r in (small, full):
        assert abs(r["ts"][r["profile"].argmin()]) <= 0.15
        assert r["profile"].min() < 0.05 < r["profile"][[0, -1]].min()
    # "within a point of each other"
    assert abs(g["ch11-val-full"] - g["ch11-val-small"]) < 0.01
    assert g["ch11-n-params"] == 64 * 64 + 64 + 64 * 10 + 10


def test_plateau_rule_drops_and_the_runs_end_close(page):
    g, rates = page["_glued"], page["rates"]
    assert g["ch11-n-drops"] >= 1 and rates[0] == 0.5
    assert np.all(np.diff(rates) <= 0)
    from dlopt.schedules import reduce_on_plateau
    assert rates[1:] == reduce_on_plateau(page["hist_p"], 0.5, factor=0.3,
                                          patience=3)[:-1]
    assert g["ch11-plateau-final"] == pytest.approx(g["ch11-const-final"],
                                                    rel=0.1)
    ratio = g["ch11-plateau-train"] / g["ch11-const-train"]
    assert 0.5 < ratio < 2


@covers("eq-ch11-batchnorm")
def test_batchnorm_as_printed_matches_torch():
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(10, 3)) * 5 - 1
    g, b, eps = rng.normal(size=3), rng.normal(size=3), 1e-5
    book = g * (Z - Z.mean(0)) / np.sqrt(Z.var(0) + eps) + b
    ref = torch.nn.functional.batch_norm(
        torch.tensor(Z), None, None, torch.tensor(g), torch.tensor(b),
        training=True, eps=eps)
    np.testing.assert_allclose(book, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_batchnorm_plot(page):
    plain, bn = (np.array(page["bn_final"][k]) for k in (False, True))
    rates = page["bn_rates"]
    i = {float(r): k for k, r in enumerate(rates)}
    assert plain[i[0.01]] < 0.5 and np.isnan(plain[i[0.1]])
    assert plain[i[1.0]] == pytest.approx(np.log(10), abs=0.05)
    assert np.nanargmin(bn) == i[0.1] and bn[i[1.0]] < 0.5
    g = page["_glued"]
    assert (g["ch11-plain-max-rate"], g["ch11-bn-max-rate"]) == (0.01, 1.0)
    assert g["ch11-bn-best"] < g["ch11-plain-best"]
