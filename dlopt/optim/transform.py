"""The building blocks (optax's ``transform``): one per idea.

Each block is its state type plus one rule for one array, written as
the book displays it (chapter 5) and lifted over the params dict by
``base.lift``.  The two pieces of maths that several rules share are
written once, here: the moving average ``update_moment`` and the bias
correction ``bias_correction``.  Rules use Python operators and the
array's own namespace (array-api-compat), so they run on NumPy arrays
and on torch tensors alike; this module never imports torch.

``count`` is incremented before it is used, so ``t = 1`` on the first
update (torch, optax and CS231n agree).  Hyperparameters are checked as
``torch.optim`` checks them (``eps = 0`` is allowed, momentum has no
upper bound), naming the argument.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from array_api_compat import array_namespace

from .._checks import check_in_range, check_positive
from .base import (EmptyState, GradientTransformation, Schedule,
                   check_lr, check_state, key_mask, lift, lr_value,
                   zeros_like)

__all__ = [
    "update_moment", "bias_correction",
    "scale", "scale_by_learning_rate", "trace", "scale_by_rss",
    "scale_by_rms", "scale_by_adam", "scale_by_nadam",
    "add_decayed_weights", "add_l1", "clip_by_global_norm",
    "ScaleByScheduleState", "TraceState", "ScaleByRssState",
    "ScaleByRmsState", "ScaleByAdamState", "ScaleByNadamState",
]


# ------------------------------------------------- shared maths (once)
def update_moment(x, m, decay: float):
    """Exponential moving average ``m_t = decay m_{t-1} + (1 - decay) x``
    (Adam's m and v, RMSprop's v, centred RMSprop's mean)."""
    return decay * m + (1 - decay) * x


def bias_correction(m, decay: float, t: int):
    """``m_t / (1 - decay^t)``: undoes the start at zero (eq-ch05-bias)."""
    return m / (1 - decay ** t)


_debias = bias_correction     # scale_by_adam's switch shadows the name


def _sqrt(x):
    return array_namespace(x).sqrt(x)


def _check_beta(name, b):
    return check_in_range(name, b, 0.0, 1.0)


# ------------------------------------------------------------- scaling
def scale(factor: float) -> GradientTransformation:
    """``u <- factor * u``."""
    factor = check_in_range("factor", factor, -math.inf, math.inf)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        return lift(lambda g: factor * g, "scale", grads)[0], state

    return GradientTransformation(init, update, chunkable=True)


class ScaleByScheduleState(NamedTuple):
    count: int


def scale_by_learning_rate(learning_rate: float | Schedule
                           ) -> GradientTransformation:
    """``u <- -alpha_t u`` (the minus sign makes ``theta + u`` descend).

    ``learning_rate`` is a number or a schedule ``k -> alpha``; update
    ``t`` uses ``schedule(t - 1)``, the number of updates already made
    (torch's ``scheduler.last_epoch`` when ``scheduler.step()`` follows
    ``optimizer.step()``).
    """
    lr = check_lr(learning_rate)

    def init(params):
        return ScaleByScheduleState(0)

    def update(grads, state, params=None):
        check_state(state, ScaleByScheduleState, "scale_by_learning_rate")
        t = state.count + 1
        alpha = lr_value(lr, t)
        u = lift(lambda g: -alpha * g, "scale_by_learning_rate", grads)[0]
        return u, ScaleByScheduleState(t)

    return GradientTransformation(init, update, chunkable=True)


# ------------------------------------------------------------ momentum
class TraceState(NamedTuple):
    count: int
    trace: dict


def trace(decay: float, dampening: float = 0.0,
          nesterov: bool = False) -> GradientTransformation:
    """Momentum as ``torch.optim.SGD`` (eq-ch05-momentum):

    ``b_1 = g_1``, ``b_t = mu b_{t-1} + (1 - dampening) g_t``; the output
    is ``b_t``, or ``g_t + mu b_t`` with ``nesterov`` (eq-ch05-nesterov).
    With ``dampening = 0`` it is also RMSprop's buffer, which starts at
    zero (``mu * 0 + g = g``).
    """
    mu = check_positive("momentum", decay, allow_zero=True)
    dampening = check_in_range("dampening", dampening, 0.0, 1.0,
                               include_high=True)
    if nesterov and (mu <= 0 or dampening != 0):
        raise ValueError("nesterov momentum requires momentum > 0 and "
                         "dampening = 0 (as in torch.optim.SGD)")

    def init(params):
        return TraceState(0, zeros_like(params))

    def rule(g, b, t):
        if t == 1:
            b = array_namespace(g).asarray(g, copy=True)
        elif dampening:
            b = mu * b + (1 - dampening) * g
        else:                       # the same, without a pass of 1.0 * g
            b = mu * b + g
        return (g + mu * b if nesterov else b), b

    def update(grads, state, params=None):
        check_state(state, TraceState, "trace")
        t = state.count + 1
        u, b = lift(rule, "trace", grads, state.trace, t=t)
        return u, TraceState(t, b)

    return GradientTransformation(init, update, chunkable=True)


# --------------------------------------------------- adaptive scalings
class ScaleByRssState(NamedTuple):
    count: int
    sum_of_squares: dict


def scale_by_rss(initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> GradientTransformation:
    """AdaGrad as ``torch.optim.Adagrad`` (eq-ch05-adagrad):
    ``s_t = s_{t-1} + g*g``, ``u = g / (sqrt(s_t) + eps)`` (eps outside
    the square root)."""
    s0 = check_positive("initial_accumulator_value",
                        initial_accumulator_value, allow_zero=True)
    eps = check_positive("eps", eps, allow_zero=True)

    def init(params):
        return ScaleByRssState(0, zeros_like(params, s0))

    def rule(g, s):
        s = s + g * g
        return g / (_sqrt(s) + eps), s

    def update(grads, state, params=None):
        check_state(state, ScaleByRssState, "scale_by_rss")
        u, s = lift(rule, "scale_by_rss", grads, state.sum_of_squares)
        return u, ScaleByRssState(state.count + 1, s)

    return GradientTransformation(init, update, chunkable=True)


class ScaleByRmsState(NamedTuple):
    count: int
    nu: dict
    mu: dict | None


def scale_by_rms(alpha: float = 0.99, eps: float = 1e-8,
                 centered: bool = False) -> GradientTransformation:
    """RMSprop as ``torch.optim.RMSprop`` (eq-ch05-rmsprop):
    ``v_t = alpha v + (1 - alpha) g*g``, ``u = g / (sqrt(v_t) + eps)``;
    centred: ``m_t = alpha m + (1 - alpha) g`` and ``v_t - m_t*m_t``
    replaces ``v_t``.  ``alpha`` is the decay (torch's name), not the
    learning rate."""
    alpha = check_positive("alpha", alpha, allow_zero=True)
    eps = check_positive("eps", eps, allow_zero=True)

    def init(params):
        return ScaleByRmsState(0, zeros_like(params),
                               zeros_like(params) if centered else None)

    def rule(g, v, m):
        v = update_moment(g * g, v, alpha)
        if centered:
            m = update_moment(g, m, alpha)
            return g / (_sqrt(v - m * m) + eps), v, m
        return g / (_sqrt(v) + eps), v, m

    def update(grads, state, params=None):
        check_state(state, ScaleByRmsState, "scale_by_rms")
        u, v, m = lift(rule, "scale_by_rms", grads, state.nu, state.mu)
        return u, ScaleByRmsState(state.count + 1, v, m)

    return GradientTransformation(init, update, chunkable=True)


class ScaleByAdamState(NamedTuple):
    count: int
    mu: dict
    nu: dict
    nu_max: dict | None


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  amsgrad: bool = False, bias_correction: bool = True
                  ) -> GradientTransformation:
    """Adam's direction as ``torch.optim.Adam`` (eq-ch05-adam):

    ``m_t = b1 m + (1 - b1) g``, ``v_t = b2 v + (1 - b2) g*g``,
    ``u = m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m_t / (1 -
    b1^t)``, ``v_hat = v_t / (1 - b2^t)``.  AMSGrad (torch's form):
    ``v_max = max(v_max, v_t)`` replaces ``v_t``, corrected alike.
    ``bias_correction=False`` uses ``m_t`` and ``v_t`` as they are (the
    original paper's ablation; chapter 5's experiment).
    """
    b1, b2 = _check_beta("b1 (betas[0])", b1), _check_beta("b2 (betas[1])",
                                                          b2)
    eps = check_positive("eps", eps, allow_zero=True)
    correct = bias_correction

    def init(params):
        return ScaleByAdamState(0, zeros_like(params), zeros_like(params),
                                zeros_like(params) if amsgrad else None)

    def rule(g, m, v, v_max, t):
        m = update_moment(g, m, b1)
        v = update_moment(g * g, v, b2)
        if amsgrad:
            v_max = array_namespace(v).maximum(v_max, v)
        m_hat, v_hat = m, (v_max if amsgrad else v)
        if correct:
            m_hat = _debias(m_hat, b1, t)
            v_hat = _debias(v_hat, b2, t)
        return m_hat / (_sqrt(v_hat) + eps), m, v, v_max

    def update(grads, state, params=None):
        check_state(state, ScaleByAdamState, "scale_by_adam")
        t = state.count + 1
        u, m, v, v_max = lift(rule, "scale_by_adam", grads, state.mu,
                              state.nu, state.nu_max, t=t)
        return u, ScaleByAdamState(t, m, v, v_max)

    return GradientTransformation(init, update, chunkable=True)


class ScaleByNadamState(NamedTuple):
    count: int
    mu_product: float
    mu: dict
    nu: dict


def scale_by_nadam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   momentum_decay: float = 4e-3) -> GradientTransformation:
    """NAdam's direction as ``torch.optim.NAdam`` (eq-ch05-nadam):

    ``mu_t = b1 (1 - 0.5 * 0.96^(t psi))`` (``psi = momentum_decay``),
    ``P_t = prod_{i<=t} mu_i`` (state ``mu_product``), ``m_t``, ``v_t``
    as in Adam, ``d = sqrt(v_hat) + eps`` and
    ``u = (1 - mu_t) / (1 - P_t) g / d + mu_{t+1} / (1 - P_t mu_{t+1})
    m_t / d``.
    """
    b1, b2 = _check_beta("b1 (betas[0])", b1), _check_beta("b2 (betas[1])",
                                                          b2)
    eps = check_positive("eps", eps, allow_zero=True)
    psi = check_positive("momentum_decay", momentum_decay, allow_zero=True)

    def init(params):
        return ScaleByNadamState(0, 1.0, zeros_like(params),
                                 zeros_like(params))

    def rule(g, m, v, t, mu_t, mu_next, prod):
        m = update_moment(g, m, b1)
        v = update_moment(g * g, v, b2)
        d = _sqrt(bias_correction(v, b2, t)) + eps
        u = ((1 - mu_t) / (1 - prod)) * (g / d) \
            + (mu_next / (1 - prod * mu_next)) * (m / d)
        return u, m, v

    def update(grads, state, params=None):
        check_state(state, ScaleByNadamState, "scale_by_nadam")
        t = state.count + 1
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod = state.mu_product * mu_t
        u, m, v = lift(rule, "scale_by_nadam", grads, state.mu, state.nu,
                       t=t, mu_t=mu_t, mu_next=mu_next, prod=prod)
        return u, ScaleByNadamState(t, prod, m, v)

    return GradientTransformation(init, update, chunkable=True)


