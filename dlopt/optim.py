"""Optimizers as gradient transformations (mappings of gradients).

An optimizer is a pair of pure functions (the optax design)::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)      # theta + u

``params``, ``grads`` and ``updates`` are flat ``dict[str, array]``; every
state is a ``NamedTuple`` with plain fields (``count``, ``mu``, ``nu``,
``trace``, ``sum_of_squares``, ...).  ``count`` is incremented before it
is used, so ``t = 1`` on the first update (book notation).  The maths of
each building block is written once, for one array, with Python
operators and the array's own namespace (array-api-compat), so the same
code runs on NumPy arrays and on torch tensors; this module never
imports torch.

Named optimizers are compositions of building blocks and follow
``torch.optim`` exactly (formulas and defaults), e.g. ::

    adam  = chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))
    adamw = chain(scale_by_adam(...), add_decayed_weights(wd),
                  scale_by_learning_rate(lr))

so coupled L2 (``add_decayed_weights`` *before* the preconditioner) and
decoupled weight decay (*after* it) differ by the position of one line.

Fast path.  The pure path allocates new arrays in every step.  For NumPy
arrays ``step(opt, params, grads, state, inplace=True)`` runs the same
rules in place: it walks the parameters in cache-sized chunks, runs every
building block's in-place kernel on a chunk while it is in cache (NumPy
``out=`` arguments, no allocation), and spreads the chunks over a small
thread pool (NumPy releases the GIL inside ufuncs).  The kernels perform
the same floating-point operations in the same order as the pure rules.
The last two operations of every named optimizer, ``u <- -alpha_t u``
then ``theta <- theta + u``, are fused into one BLAS ``axpy`` (``theta
+= a x`` in one pass; see ``step``).  ``axpy`` rounds once where the
pure path rounds twice (a fused multiply-add), so the fast path agrees
with the pure one to within a few units in the last place per step
(tested); without that fusion it is bit-identical (tested too).

Gradient checks.  Every named optimizer starts with ``validate()``: the
gradient keys and shapes must match the parameters, and (unless
``check_finite=False``, a switch for speed) a NaN or inf gradient raises
``FloatingPointError`` naming the key, before anything is updated.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from numbers import Real
from typing import Any, Callable, NamedTuple

import numpy as np
from array_api_compat import array_namespace

from ._checks import check_in_range, check_positive

__all__ = [
    "GradientTransformation", "chain", "apply_updates", "step",
    "get_state", "Schedule",
    "validate", "scale", "scale_by_learning_rate", "trace",
    "scale_by_rss", "scale_by_rms", "scale_by_adam", "scale_by_nadam",
    "add_decayed_weights", "add_l1", "clip_by_global_norm",
    "sgd", "adagrad", "rmsprop", "adam", "nadam", "adamw",
]

Params = dict
Schedule = Callable[[int], float]


class GradientTransformation(NamedTuple):
    """A gradient map: ``init(params) -> state`` and
    ``update(grads, state, params=None) -> (updates, new_state)``.

    ``inplace`` is optional and used only by ``step(..., inplace=True)``:
    ``inplace(grads, state, params) -> (new_state, kernel)`` where
    ``kernel(key, sl, src, u, p, tmp) -> out`` applies the same rule to
    one chunk of parameter ``key``: it reads the incoming updates from
    ``src`` (read-only: the gradient chunk or an earlier block's
    output), may write into the scratch chunks ``u`` and ``tmp[i]``,
    updates the state arrays' chunk ``[sl]`` in place, and returns the
    chunk that holds its output (``u``, or a state chunk such as the
    momentum buffer, which later blocks only read).  ``p`` is the
    parameter chunk.  ``grads`` is the raw gradient dict if nothing but
    checks came before, else None.  A kernel of None means "values
    unchanged"; a ``_Scale`` kernel (``u <- factor * src``) at the end
    of a chain is fused by ``step`` into the parameter update.
    """
    init: Callable
    update: Callable
    inplace: Callable | None = None


# ---------------------------------------------------------------- helpers
def _map(fn, *trees):
    """Lift a per-array function over dicts with the same keys."""
    first = trees[0]
    return {k: fn(*(t[k] for t in trees)) for k in first}


def _zeros_like(tree):
    return {k: array_namespace(v).zeros_like(v) for k, v in tree.items()}


def _copy(x):
    return array_namespace(x).asarray(x, copy=True)


def _flat(name, a):
    """A flat *view* of ``a`` (the in-place path writes through it)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: the in-place path needs NumPy arrays, "
                        f"got {type(a).__name__}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous for the in-place "
                         f"path")
    return a.reshape(-1)


def _flats(name, tree):
    return {k: _flat(f"{name}[{k!r}]", v) for k, v in tree.items()}


class _Scale:
    """In-place kernel ``u <- factor * src``.  A class, not a closure,
    so that ``step`` can see the factor and fuse it into the update."""

    def __init__(self, factor: float):
        self.factor = factor

    def __call__(self, key, sl, src, u, p, tmp):
        np.multiply(src, self.factor, out=u)
        return u


