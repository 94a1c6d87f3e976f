"""dlopt.schedules against torch.optim.lr_scheduler, and the off-by-one
convention through a real optimizer."""
import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L

from dlopt import optim as O
from dlopt import schedules as S

LR = 0.1
N = 120


def torch_lrs(make, n=N, lr=LR):
    """Learning rate used by updates t = 1..n (read before each step)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


CASES = {
    "constant": (S.constant(LR), lambda o: L.ConstantLR(o, factor=1.0)),
    "step": (S.step(LR, 10, 0.5), lambda o: L.StepLR(o, 10, 0.5)),
    "step_default": (S.step(LR, 3), lambda o: L.StepLR(o, 3)),
    "multi_step": (S.multi_step(LR, [5, 30, 31, 80], 0.3),
                   lambda o: L.MultiStepLR(o, [5, 30, 31, 80], 0.3)),
    "linear": (S.linear(LR, 0.1, 0.9, 40),
               lambda o: L.LinearLR(o, 0.1, 0.9, 40)),
    "linear_default": (S.linear(LR), lambda o: L.LinearLR(o)),
    "exponential": (S.exponential(LR, 0.97),
                    lambda o: L.ExponentialLR(o, 0.97)),
    "cosine": (S.cosine(LR, 50, 1e-3),
               lambda o: L.CosineAnnealingLR(o, 50, 1e-3)),
    "cosine_long": (S.cosine(LR, N),
                    lambda o: L.CosineAnnealingLR(o, N)),
    "warmup_cosine": (
        S.warmup_cosine(LR, 10, N, start_factor=0.01, eta_min=1e-4),
        lambda o: L.SequentialLR(
            o, [L.LinearLR(o, 0.01, 1.0, 10),
                L.CosineAnnealingLR(o, N - 10, 1e-4)], milestones=[10])),
    "one_cycle": (
        S.one_cycle(1.0, N),
        lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=N,
                               cycle_momentum=False)),
    "one_cycle_args": (
        S.one_cycle(0.5, 77, pct_start=0.45, div_factor=10,
                    final_div_factor=100),
        lambda o: L.OneCycleLR(o, max_lr=0.5, total_steps=77,
                               pct_start=0.45, div_factor=10,
                               final_div_factor=100,
                               cycle_momentum=False)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_sequence_as_torch(name):
    ours, make = CASES[name]
    n = 77 if name == "one_cycle_args" else N
    want = torch_lrs(make, n)
    got = np.array([ours(k) for k in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert name == "constant" or np.ptp(got) > 0


def test_cosine_goes_back_up_past_t_max_like_torch():
    want = torch_lrs(lambda o: L.CosineAnnealingLR(o, 20), 70)
    got = [S.cosine(LR, 20)(k) for k in range(70)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)


def test_schedule_in_optimizer_uses_k_equal_t_minus_1():
    """SGD with a schedule: update t uses schedule(t - 1), as torch."""
    sched = S.step(1.0, 1, 0.5)          # 1, 0.5, 0.25, ...
    opt = O.sgd(sched)
    p = {"w": np.zeros(1)}
    s = opt.init(p)
    g = {"w": np.ones(1)}
    moves = []
    for _ in range(4):
        new, s = O.step(opt, p, g, s)
        moves.append(float(p["w"][0] - new["w"][0]))
        p = new
    assert moves == [1.0, 0.5, 0.25, 0.125]


def test_formulas_at_known_points():
    assert S.cosine(1.0, 10)(5) == pytest.approx(0.5)
    assert S.cosine(1.0, 10, eta_min=0.2)(10) == pytest.approx(0.2)
    assert S.linear(1.0, 0.5, 1.0, 4)(2) == pytest.approx(0.75)
    oc = S.one_cycle(1.0, 100, pct_start=0.3)
    assert oc(0) == pytest.approx(1 / 25)
    assert oc(29) == pytest.approx(1.0)
    assert oc(99) == pytest.approx(1 / 25 / 1e4)


@pytest.mark.parametrize("make,err,match", [
    (lambda: S.step(-1.0, 3), ValueError, "lr must be >= 0"),
    (lambda: S.step(0.1, 0), ValueError, "step_size must be an int"),
    (lambda: S.cosine(0.1, 0), ValueError, "T_max must be an int"),
    (lambda: S.exponential(0.1, 0.0), ValueError, "gamma must be > 0"),
    (lambda: S.linear(0.1, 0.0), ValueError, "start_factor must be > 0"),
    (lambda: S.warmup_cosine(0.1, 10, 10), ValueError, "must exceed"),
    (lambda: S.one_cycle(0.1, 10, pct_start=1.0), ValueError, "pct_start"),
    (lambda: S.constant(math.nan), ValueError, "lr must be finite"),
])
def test_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_bad_step_number():
    with pytest.raises(ValueError, match="step k must be >= 0"):
        S.cosine(0.1, 10)(-1)
    with pytest.raises(TypeError, match="step k must be an int"):
        S.step(0.1, 2)(1.5)
    with pytest.raises(ValueError, match="past total_steps"):
        S.one_cycle(0.1, 10)(11)
    assert S.exponential(1.0, 0.5)(np.int64(2)) == 0.25


@pytest.mark.parametrize("kw", [{}, {"factor": 0.5, "patience": 2},
                                {"patience": 0, "cooldown": 2},
                                {"factor": 0.3, "patience": 1,
                                 "min_lr": 0.004, "threshold": 0.05}])
def test_reduce_on_plateau_matches_torch(kw):
    import torch
    from dlopt.schedules import reduce_on_plateau
    rng = np.random.default_rng(len(kw))
    # a loss that falls, then wanders on a plateau, then falls again
    metrics = np.concatenate([np.linspace(2, 1, 10),
                              1 + 0.02 * rng.standard_normal(30),
                              np.linspace(1, 0.5, 10),
                              0.5 + 0.01 * rng.standard_normal(30)])
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    ref = []
    for m in metrics:
        sched.step(float(m))
        ref.append(opt.param_groups[0]["lr"])
    got = reduce_on_plateau(metrics, 0.1, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert min(got) < 0.1                     # it did reduce


def test_reduce_on_plateau_errors():
    from dlopt.schedules import reduce_on_plateau
    with pytest.raises(ValueError, match="patience"):
        reduce_on_plateau([1.0], 0.1, patience=-1)
    with pytest.raises(ValueError, match="factor"):
        reduce_on_plateau([1.0], 0.1, factor=1.0)