# --------------------------------------------------------- penalties
def _penalty(name, rule, mask):
    """A stateless block ``u <- rule(u, theta)`` on the masked keys."""
    on = key_mask(mask)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        if params is None:
            raise ValueError(f"{name} needs params: call "
                             f"update(grads, state, params)")
        keys = [k for k in grads if on(k)]
        new = lift(rule, name, {k: grads[k] for k in keys},
                   params={k: params[k] for k in keys})[0]
        return {k: new.get(k, g) for k, g in grads.items()}, state

    return GradientTransformation(init, update, chunkable=True)


def add_decayed_weights(weight_decay: float, mask=None
                        ) -> GradientTransformation:
    """``u <- u + lambda theta`` on the keys ``mask`` selects.

    Placed *before* the preconditioner this is coupled L2 (torch's
    ``weight_decay`` in SGD, Adam, RMSprop, Adagrad, NAdam); *after* it
    and before ``scale_by_learning_rate`` it is decoupled weight decay
    (AdamW): ``theta <- theta - alpha_t lambda theta - alpha_t u``.
    ``mask``: None (all keys), ``key -> bool`` (e.g. ``lambda k:
    k.startswith("W")``: decay the weights, not the biases) or a
    collection of keys.
    """
    wd = check_positive("weight_decay", weight_decay, allow_zero=True)
    return _penalty("add_decayed_weights", lambda g, p: g + wd * p, mask)


def add_l1(l1: float, mask=None) -> GradientTransformation:
    """``u <- u + lambda sign(theta)``: a subgradient of
    ``lambda * sum |theta|`` (0 at theta = 0); ``mask`` as in
    ``add_decayed_weights``."""
    l1 = check_positive("l1", l1, allow_zero=True)
    return _penalty("add_l1",
                    lambda g, p: g + l1 * array_namespace(p).sign(p), mask)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale all updates together so that ``||u||_2 <= max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``u <- u * min(1, max_norm /
    (||u|| + 1e-6))``, the norm over every key (so not chunkable).
    """
    max_norm = check_positive("max_norm", max_norm)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        total = sum(float(array_namespace(g).sum(g * g))
                    for g in grads.values())
        c = min(1.0, max_norm / (math.sqrt(total) + 1e-6))
        return lift(lambda g: c * g, "clip_by_global_norm", grads)[0], state

    return GradientTransformation(init, update, chunkable=False)