class _Chain:
    """In-place kernel running ``parts`` one after the other."""

    def __init__(self, parts):
        self.parts = list(parts)

    def __call__(self, key, sl, src, u, p, tmp):
        for kern in self.parts:
            src = kern(key, sl, src, u, p, tmp)
        return src


def _lr_value(lr, count: int) -> float:
    """The learning rate of update ``count`` (t = 1, 2, ...)."""
    if not callable(lr):
        return lr
    value = lr(count - 1)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"learning-rate schedule returned "
                        f"{type(value).__name__} {value!r} at step "
                        f"{count - 1}; expected a real number")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"learning-rate schedule returned {value} at step "
                         f"{count - 1}; expected a finite number >= 0")
    return value


def _check_lr(lr):
    if callable(lr):
        return lr
    return check_positive("learning_rate", lr, allow_zero=True)


def _check_betas(b1, b2):
    check_in_range("b1 (betas[0])", b1, 0.0, 1.0)
    check_in_range("b2 (betas[1])", b2, 0.0, 1.0)


def get_state(state, field: str):
    """Return the first value named ``field`` in a (nested) state.

    ``get_state(adam_state, "nu")`` finds ``ScaleByAdamState.nu`` inside
    the tuple of states that ``chain`` keeps.
    """
    if hasattr(state, "_fields"):
        if field in state._fields:
            return getattr(state, field)
    if isinstance(state, tuple):
        for s in state:
            try:
                return get_state(s, field)
            except KeyError:
                pass
    raise KeyError(f"no state field {field!r}")


