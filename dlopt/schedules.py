"""Learning-rate schedules: pure functions of the step number.

A schedule maps ``k``, the number of updates already made
(``k = 0, 1, 2, ...``), to a learning rate.  Update ``t`` (``t = 1`` is
the first, book notation) uses ``alpha_t = schedule(t - 1)``; this is
what ``scale_by_learning_rate`` does.  It is exactly torch's convention
when ``scheduler.step()`` is called after ``optimizer.step()``: the rate
used by update ``t`` is the scheduler's value after ``t - 1`` scheduler
steps, i.e. ``scheduler.last_epoch == k``.  It is also optax's ``count``.

Every schedule here gives the same sequence as the matching
``torch.optim.lr_scheduler`` class (tested for 100+ steps).  Torch
computes several of them recursively (each value from the previous
``group['lr']``); the closed forms below agree with torch's values to
rounding (relative 1e-12), and the closed form is what torch documents.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from typing import Callable, Sequence

from ._checks import check_in_range, check_positive
from ._checks import check_int as _check_int

__all__ = ["constant", "step", "multi_step", "linear", "exponential",
           "cosine", "warmup_cosine", "one_cycle", "reduce_on_plateau"]

Schedule = Callable[[int], float]


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        try:
            import numpy as np
            if isinstance(k, np.integer):
                return int(k)
        except ImportError:  # pragma: no cover
            pass
        raise TypeError(f"step k must be an int, got {type(k).__name__}")
    if k < 0:
        raise ValueError(f"step k must be >= 0, got {k}")
    return k


def constant(lr: float) -> Schedule:
    """``alpha_k = lr``."""
    lr = check_positive("lr", lr, allow_zero=True)

    def schedule(k: int) -> float:
        _check_k(k)
        return lr
    return schedule


def step(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """``StepLR``: ``alpha_k = lr * gamma ** (k // step_size)``."""
    lr = check_positive("lr", lr, allow_zero=True)
    _check_int("step_size", step_size)
    gamma = check_positive("gamma", gamma)

    def schedule(k: int) -> float:
        return lr * gamma ** (_check_k(k) // step_size)
    return schedule


def multi_step(lr: float, milestones: Sequence[int],
               gamma: float = 0.1) -> Schedule:
    """``MultiStepLR``: multiply by ``gamma`` at each milestone,
    ``alpha_k = lr * gamma ** #{m in milestones: m <= k}``."""
    lr = check_positive("lr", lr, allow_zero=True)
    ms = sorted(_check_int("milestone", m, 0) for m in milestones)
    gamma = check_positive("gamma", gamma)

    def schedule(k: int) -> float:
        return lr * gamma ** bisect_right(ms, _check_k(k))
    return schedule


def linear(lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
           total_iters: int = 5) -> Schedule:
    """``LinearLR``: the factor goes linearly from ``start_factor`` to
    ``end_factor`` in ``total_iters`` steps, then stays:
    ``alpha_k = lr (s + (e - s) min(k, T) / T)``."""
    lr = check_positive("lr", lr, allow_zero=True)
    s = check_in_range("start_factor", start_factor, 0.0, 1.0,
                       include_high=True)
    if s == 0:
        raise ValueError("start_factor must be > 0 (as in torch)")
    e = check_in_range("end_factor", end_factor, 0.0, 1.0, include_high=True)
    _check_int("total_iters", total_iters)

    def schedule(k: int) -> float:
        k = min(_check_k(k), total_iters)
        return lr * (s + (e - s) * k / total_iters)
    return schedule


def exponential(lr: float, gamma: float) -> Schedule:
    """``ExponentialLR``: ``alpha_k = lr * gamma ** k``."""
    lr = check_positive("lr", lr, allow_zero=True)
    gamma = check_positive("gamma", gamma)

    def schedule(k: int) -> float:
        return lr * gamma ** _check_k(k)
    return schedule


def cosine(lr: float, T_max: int, eta_min: float = 0.0) -> Schedule:
    """``CosineAnnealingLR`` (closed form, as torch documents):
    ``alpha_k = eta_min + (lr - eta_min)(1 + cos(pi k / T_max)) / 2``.

    Past ``T_max`` the cosine continues (the rate rises again), as in
    torch.
    """
    lr = check_positive("lr", lr, allow_zero=True)
    _check_int("T_max", T_max)
    eta_min = check_positive("eta_min", eta_min, allow_zero=True)

    def schedule(k: int) -> float:
        k = _check_k(k)
        return eta_min + (lr - eta_min) * (
            1 + math.cos(math.pi * k / T_max)) / 2
    return schedule


def warmup_cosine(lr: float, warmup_steps: int, total_steps: int,
                  start_factor: float = 1e-3,
                  eta_min: float = 0.0) -> Schedule:
    """Linear warm-up, then cosine decay.

    The same as torch's ``SequentialLR([LinearLR(opt, start_factor,
    total_iters=warmup_steps), CosineAnnealingLR(opt, T_max=total_steps
    - warmup_steps, eta_min)], milestones=[warmup_steps])``:
    ``k < W``: ``lr (s + (1 - s) k / W)``; ``k >= W``: the cosine at
    ``k - W``.
    """
    _check_int("warmup_steps", warmup_steps)
    _check_int("total_steps", total_steps)
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed "
                         f"warmup_steps ({warmup_steps})")
    warm = linear(lr, start_factor, 1.0, warmup_steps)
    cos = cosine(lr, total_steps - warmup_steps, eta_min)

    def schedule(k: int) -> float:
        k = _check_k(k)
        return warm(k) if k < warmup_steps else cos(k - warmup_steps)
    return schedule


def one_cycle(max_lr: float, total_steps: int, pct_start: float = 0.3,
              div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> Schedule:
    """``OneCycleLR`` (``anneal_strategy='cos'``, ``three_phase=False``;
    learning rate only, i.e. torch with ``cycle_momentum=False``).

    From ``max_lr / div_factor`` up to ``max_lr`` by step
    ``pct_start * total_steps - 1``, then down to ``initial /
    final_div_factor`` at step ``total_steps - 1``, each phase a cosine
    ``end + (start - end)(1 + cos(pi p)) / 2`` in the phase fraction p.
    Defined for ``0 <= k <= total_steps`` (torch raises beyond).
    """
    max_lr = check_positive("max_lr", max_lr)
    _check_int("total_steps", total_steps)
    pct_start = check_in_range("pct_start", pct_start, 0.0, 1.0)
    div_factor = check_positive("div_factor", div_factor)
    final_div_factor = check_positive("final_div_factor", final_div_factor)
    initial = max_lr / div_factor
    final = initial / final_div_factor
    phases = [(float(pct_start * total_steps) - 1, initial, max_lr),
              (total_steps - 1, max_lr, final)]

    def anneal(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def schedule(k: int) -> float:
        k = _check_k(k)
        if k > total_steps:
            raise ValueError(f"one_cycle: step {k} is past total_steps "
                             f"= {total_steps}")
        start_step = 0.0
        for i, (end_step, start, end) in enumerate(phases):
            if k <= end_step or i == len(phases) - 1:
                pct = (k - start_step) / (end_step - start_step)
                return anneal(start, end, pct)
            start_step = end_step
        raise AssertionError("unreachable")  # pragma: no cover
    return schedule


def reduce_on_plateau(metrics: Sequence[float], lr: float,
                      factor: float = 0.1, patience: int = 10,
                      threshold: float = 1e-4, cooldown: int = 0,
                      min_lr: float = 0.0) -> list[float]:
    """The learning rate after each epoch under torch's
    ``ReduceLROnPlateau(mode="min", threshold_mode="rel")``.

    Not a function of the step like the schedules above: it reacts to a
    measured quantity. ``metrics`` holds one value per epoch (say the
    validation loss, shape ``(E,)``); element ``e`` of the result is the
    rate to use *after* epoch ``e`` has been measured (torch's
    ``scheduler.step(metrics[e])``). An epoch improves if its metric is
    below ``best * (1 - threshold)``; after more than ``patience`` epochs
    without improvement the rate is multiplied by ``factor`` (not below
    ``min_lr``), the count restarts, and ``cooldown`` epochs pass before
    counting again.
    """
    lr = check_positive("lr", lr)
    factor = check_in_range("factor", factor, 0.0, 1.0)
    _check_int("patience", patience, low=0)
    _check_int("cooldown", cooldown, low=0)
    best, bad, cool, out = math.inf, 0, 0, []
    for m in metrics:
        m = float(m)
        if m < best * (1.0 - threshold):
            best, bad = m, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > patience:
            new = max(lr * factor, min_lr)
            if lr - new > 1e-8:
                lr = new
            cool, bad = cooldown, 0
        out.append(lr)
    return out
