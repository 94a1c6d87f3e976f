"""Chapter 10, "Curvature and noise": the noise-floor formulas against
torch.optim.SGD on many noisy chains, the Robbins–Monro conditions, and
the claims the page makes about the data it draws. (Newton's step and
Armijo's rule are checked in test_second_order.py.)"""
import numpy as np
import pytest
import torch
from formulas import covers

from chapter import run_page


def torch_sgd_floor(alpha, h, sigma, B=1, chains=6000, T=1000, seed=0):
    """Mean of theta^2 over chains after T steps of torch.optim.SGD on
    f = h theta^2 / 2 with the mean of B noisy gradients per step."""
    gen = torch.Generator().manual_seed(seed)
    th = torch.zeros(chains, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([th], lr=alpha)
    tail = []
    for t in range(T):
        noise = torch.randn(chains, B, generator=gen,
                            dtype=torch.float64).mean(1)
        th.grad = h * th.detach() + sigma * noise
        opt.step()
        if t >= T // 2:
            tail.append(float((th.detach() ** 2).mean()))
    return np.mean(tail)


@covers("eq-ch10-noise-floor")
@pytest.mark.parametrize("alpha,h,sigma", [(0.1, 1.0, 1.0),
                                           (0.5, 3.0, 0.5),
                                           (1.8, 1.0, 1.0)])
def test_noise_floor_matches_torch_sgd(alpha, h, sigma):
    want = alpha * sigma ** 2 / (h * (2 - alpha * h))
    assert torch_sgd_floor(alpha, h, sigma) == pytest.approx(want,
                                                             rel=0.03)


@covers("eq-ch10-batch-floor")
@pytest.mark.parametrize("B", [1, 4, 16])
def test_batch_floor_divides_by_b(B):
    alpha, h, sigma = 0.2, 2.0, 1.0
    want = alpha * sigma ** 2 / (B * h * (2 - alpha * h))
    assert torch_sgd_floor(alpha, h, sigma, B=B) == \
        pytest.approx(want, rel=0.04)


@covers("eq-ch10-robbins-monro")
def test_robbins_monro_steps_converge_and_constant_ones_do_not():
    t = np.arange(1, 2_000_001, dtype=np.float64)
    a = 0.5 / (1 + t / 20)
    # partial sums: sum a_t grows like log t, sum a_t^2 has converged
    assert a[:200_000].sum() * 1.15 < a.sum()
    assert a.sum() > 100
    sq = np.cumsum(a ** 2)
    assert sq[-1] - sq[len(sq) // 2] < 1e-4         # a tail of 1e-4
    assert (0.5 ** 2) * len(t) / 2 > 1e5           # a constant's: huge
    # and in the noisy model, E[theta^2] keeps falling (like 1/t)
    rng = np.random.default_rng(3)
    th = np.full(5000, 3.0)
    msd = []
    for k in range(1, 20001):
        th -= 0.5 / (1 + k / 20) * (th + rng.standard_normal(5000))
        if k in (2000, 20000):
            msd.append(np.mean(th ** 2))
    assert msd[1] < 0.2 * msd[0]


# ------------------------------------------- the page's own data

@pytest.fixture(scope="module")
def page():
    return run_page("ch10_curvature_noise")


def test_newton_beats_gradient_descent_on_rosenbrock(page):
    runs, g = page["methods"], page["_glued"]
    newton = runs["Newton + Armijo"]
    assert g["ch10-newton-iters"] < 40
    assert newton.loss[g["ch10-newton-iters"]] < 1e-10
    for k in ("GD, fixed α = 1e-3", "GD + Armijo"):
        assert runs[k].loss[-1] > 1e-2 and len(runs[k].steps) == 2000
    # "the line search ... makes every step a descent"
    assert np.all(np.diff(runs["GD + Armijo"].loss) <= 0)
    assert runs["GD + Armijo"].loss[-1] < runs["GD, fixed α = 1e-3"].loss[-1]
    assert g["ch10-gd-armijo-f"] == runs["GD + Armijo"].loss[-1]


def test_raw_newton_lands_on_the_saddle(page):
    assert page["_glued"]["ch10-newton-saddle"] < 1e-8
    assert abs(page["gd_step"][1]) > abs(page["x_s"][1])


def test_noise_floor_plot(page):
    msd, T, g = page["msd"], page["T"], page["_glued"]
    floor = page["floor"]
    for a in (0.1, 0.02):
        m = msd[f"constant α = {a:g}"]
        assert m[T // 2:].mean() == pytest.approx(floor(a), rel=0.03)
    # the larger step falls faster but levels off higher
    big, small = msd["constant α = 0.1"], msd["constant α = 0.02"]
    assert big[20] < small[20] and big[-1] > small[-1]
    decay = msd["α_t = 0.5 / (1 + t/20)"]
    assert decay[-1] < floor(0.02) and decay[-1] < decay[T // 2]
    assert g["ch10-decay-final"] == decay[-1]


def test_batch_plot_follows_alpha_over_b(page):
    floors, batches, floor = page["floors"], page["batches"], page["floor"]
    for a, fl in floors.items():
        for B, v in zip(batches, fl):
            assert v == pytest.approx(floor(a) / B, rel=0.06), (a, B)
    a, b = page["same_ratio"]
    assert a == pytest.approx(floor(0.1) / 4, rel=0.05)
    assert b == pytest.approx(floor(0.4) / 16, rel=0.05)
    assert b / a == pytest.approx((2 - 0.1) / (2 - 0.4), rel=0.08)