# ------------------------------------------------------------- combinators
def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Compose gradient maps left to right: ``u = f_n(...f_1(g))``."""
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(f"chain argument {i} is "
                            f"{type(t).__name__}, not a "
                            f"GradientTransformation")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None):
        new_states = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new_states.append(s)
        return grads, tuple(new_states)

    if not all(t.inplace is not None for t in transforms):
        return GradientTransformation(init, update)

    def inplace(grads, state, params):
        new_states, kernels = [], []
        for t, s in zip(transforms, state):
            s, kern = t.inplace(grads, s, params)
            new_states.append(s)
            if kern is not None:
                # flatten nested chains so a trailing scale stays visible
                kernels += kern.parts if isinstance(kern, _Chain) else [kern]
                grads = None        # later blocks see transformed values
        return tuple(new_states), (_Chain(kernels) if kernels else None)

    return GradientTransformation(init, update, inplace)


def apply_updates(params: Params, updates: Params) -> Params:
    """Return ``theta + u`` per key (updates already carry the sign)."""
    return _map(lambda p, u: p + u, params, updates)


class EmptyState(NamedTuple):
    pass


class ValidateState(NamedTuple):
    shapes: dict


def _check_grads(grads, shapes, params, check_finite):
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of arrays, got "
                        f"{type(grads).__name__}")
    if set(grads) != set(shapes):
        missing = sorted(set(shapes) - set(grads))
        extra = sorted(set(grads) - set(shapes))
        raise KeyError(f"grads and params have different keys: missing "
                       f"{missing}, unexpected {extra}")
    if params is not None and set(params) != set(shapes):
        raise KeyError(f"params keys {sorted(params)} differ from the "
                       f"keys the optimizer was initialised with "
                       f"{sorted(shapes)}")
    for k, g in grads.items():
        if tuple(g.shape) != shapes[k]:
            raise ValueError(f"grads[{k!r}] has shape {tuple(g.shape)}, "
                             f"but params[{k!r}] has shape {shapes[k]}")
        if check_finite:
            xp = array_namespace(g)
            if not bool(xp.all(xp.isfinite(g))):
                raise FloatingPointError(
                    f"grads[{k!r}] contains NaN or inf; refusing to update "
                    f"the parameters (pass check_finite=False to skip "
                    f"this check)")


def validate(check_finite: bool = True) -> GradientTransformation:
    """Identity map that checks gradients first.

    Keys and shapes must match the params given to ``init``; with
    ``check_finite`` a NaN/inf gradient raises ``FloatingPointError``
    naming the key (costs one read of the gradients per step).
    """
    def init(params):
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of arrays, got "
                            f"{type(params).__name__}")
        return ValidateState({k: tuple(v.shape) for k, v in params.items()})

    def update(grads, state, params=None):
        _check_grads(grads, state.shapes, params, check_finite)
        return grads, state

    def inplace(grads, state, params):
        if grads is not None:
            _check_grads(grads, state.shapes, params, check_finite)
        return state, None

    return GradientTransformation(init, update, inplace)


# ------------------------------------------------------- building blocks
def scale(factor: float) -> GradientTransformation:
    """``u <- factor * u``."""
    if isinstance(factor, bool) or not isinstance(factor, Real):
        raise TypeError(f"factor must be a real number, got {factor!r}")
    factor = float(factor)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        return _map(lambda g: factor * g, grads), state

    def inplace(grads, state, params):
        return state, _Scale(factor)

    return GradientTransformation(init, update, inplace)


class ScaleByScheduleState(NamedTuple):
    count: int


def scale_by_learning_rate(learning_rate: float | Schedule
                           ) -> GradientTransformation:
    """``u <- -alpha_t * u`` (the minus sign makes ``theta + u`` descend).

    ``learning_rate`` is a number or a schedule ``k -> alpha``; update
    ``t`` uses ``schedule(t - 1)``, i.e. the schedule is a function of
    the number of updates already made (torch's ``scheduler.last_epoch``
    when ``scheduler.step()`` follows ``optimizer.step()``).
    """
    lr = _check_lr(learning_rate)

    def init(params):
        return ScaleByScheduleState(0)

    def update(grads, state, params=None):
        count = state.count + 1
        step_size = -_lr_value(lr, count)
        return (_map(lambda g: step_size * g, grads),
                ScaleByScheduleState(count))

    def inplace(grads, state, params):
        count = state.count + 1
        return ScaleByScheduleState(count), _Scale(-_lr_value(lr, count))

    return GradientTransformation(init, update, inplace)


class TraceState(NamedTuple):
    count: int
    trace: dict


def trace(decay: float, dampening: float = 0.0,
          nesterov: bool = False) -> GradientTransformation:
    """Momentum as in ``torch.optim.SGD``.

    ``b_1 = g_1`` (a copy); ``b_t = mu b_{t-1} + (1 - dampening) g_t``;
    output ``b_t``, or ``g_t + mu b_t`` with ``nesterov``.  With
    ``dampening = 0`` this is also RMSprop's momentum buffer (which
    starts at zero: ``mu * 0 + g = g``).
    """
    decay = check_in_range("momentum", decay, 0.0, 1.0, include_high=True)
    dampening = check_in_range("dampening", dampening, 0.0, 1.0,
                               include_high=True)
    if nesterov and (decay <= 0 or dampening != 0):
        raise ValueError("nesterov momentum requires momentum > 0 and "
                         "dampening = 0 (as in torch.optim.SGD)")
    damp = 1.0 - dampening

    def init(params):
        return TraceState(0, _zeros_like(params))

    def one(g, b, first):
        b = _copy(g) if first else decay * b + damp * g
        return (g + decay * b if nesterov else b), b

    def update(grads, state, params=None):
        count = state.count + 1
        out, new = {}, {}
        for k, g in grads.items():
            out[k], new[k] = one(g, state.trace[k], count == 1)
        return out, TraceState(count, new)

    def inplace(grads, state, params):
        count = state.count + 1
        bufs = _flats("trace", state.trace)

        def kernel(key, sl, src, u, p, tmp):
            b = bufs[key][sl]
            if count == 1:
                np.copyto(b, src)
            else:
                np.multiply(b, decay, out=b)
                if damp == 1.0:             # 1.0 * g == g exactly
                    np.add(b, src, out=b)
                else:
                    np.multiply(src, damp, out=tmp[0])
                    np.add(b, tmp[0], out=b)
            if not nesterov:
                return b                    # no copy: later blocks read b
            np.multiply(b, decay, out=tmp[0])
            np.add(src, tmp[0], out=u)
            return u
        return TraceState(count, state.trace), kernel

    return GradientTransformation(init, update, inplace)


class ScaleByRssState(NamedTuple):
    count: int
    sum_of_squares: dict


def scale_by_rss(initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> GradientTransformation:
    """AdaGrad as ``torch.optim.Adagrad``: ``s_t = s_{t-1} + g*g``,
    ``u = g / (sqrt(s_t) + eps)`` (eps *outside* the square root)."""
    init_acc = check_positive("initial_accumulator_value",
                              initial_accumulator_value, allow_zero=True)
    eps = check_positive("eps", eps)

    def init(params):
        return ScaleByRssState(0, {
            k: array_namespace(v).zeros_like(v) + init_acc
            for k, v in params.items()})

    def one(g, s):
        xp = array_namespace(g)
        s = s + g * g
        return g / (xp.sqrt(s) + eps), s

    def update(grads, state, params=None):
        out, new = {}, {}
        for k, g in grads.items():
            out[k], new[k] = one(g, state.sum_of_squares[k])
        return out, ScaleByRssState(state.count + 1, new)

    def inplace(grads, state, params):
        acc = _flats("sum_of_squares", state.sum_of_squares)

        def kernel(key, sl, src, u, p, tmp):
            s, t0 = acc[key][sl], tmp[0]
            np.multiply(src, src, out=t0)
            np.add(s, t0, out=s)
            np.sqrt(s, out=t0)
            np.add(t0, eps, out=t0)
            np.divide(src, t0, out=u)
            return u
        return ScaleByRssState(state.count + 1, state.sum_of_squares), kernel

    return GradientTransformation(init, update, inplace)


class ScaleByRmsState(NamedTuple):
    count: int
    nu: dict
    mu: dict | None


def scale_by_rms(alpha: float = 0.99, eps: float = 1e-8,
                 centered: bool = False) -> GradientTransformation:
    """RMSprop as ``torch.optim.RMSprop``.

    ``v_t = alpha v + (1 - alpha) g*g``; centred: ``m_t = alpha m +
    (1 - alpha) g`` and ``v_t - m_t*m_t`` replaces ``v_t``;
    ``u = g / (sqrt(v_t) + eps)`` (eps outside the root).
    """
    alpha = check_in_range("alpha", alpha, 0.0, 1.0)
    eps = check_positive("eps", eps)
    a1 = 1.0 - alpha

    def init(params):
        return ScaleByRmsState(0, _zeros_like(params),
                               _zeros_like(params) if centered else None)

    def one(g, nu, mu):
        xp = array_namespace(g)
        nu = alpha * nu + a1 * (g * g)
        if centered:
            mu = alpha * mu + a1 * g
            avg = xp.sqrt(nu - mu * mu) + eps
        else:
            avg = xp.sqrt(nu) + eps
        return g / avg, nu, mu

    def update(grads, state, params=None):
        out, nus, mus = {}, {}, {}
        for k, g in grads.items():
            mu = state.mu[k] if centered else None
            out[k], nus[k], mus[k] = one(g, state.nu[k], mu)
        return out, ScaleByRmsState(state.count + 1, nus,
                                    mus if centered else None)

    def inplace(grads, state, params):
        nus = _flats("nu", state.nu)
        mus = _flats("mu", state.mu) if centered else None

        def kernel(key, sl, src, u, p, tmp):
            nu, t0, t1 = nus[key][sl], tmp[0], tmp[1]
            np.multiply(nu, alpha, out=nu)
            np.multiply(src, src, out=t0)
            np.multiply(t0, a1, out=t0)
            np.add(nu, t0, out=nu)
            if centered:
                mu = mus[key][sl]
                np.multiply(mu, alpha, out=mu)
                np.multiply(src, a1, out=t0)
                np.add(mu, t0, out=mu)
                np.multiply(mu, mu, out=t1)
                np.subtract(nu, t1, out=t0)
                np.sqrt(t0, out=t0)
            else:
                np.sqrt(nu, out=t0)
            np.add(t0, eps, out=t0)
            np.divide(src, t0, out=u)
            return u
        return ScaleByRmsState(state.count + 1, state.nu, state.mu), kernel

    return GradientTransformation(init, update, inplace)


class ScaleByAdamState(NamedTuple):
    count: int
    mu: dict
    nu: dict
    nu_max: dict | None


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  amsgrad: bool = False) -> GradientTransformation:
    """Adam's direction as ``torch.optim.Adam``.

    ``m_t = b1 m + (1 - b1) g``, ``v_t = b2 v + (1 - b2) g*g``,
    ``u = (m_t / (sqrt(v_t) / sqrt(1 - b2^t) + eps)) / (1 - b1^t)``.
    AMSGrad (torch's form): ``v_max = max(v_max, v_t)`` replaces ``v_t``
    in the denominator, bias-corrected by the same ``sqrt(1 - b2^t)``.
    Computed as ``k m_t / (sqrt(v_t) + eps sqrt(1 - b2^t))`` with
    ``k = sqrt(1 - b2^t) / (1 - b1^t)`` (the same number; one array
    operation fewer).
    """
    _check_betas(b1, b2)
    eps = check_positive("eps", eps)
    c1, c2 = 1.0 - b1, 1.0 - b2

    def init(params):
        return ScaleByAdamState(0, _zeros_like(params), _zeros_like(params),
                                _zeros_like(params) if amsgrad else None)

    def consts(count):
        # m/(1-b1^t) / (sqrt(v)/sqrt(1-b2^t) + eps)
        #   = k * m / (sqrt(v) + eps_hat)  (one op fewer per array)
        sbc2 = math.sqrt(1.0 - b2 ** count)
        return sbc2 / (1.0 - b1 ** count), eps * sbc2

    def one(g, m, v, vmax, k, eps_hat):
        xp = array_namespace(g)
        m = b1 * m + c1 * g
        v = b2 * v + c2 * (g * g)
        if amsgrad:
            vmax = xp.maximum(vmax, v)
            denom = xp.sqrt(vmax) + eps_hat
        else:
            denom = xp.sqrt(v) + eps_hat
        return (m / denom) * k, m, v, vmax

    def update(grads, state, params=None):
        count = state.count + 1
        k, eps_hat = consts(count)
        out, ms, vs, vmaxs = {}, {}, {}, {}
        for key, g in grads.items():
            vmax = state.nu_max[key] if amsgrad else None
            out[key], ms[key], vs[key], vmaxs[key] = one(
                g, state.mu[key], state.nu[key], vmax, k, eps_hat)
        return out, ScaleByAdamState(count, ms, vs,
                                     vmaxs if amsgrad else None)

    def inplace(grads, state, params):
        count = state.count + 1
        k, eps_hat = consts(count)
        ms, vs = _flats("mu", state.mu), _flats("nu", state.nu)
        vmaxs = _flats("nu_max", state.nu_max) if amsgrad else None

        def kernel(key, sl, src, u, p, tmp):
            m, v, t0 = ms[key][sl], vs[key][sl], tmp[0]
            np.multiply(m, b1, out=m)
            np.multiply(src, c1, out=t0)
            np.add(m, t0, out=m)
            np.multiply(v, b2, out=v)
            np.multiply(src, src, out=t0)
            np.multiply(t0, c2, out=t0)
            np.add(v, t0, out=v)
            if amsgrad:
                vm = vmaxs[key][sl]
                np.maximum(vm, v, out=vm)
                np.sqrt(vm, out=t0)
            else:
                np.sqrt(v, out=t0)
            np.add(t0, eps_hat, out=t0)
            np.divide(m, t0, out=u)
            np.multiply(u, k, out=u)
            return u
        return ScaleByAdamState(count, state.mu, state.nu,
                                state.nu_max), kernel

    return GradientTransformation(init, update, inplace)


class ScaleByNadamState(NamedTuple):
    count: int
    mu_product: float
    mu: dict
    nu: dict


def scale_by_nadam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   momentum_decay: float = 4e-3) -> GradientTransformation:
    """NAdam's direction as ``torch.optim.NAdam`` (Dozat's mu-schedule).

    ``mu_t = b1 (1 - 0.5 * 0.96^(t psi))`` with ``psi = momentum_decay``,
    ``P_t = prod_{i<=t} mu_i`` (state ``mu_product``),
    ``m_t``, ``v_t`` as in Adam, ``d = sqrt(v_t / (1 - b2^t)) + eps``,
    ``u = (1 - mu_t)/(1 - P_t) g/d + mu_{t+1}/(1 - P_t mu_{t+1}) m_t/d``.
    """
    _check_betas(b1, b2)
    eps = check_positive("eps", eps)
    psi = check_positive("momentum_decay", momentum_decay, allow_zero=True)
    c1, c2 = 1.0 - b1, 1.0 - b2

    def init(params):
        return ScaleByNadamState(0, 1.0, _zeros_like(params),
                                 _zeros_like(params))

    def consts(count, mu_product):
        mu_t = b1 * (1.0 - 0.5 * 0.96 ** (count * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((count + 1) * psi))
        mu_product = mu_product * mu_t
        cg = (1.0 - mu_t) / (1.0 - mu_product)
        cm = mu_next / (1.0 - mu_product * mu_next)
        return mu_product, cg, cm, 1.0 - b2 ** count

    def update(grads, state, params=None):
        count = state.count + 1
        mu_product, cg, cm, bc2 = consts(count, state.mu_product)
        out, ms, vs = {}, {}, {}
        for k, g in grads.items():
            xp = array_namespace(g)
            m = b1 * state.mu[k] + c1 * g
            v = b2 * state.nu[k] + c2 * (g * g)
            d = xp.sqrt(v / bc2) + eps
            out[k] = cg * (g / d) + cm * (m / d)
            ms[k], vs[k] = m, v
        return out, ScaleByNadamState(count, mu_product, ms, vs)

    def inplace(grads, state, params):
        count = state.count + 1
        mu_product, cg, cm, bc2 = consts(count, state.mu_product)
        ms, vs = _flats("mu", state.mu), _flats("nu", state.nu)

        def kernel(key, sl, src, u, p, tmp):
            m, v, t0, t1 = ms[key][sl], vs[key][sl], tmp[0], tmp[1]
            np.multiply(m, b1, out=m)
            np.multiply(src, c1, out=t0)
            np.add(m, t0, out=m)
            np.multiply(v, b2, out=v)
            np.multiply(src, src, out=t0)
            np.multiply(t0, c2, out=t0)
            np.add(v, t0, out=v)
            np.divide(v, bc2, out=t0)
            np.sqrt(t0, out=t0)
            np.add(t0, eps, out=t0)
            np.divide(src, t0, out=u)
            np.multiply(u, cg, out=u)
            np.divide(m, t0, out=t1)
            np.multiply(t1, cm, out=t1)
            np.add(u, t1, out=u)
            return u
        return ScaleByNadamState(count, mu_product, state.mu,
                                 state.nu), kernel

    return GradientTransformation(init, update, inplace)


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    """``u <- u + lambda theta``.

    Placed *first* this is coupled L2 (torch's ``weight_decay`` in SGD,
    Adam, RMSprop, Adagrad: the penalty goes through the
    preconditioner).  Placed *after* the preconditioner and before
    ``scale_by_learning_rate`` it is decoupled weight decay (AdamW):
    ``theta <- theta - alpha_t lambda theta - alpha_t u``, using the
    schedule's ``alpha_t``.
    """
    wd = check_positive("weight_decay", weight_decay, allow_zero=True)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights needs params: call "
                             "update(grads, state, params)")
        return _map(lambda g, p: g + wd * p, grads, params), state

    def inplace(grads, state, params):
        def kernel(key, sl, src, u, p, tmp):
            t0 = tmp[0]
            np.multiply(p, wd, out=t0)
            np.add(src, t0, out=u)
            return u
        return state, kernel

    return GradientTransformation(init, update, inplace)


def add_l1(l1: float) -> GradientTransformation:
    """``u <- u + lambda sign(theta)``: a subgradient of
    ``lambda * sum |theta|`` (0 at theta = 0)."""
    l1 = check_positive("l1", l1, allow_zero=True)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("add_l1 needs params: call "
                             "update(grads, state, params)")
        return _map(lambda g, p: g + l1 * array_namespace(p).sign(p),
                    grads, params), state

    def inplace(grads, state, params):
        def kernel(key, sl, src, u, p, tmp):
            t0 = tmp[0]
            np.sign(p, out=t0)
            np.multiply(t0, l1, out=t0)
            np.add(src, t0, out=u)
            return u
        return state, kernel

    return GradientTransformation(init, update, inplace)


def _global_norm(grads) -> float:
    total = 0.0
    for g in grads.values():
        xp = array_namespace(g)
        total += float(xp.sum(g * g))
    return math.sqrt(total)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale all updates together so ``||u||_2 <= max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``u <- u * min(1,
    max_norm / (||u|| + 1e-6))`` with the norm over all keys.  In the
    in-place path it must come first (it needs the norm before any
    chunk is processed).
    """
    max_norm = check_positive("max_norm", max_norm)

    def init(params):
        return EmptyState()

    def coef(grads):
        return min(1.0, max_norm / (_global_norm(grads) + 1e-6))

    def update(grads, state, params=None):
        c = coef(grads)
        return _map(lambda g: c * g, grads), state

    def inplace(grads, state, params):
        if grads is None:
            raise ValueError("clip_by_global_norm must come first in a "
                             "chain to run in place")
        return state, _Scale(coef(grads))

    return GradientTransformation(init, update, inplace)


