"""Checks of every formula in chapter 6, "Learning-rate schedules": the
formula as printed, dlopt.schedules and torch.optim.lr_scheduler agree."""
import math
import warnings

import numpy as np
import pytest
import torch
from formulas import covers
from torch.optim import lr_scheduler as ls

from dlopt import optim, schedules


def torch_rates(make, lr, K):
    """The rate of updates t = 1..K under torch's loop (step, then
    scheduler.step()): element k is the rate after k scheduler steps."""
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(K):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return np.array(out)


def check(printed, dlopt_sched, ref):
    k = np.arange(len(ref))
    np.testing.assert_allclose([printed(int(i)) for i in k], ref,
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose([dlopt_sched(int(i)) for i in k], ref,
                               rtol=1e-10, atol=1e-14)


@covers("eq-ch06-step")
@pytest.mark.parametrize("lr,s,gamma", [(0.1, 7, 0.5), (1.0, 30, 0.1)])
def test_step(lr, s, gamma):
    ref = torch_rates(lambda o: ls.StepLR(o, s, gamma), lr, 200)
    check(lambda k: lr * gamma ** (k // s), schedules.step(lr, s, gamma),
          ref)


@covers("eq-ch06-exponential")
@pytest.mark.parametrize("lr,gamma", [(0.1, 0.99), (0.5, 0.9)])
def test_exponential(lr, gamma):
    ref = torch_rates(lambda o: ls.ExponentialLR(o, gamma), lr, 200)
    check(lambda k: lr * gamma ** k, schedules.exponential(lr, gamma), ref)


@covers("eq-ch06-linear")
@pytest.mark.parametrize("lr,fs,fe,T", [(0.1, 1 / 3, 1.0, 5),
                                        (0.3, 1.0, 0.01, 150),
                                        (0.2, 0.01, 1.0, 20)])
def test_linear(lr, fs, fe, T):
    ref = torch_rates(lambda o: ls.LinearLR(o, fs, fe, T), lr, 200)
    check(lambda k: lr * (fs + (fe - fs) * min(k, T) / T),
          schedules.linear(lr, fs, fe, T), ref)


@covers("eq-ch06-cosine")
@pytest.mark.parametrize("lr,T,lo", [(0.1, 50, 0.0), (1.0, 77, 0.05)])
def test_cosine(lr, T, lo):
    ref = torch_rates(lambda o: ls.CosineAnnealingLR(o, T, lo), lr, 2 * T)
    check(lambda k: lo + (lr - lo) / 2 * (1 + math.cos(math.pi * k / T)),
          schedules.cosine(lr, T, lo), ref)


@covers("eq-ch06-warmup")
@pytest.mark.parametrize("lr,W,K,fs", [(0.3, 60, 600, 1e-3),
                                       (0.1, 10, 100, 0.1)])
def test_warmup_then_cosine(lr, W, K, fs):
    def make(o):
        return ls.SequentialLR(o, [ls.LinearLR(o, fs, 1.0, W),
                                   ls.CosineAnnealingLR(o, K - W, 0.0)],
                               milestones=[W])
    ref = torch_rates(make, lr, K)

    def printed(k):
        if k < W:
            return lr * (fs + (1 - fs) * k / W)
        return lr / 2 * (1 + math.cos(math.pi * (k - W) / (K - W)))
    check(printed, schedules.warmup_cosine(lr, W, K, start_factor=fs), ref)


@covers("eq-ch06-one-cycle")
@pytest.mark.parametrize("amax,K,p", [(0.3, 600, 0.3), (1.0, 101, 0.25)])
def test_one_cycle(amax, K, p):
    d, df = 25.0, 1e4

    def make(o):
        return ls.OneCycleLR(o, max_lr=amax, total_steps=K, pct_start=p,
                             anneal_strategy="cos", cycle_momentum=False,
                             div_factor=d, final_div_factor=df)
    ref = torch_rates(make, amax, K)

    def c(a, b, q):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * q))

    def printed(k):
        k1 = p * K - 1
        if k <= k1:
            return c(amax / d, amax, k / k1)
        return c(amax, amax / (d * df), (k - k1) / (K - 1 - k1))
    check(printed, schedules.one_cycle(amax, K, pct_start=p), ref)


@covers("eq-ch06-convention")
def test_update_t_uses_the_rate_after_t_minus_1_scheduler_steps():
    rng = np.random.default_rng(0)
    H = np.diag([1.0, 4.0])
    theta0 = rng.normal(size=2)
    K = 60
    sched = schedules.step(0.2, 10, 0.5)
    p = torch.tensor(theta0, requires_grad=True)
    opt_t = torch.optim.SGD([p], lr=0.2, momentum=0.5)
    sch_t = ls.StepLR(opt_t, 10, 0.5)
    opt = optim.sgd(sched, momentum=0.5)
    params = {"w": theta0.copy()}
    state = opt.init(params)
    for t in range(1, K + 1):
        g = H @ params["w"]
        params, state = optim.step(opt, params, {"w": g}, state)
        p.grad = torch.from_numpy(H @ p.detach().numpy())
        opt_t.step()
        sch_t.step()
    np.testing.assert_allclose(params["w"], p.detach().numpy(), rtol=1e-12)
    # Shifting the schedule by one (k = t) gives a different run.
    shifted = optim.sgd(lambda k: sched(k + 1), momentum=0.5)
    q = {"w": theta0.copy()}
    s = shifted.init(q)
    for t in range(K):
        q, s = optim.step(shifted, q, {"w": H @ q["w"]}, s)
    assert not np.allclose(q["w"], params["w"], rtol=1e-6)


# ------------------------------------------- the page's own data

def test_warmup_example_threshold_and_runs():
    from chapter import run_page
    page = run_page("ch06_schedules")
    g, flat, warm = page["_glued"], page["flat"], page["warm"]
    # the first step from x0 = 4 shrinks |x| iff alpha < 1/8
    for a, shrinks in [(0.124, True), (0.126, False)]:
        assert (abs(4.0 * (1 - a * 16.0)) < 4.0) == shrinks
    assert g["ch06-first-limit"] == 0.125
    assert g["ch06-safe-x"] == pytest.approx(np.sqrt(10.0))
    # "diverges at once": |x| grows from the first update
    assert not flat[-1] < 1e30                 # inf, nan or huge
    assert np.all(np.diff(flat[:6]) > 0)
    # "converges with a linear ramp": monotone decrease, factor below 2
    assert np.all(np.diff(warm) < 0) and warm[-1] < 0.2
    assert max(page["warm_factor"]) < 2
    assert g["ch06-warm-max"] == max(page["warm_factor"])