# ------------------------------------------------------------ fast path
# Chunk lengths (elements), chosen with bench/bench_optim.py on the
# course machine (1 MB L2 per core, 32 MB L3): 2^17 for rules with
# several passes per chunk (momentum, Adam: 2^16..2^18 within noise,
# 2^14 clearly slower: Python overhead), 2^20 when the only pass is the
# update itself (plain SGD: the chunk only bounds the call length).
_CHUNK = 1 << 17
_CHUNK_STREAM = 1 << 20
_POOL: ThreadPoolExecutor | None = None
# Fuse the final ``theta += a * x`` into one BLAS axpy (tests switch
# this off to check the NumPy kernels bit for bit against the pure path).
_FUSED_AXPY = True
_BLAS: dict | None = None       # dtype -> scipy's ?axpy, filled lazily
_BLAS_LIMIT = None              # threadpoolctl controller, or None


def _pool(n):
    global _POOL
    if _POOL is None or _POOL._max_workers != n:
        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ThreadPoolExecutor(max_workers=n)
    return _POOL


_LOCAL = threading.local()


def _scratch(dtype, size):
    """Three per-thread scratch buffers, kept between steps (a fresh
    allocation per step costs page faults that dominate small steps)."""
    cache = _LOCAL.__dict__.setdefault("bufs", {})
    key = (np.dtype(dtype), size)
    if key not in cache:
        if len(cache) >= 4:
            cache.clear()
        cache[key] = [np.empty(size, dtype) for _ in range(3)]
    return cache[key]


def _default_threads():
    # One thread by default: on the shared 2-core course machine two
    # threads were no faster at 10M parameters in most runs and up to
    # 5x slower when the other core was busy (bench/bench_optim.py,
    # "dlopt 2-thr"); DLOPT_THREADS overrides.
    env = os.environ.get("DLOPT_THREADS")
    return max(1, int(env)) if env else 1


def _load_blas():
    """scipy's BLAS ``saxpy``/``daxpy`` (``y += a x`` in place, one
    rounding) and a threadpoolctl controller to pin BLAS to one thread
    during a step.  Without scipy the NumPy two-pass update is used."""
    global _BLAS, _BLAS_LIMIT
    if _BLAS is not None:
        return _BLAS
    try:
        from scipy.linalg import blas
    except ImportError:                 # pragma: no cover
        _BLAS = {}
        return _BLAS
    try:
        from threadpoolctl import ThreadpoolController
        _BLAS_LIMIT = ThreadpoolController()
    except ImportError:                 # pragma: no cover
        _BLAS_LIMIT = None
    _BLAS = {np.dtype(np.float32): blas.saxpy,
             np.dtype(np.float64): blas.daxpy}
    return _BLAS


def _axpy_fn(x, y):
    """The BLAS axpy for ``y += a * x``, or None (NumPy then)."""
    if not _FUSED_AXPY or x.dtype != y.dtype:
        return None
    return _load_blas().get(y.dtype)


_BLAS_THREADED_MIN = 10_000


def _one_blas_thread(longest: int):
    """OpenBLAS splits every axpy longer than 10,000 elements over its
    own threads; for the cache-sized chunks here, waking them costs far
    more than the work (measured: 130 us instead of 4 us per 2^16-chunk
    on the course machine), so BLAS runs single-threaded inside a step
    (the previous limit is restored after it).  Setting the limit costs
    ~15-25 us, so it is skipped when no call is long enough to thread."""
    if (not _FUSED_AXPY or longest <= _BLAS_THREADED_MIN
            or not _load_blas() or _BLAS_LIMIT is None):
        return contextlib.nullcontext()
    return _BLAS_LIMIT.limit(limits=1, user_api="blas")


def _axpy(a, x, y, scratch):
    """``y += a * x`` in place on equal-length 1-d chunks.

    float32/float64 (scipy present): one BLAS axpy, a fused
    multiply-add in one pass (one rounding).  Otherwise NumPy: ``y + x``
    if ``a == 1``, else ``a * x`` into ``scratch`` then ``y + scratch``
    (two passes, two roundings, exactly as the pure path).  ``a == 0``
    goes to NumPy too, since BLAS then skips the work (and ``0 * inf``
    would no longer give NaN).
    """
    fn = _axpy_fn(x, y) if a != 0 else None
    if fn is not None:
        out = fn(x, y, a=a)
        if out is not y:                # pragma: no cover (f2py copied)
            y[...] = out
    elif a == 1.0:
        np.add(y, x, out=y)
    else:
        np.multiply(x, a, out=scratch)
        np.add(y, scratch, out=y)


def _split_kernel(kernel):
    """``(body, a)``: kernels to run on a chunk, then ``p += a * out``.

    A trailing ``u <- a * x`` (``scale_by_learning_rate``, ``scale``) is
    taken out of the chain and fused into the parameter update."""
    parts = (kernel.parts if isinstance(kernel, _Chain)
             else [] if kernel is None else [kernel])
    if parts and isinstance(parts[-1], _Scale):
        return parts[:-1], parts[-1].factor
    return parts, 1.0


def step(opt: GradientTransformation, params: Params, grads: Params,
         state, *, inplace: bool = False, threads: int | None = None,
         chunk: int | None = None):
    """One optimizer step: ``(params, state) -> (params', state')``.

    ``inplace=False``: the pure path, ``apply_updates(params,
    opt.update(grads, state, params)[0])``; nothing is mutated.

    ``inplace=True`` (NumPy arrays): the same maths written into
    ``params`` and into the state's arrays (both are mutated and
    returned; ``grads`` is not touched).  Which code runs:

    * parameters are cut into chunks of ``chunk`` elements (default
      2^17, or 2^20 for plain SGD, whose only pass is the update);
    * on each chunk every building block's kernel runs while the chunk
      is in cache (NumPy ``out=``, no allocation; same operations in the
      same order as the pure path);
    * the last operation, ``theta += (-alpha_t) x`` with ``x`` the
      gradient (SGD), the momentum buffer or Adam's direction, is one
      BLAS axpy (scipy's ``saxpy``/``daxpy``) for float32/float64: one
      pass and one rounding instead of two, so ``theta`` may differ
      from the pure path in the last bit.  BLAS is held to one thread
      during the step (threadpoolctl).  Other dtypes use NumPy in two
      passes, bit-identical to the pure path;
    * chunks are spread over ``threads`` threads (default 1, or env
      ``DLOPT_THREADS``; NumPy and BLAS release the GIL, so more threads
      help where cores are really free).

    Arrays must be C-contiguous.  Non-NumPy arrays fall back to the pure
    path and are then copied into ``params``.
    """
    if not inplace:
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state
    if opt.inplace is None or not all(
            isinstance(v, np.ndarray) for v in params.values()):
        updates, new_state = opt.update(grads, state, params)
        for k, p in params.items():
            p[...] = p + updates[k]
        return params, new_state
    new_state, kernel = opt.inplace(grads, state, params)
    body, factor = _split_kernel(kernel)
    pf = _flats("params", params)
    for k in pf:
        if not params[k].flags.writeable:
            raise ValueError(f"params[{k!r}] is read-only")
    gf = {k: np.ascontiguousarray(grads[k]).reshape(-1) for k in pf}
    if chunk is None:
        chunk = _CHUNK if body else _CHUNK_STREAM
    chunk = max(1, int(chunk))
    jobs = [(k, slice(lo, min(lo + chunk, pf[k].size)))
            for k in pf for lo in range(0, pf[k].size, chunk)]
    threads = _default_threads() if threads is None else int(threads)
    threads = max(1, min(threads, len(jobs)))

    def work(my_jobs):
        scratch = {}                    # dtype -> this thread's buffers
        for k, sl in my_jobs:
            p, x = pf[k][sl], gf[k][sl]
            if not body and _axpy_fn(x, p) is not None:
                _axpy(factor, x, p, None)       # SGD: one pass, no scratch
                continue
            bufs = scratch.get(p.dtype)
            if bufs is None:
                bufs = scratch[p.dtype] = _scratch(p.dtype, chunk)
            if p.size != chunk:         # the last, shorter chunk
                bufs = [b[:p.size] for b in bufs]
            for kern in body:
                x = kern(k, sl, x, bufs[0], p, bufs[1:])
            _axpy(factor, x, p, bufs[0])

    longest = max((sl.stop - sl.start for _, sl in jobs), default=0)
    with _one_blas_thread(longest):
        if threads == 1:
            work(jobs)
        else:
            size = -(-len(jobs) // threads)
            parts = [jobs[i:i + size] for i in range(0, len(jobs), size)]
            # the calling thread takes the first part itself (one thread
            # fewer to wake up; it would only wait otherwise)
            futures = [_pool(threads - 1).submit(work, part)
                       for part in parts[1:]]
            try:
                work(parts[0])
            finally:
                for f in futures:
                    f.result()
    return params, new_state


# --------------------------------------------------------------- aliases
def _with_l2(weight_decay, *rest, check_finite=True):
    wd = check_positive("weight_decay", weight_decay, allow_zero=True)
    head = [validate(check_finite)]
    if wd:
        head.append(add_decayed_weights(wd))
    return chain(*head, *rest)


def sgd(learning_rate: float | Schedule = 1e-3, momentum: float = 0.0,
        dampening: float = 0.0, weight_decay: float = 0.0,
        nesterov: bool = False, *, check_finite: bool = True
        ) -> GradientTransformation:
    """``torch.optim.SGD``: ``g <- g + lambda theta``; with momentum
    ``b_t = mu b + (1 - dampening) g`` (``b_1 = g``), direction ``b_t``
    or ``g + mu b_t`` (Nesterov); ``theta <- theta - alpha_t u``."""
    lr = _check_lr(learning_rate)
    mom = check_in_range("momentum", momentum, 0.0, 1.0, include_high=True)
    rest = [trace(mom, dampening, nesterov)] if mom else []
    if nesterov and not mom:
        raise ValueError("nesterov momentum requires momentum > 0")
    return _with_l2(weight_decay, *rest, scale_by_learning_rate(lr),
                    check_finite=check_finite)


def adagrad(learning_rate: float | Schedule = 1e-2, lr_decay: float = 0.0,
            weight_decay: float = 0.0, initial_accumulator_value: float = 0,
            eps: float = 1e-10, *, check_finite: bool = True
            ) -> GradientTransformation:
    """``torch.optim.Adagrad``: ``alpha_t = alpha / (1 + (t-1) lr_decay)``
    and ``theta <- theta - alpha_t g / (sqrt(s_t) + eps)``."""
    lr = _check_lr(learning_rate)
    decay = check_positive("lr_decay", lr_decay, allow_zero=True)
    if decay:
        def rate(k, base=lr):
            a = _lr_value(base, k + 1) if callable(base) else base
            return a / (1.0 + k * decay)
    else:
        rate = lr
    return _with_l2(weight_decay,
                    scale_by_rss(initial_accumulator_value, eps),
                    scale_by_learning_rate(rate), check_finite=check_finite)


def rmsprop(learning_rate: float | Schedule = 1e-2, alpha: float = 0.99,
            eps: float = 1e-8, weight_decay: float = 0.0,
            momentum: float = 0.0, centered: bool = False, *,
            check_finite: bool = True) -> GradientTransformation:
    """``torch.optim.RMSprop``; momentum ``b_t = mu b + g/(sqrt(v)+eps)``
    (starting from zero) is applied before the learning rate."""
    lr = _check_lr(learning_rate)
    mom = check_in_range("momentum", momentum, 0.0, 1.0)
    rest = [trace(mom)] if mom else []
    return _with_l2(weight_decay, scale_by_rms(alpha, eps, centered), *rest,
                    scale_by_learning_rate(lr), check_finite=check_finite)


def adam(learning_rate: float | Schedule = 1e-3,
         betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, amsgrad: bool = False, *,
         check_finite: bool = True) -> GradientTransformation:
    """``torch.optim.Adam`` (``weight_decay`` is coupled L2, as in
    torch; use ``adamw`` for decoupled decay)."""
    lr = _check_lr(learning_rate)
    b1, b2 = betas
    return _with_l2(weight_decay, scale_by_adam(b1, b2, eps, amsgrad),
                    scale_by_learning_rate(lr), check_finite=check_finite)


def adamw(learning_rate: float | Schedule = 1e-3,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2, amsgrad: bool = False, *,
          check_finite: bool = True) -> GradientTransformation:
    """``torch.optim.AdamW``: ``theta <- theta - alpha_t lambda theta
    - alpha_t adam_direction`` (decay scaled by the scheduled rate)."""
    lr = _check_lr(learning_rate)
    b1, b2 = betas
    wd = check_positive("weight_decay", weight_decay, allow_zero=True)
    return chain(validate(check_finite),
                 scale_by_adam(b1, b2, eps, amsgrad),
                 add_decayed_weights(wd),
                 scale_by_learning_rate(lr))


def nadam(learning_rate: float | Schedule = 2e-3,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 0.0, momentum_decay: float = 4e-3,
          decoupled_weight_decay: bool = False, *,
          check_finite: bool = True) -> GradientTransformation:
    """``torch.optim.NAdam`` (coupled L2 unless
    ``decoupled_weight_decay``, as in torch)."""
    lr = _check_lr(learning_rate)
    b1, b2 = betas
    core = scale_by_nadam(b1, b2, eps, momentum_decay)
    if decoupled_weight_decay:
        wd = check_positive("weight_decay", weight_decay, allow_zero=True)
        return chain(validate(check_finite), core, add_decayed_weights(wd),
                     scale_by_learning_rate(lr))
    return _with_l2(weight_decay, core, scale_by_learning_rate(lr),
                    check_finite=check_finite)
