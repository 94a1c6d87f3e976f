"""The optimizer interface: a pair of pure functions (optax's ``base``).

::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)          # theta + u

``params``, ``grads`` and ``updates`` are flat ``dict[str, array]``.
Every state is a ``NamedTuple`` with plain field names; nothing is ever
mutated, so re-running a notebook cell gives the same numbers.

This module holds the interface (``GradientTransformation``, ``chain``,
``apply_updates``), the one helper that lifts a per-array rule over the
params dict (``lift``), the input checks (``validate``) and the way to
read and write a state by field name (``get_state``, ``replace_state``).
"""
from __future__ import annotations

import contextvars
import math
from numbers import Real
from typing import Callable, NamedTuple

import numpy as np
from array_api_compat import array_namespace

from .._checks import check_positive, is_torch

__all__ = ["GradientTransformation", "EmptyState", "chain",
           "apply_updates", "lift", "zeros_like", "validate", "get_state",
           "replace_state", "Schedule"]

Schedule = Callable[[int], float]


class GradientTransformation(NamedTuple):
    """A gradient map: ``init(params) -> state`` and
    ``update(grads, state, params=None) -> (updates, new_state)``.

    ``chunkable=True`` promises that ``update`` acts on every element on
    its own (given the scalars in the state), so ``dlopt.optim.step``
    may run it on slices of the arrays; the library's elementwise blocks
    say so, ``clip_by_global_norm`` (a norm over every key) does not.
    A student's optimizer is built the same way,
    ``GradientTransformation(init, update)``, and is then never sliced.
    """
    init: Callable
    update: Callable
    chunkable: bool = False


class EmptyState(NamedTuple):
    """The state of a stateless transform."""


# ------------------------------------------------------- lifting a rule
def _as_array(x):
    # NumPy returns scalars from 0-d arithmetic; keep 0-d arrays.
    return np.asarray(x) if isinstance(x, np.generic) else x


def lift(rule: Callable, name: str, grads: dict, *trees, params=None,
         **scalars):
    """Apply a per-array rule to every key: the one helper that turns
    the book's formula for one array into a map of dicts.

    ``rule(g, *leaves, p=params[k], **scalars) -> (u, *new_leaves)``
    (``p`` only if ``params`` is given).  ``trees`` are the state's
    dicts (``None`` for an unused option, e.g. AMSGrad's ``nu_max``,
    which then stays ``None``).  Returns ``(updates, *new_trees)``.
    A state array whose shape is not the gradient's raises an error
    naming the block, the key and both shapes.
    """
    outs = {}
    for k, g in grads.items():
        leaves = []
        for i, t in enumerate(trees):
            if t is None:
                leaves.append(None)
                continue
            if k not in t:
                raise KeyError(f"{name}: the state has no entry for "
                               f"{k!r} (was it made by this optimizer's "
                               f"init, for these params?)")
            leaf = t[k]
            if tuple(leaf.shape) != tuple(g.shape):
                raise ValueError(f"{name}: state[{k!r}] has shape "
                                 f"{tuple(leaf.shape)}, grads[{k!r}] has "
                                 f"shape {tuple(g.shape)}")
            leaves.append(leaf)
        if params is not None:
            scalars["p"] = params[k]
        out = rule(g, *leaves, **scalars)
        outs[k] = out if isinstance(out, tuple) else (out,)
    n = 1 + len(trees)
    result = [{k: _as_array(o[i]) for k, o in outs.items()}
              for i in range(n)]
    return (result[0], *(None if t is None else r
                         for t, r in zip(trees, result[1:])))


def zeros_like(params: dict, fill: float = 0.0) -> dict:
    """``{k: zeros shaped like params[k]}`` (+ ``fill``), same type."""
    out = {}
    for k, v in params.items():
        z = array_namespace(v).zeros_like(v)
        out[k] = _as_array(z + fill) if fill else z
    return out


def check_state(state, cls, name: str):
    """``state`` must be the ``cls`` that ``name``'s init made."""
    if not isinstance(state, cls):
        raise TypeError(f"{name} got a state of type "
                        f"{type(state).__name__}, expected {cls.__name__} "
                        f"(pass the state that this optimizer's init or "
                        f"update returned)")


# ------------------------------------------------------------ combinators
def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Compose gradient maps left to right: ``u = f_n(...f_1(g))``.

    The state is the tuple of the transforms' states; ``update`` checks
    that it has one entry per transform (each block checks its own).
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(f"chain argument {i} is "
                            f"{type(t).__name__}, not a "
                            f"GradientTransformation")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None):
        if not isinstance(state, tuple) or hasattr(state, "_fields") \
                or len(state) != len(transforms):
            got = (f"a tuple of {len(state)}" if isinstance(state, tuple)
                   and not hasattr(state, "_fields")
                   else type(state).__name__)
            raise TypeError(f"chain of {len(transforms)} transforms got "
                            f"{got} as its state; pass the state that "
                            f"this optimizer's init or update returned")
        new_states = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new_states.append(s)
        return grads, tuple(new_states)

    return GradientTransformation(init, update,
                                  all(t.chunkable for t in transforms))


def apply_updates(params: dict, updates: dict) -> dict:
    """Return ``theta + u`` per key (updates already carry the sign)."""
    return {k: _as_array(p + updates[k]) for k, p in params.items()}


# -------------------------------------------------------------- checks
def _check_array(what: str, k, v, like=None):
    """A real floating array (NumPy or torch), else an error naming
    ``what[k]``; with ``like``, also its shape and dtype."""
    name = f"{what}[{k!r}]"
    if not (isinstance(v, np.ndarray) or is_torch(v)):
        raise TypeError(f"{name} is a {type(v).__name__}, not an array "
                        f"(use np.asarray)")
    dtype = v.dtype
    if is_torch(v):
        floating, cplx = v.is_floating_point(), v.is_complex()
    else:
        floating, cplx = dtype.kind == "f", dtype.kind == "c"
    if not floating:
        kind = "complex" if cplx else "non-floating"
        raise TypeError(f"{name} has {kind} dtype {dtype}; optimizers "
                        f"take real floating arrays")
    if like is not None:
        if tuple(v.shape) != tuple(like.shape):
            raise ValueError(f"{name} has shape {tuple(v.shape)}, but "
                             f"params[{k!r}] has shape "
                             f"{tuple(like.shape)}")
        if dtype != like.dtype or type(v) is not type(like):
            raise TypeError(f"{name} has dtype {dtype} "
                            f"({type(v).__name__}), but params[{k!r}] has "
                            f"{like.dtype} ({type(like).__name__}): mixed "
                            f"precision is not supported")


def check_params(params):
    """``params`` must be a dict of real floating arrays."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got "
                        f"{type(params).__name__}")
    for k, v in params.items():
        _check_array("params", k, v)


def _all_finite(g) -> bool:
    """No NaN or inf in ``g``.  A NaN or an inf makes ``g . g`` NaN or
    inf, so a finite dot product (BLAS, no temporary array: about half
    the time of ``isfinite(g).all()`` on a chunk in cache) proves it;
    only a product that is not finite (a bad entry, or entries over
    about 1e19 in float32) needs the entry-by-entry test."""
    if isinstance(g, np.ndarray):
        if g.dtype in (np.float32, np.float64) and g.size \
                and g.flags.c_contiguous:
            v = g.reshape(-1)
            with np.errstate(over="ignore", invalid="ignore"):
                if np.isfinite(np.dot(v, v)):
                    return True
        return bool(np.isfinite(g).all())
    xp = array_namespace(g)
    return bool(xp.all(xp.isfinite(g)))


def check_grads(grads, params=None, finite: bool = True):
    """Keys, types, shapes and dtypes of ``grads`` against ``params``;
    with ``finite`` a NaN or inf raises ``FloatingPointError`` naming
    the key.  Called before anything is computed."""
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of arrays, got "
                        f"{type(grads).__name__}")
    if params is not None:
        check_params(params)
        if set(grads) != set(params):
            missing = sorted(set(params) - set(grads))
            extra = sorted(set(grads) - set(params))
            raise KeyError(f"grads and params have different keys: "
                           f"missing {missing}, unexpected {extra}")
    for k, g in grads.items():
        _check_array("grads", k, g, None if params is None else params[k])
    if finite:
        check_finite_values(grads)


def check_finite_values(grads: dict) -> None:
    """A NaN or inf in ``grads`` raises ``FloatingPointError`` naming
    the key."""
    for k, g in grads.items():
        if not _all_finite(g):
            raise FloatingPointError(
                f"grads[{k!r}] contains NaN or inf; refusing to update "
                f"the parameters (pass check_finite=False to skip "
                f"this check)")


def validate(check_finite: bool = True) -> GradientTransformation:
    """Identity map that checks its inputs first.

    ``init``: params must be a dict of real floating arrays (0-d
    allowed).  ``update``: grads must have the params' keys, shapes and
    dtypes (no integer, complex, mixed-precision or list gradients);
    with ``check_finite`` a NaN/inf gradient raises
    ``FloatingPointError`` naming the key.  Every named optimizer starts
    with it, so a bad input fails before anything is computed.
    """
    def init(params):
        check_params(params)
        return EmptyState()

    def update(grads, state, params=None):
        if CHECKED.get():    # a slice of arrays checked whole (chunked.step)
            if check_finite:
                check_finite_values(grads)
        else:
            check_grads(grads, params, check_finite)
        return grads, state

    return GradientTransformation(init, update, chunkable=True)


# True while ``dlopt.optim.step`` runs an update on slices of arrays whose
# keys, types, shapes and dtypes it has checked whole (check_grads): only
# the values remain to be checked, slice by slice.
CHECKED = contextvars.ContextVar("dlopt_optim_checked", default=False)


# ------------------------------------------------------------ schedules
def lr_value(lr, count: int) -> float:
    """The learning rate of update ``count`` (t = 1, 2, ...): a number,
    or ``schedule(count - 1)`` checked to be a finite real >= 0."""
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


def check_lr(lr):
    """A learning rate: a schedule, or a number >= 0."""
    if callable(lr):
        return lr
    return check_positive("learning_rate", lr, allow_zero=True)


def key_mask(mask) -> Callable[[str], bool]:
    """A weight-decay mask: None (every key), a function ``key -> bool``
    or a collection of keys (a dict: its true values)."""
    if mask is None:
        return lambda k: True
    if callable(mask):
        return lambda k: bool(mask(k))
    if isinstance(mask, dict):
        return lambda k: bool(mask.get(k, False))
    if isinstance(mask, (set, frozenset, list, tuple)):
        keys = set(mask)
        return lambda k: k in keys
    raise TypeError(f"mask must be None, a function key -> bool or a "
                    f"collection of keys, got {type(mask).__name__}")


# -------------------------------------------------------- state by name
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


def replace_state(state, **fields):
    """A copy of ``state`` with the named fields replaced (the first
    occurrence of each, as ``get_state`` finds it); ``state`` itself is
    not changed.  This is how a state from other conventions is
    injected, e.g. torch's Adam state after ``t`` steps::

        s = replace_state(opt.init(params), count=t,
                          mu={k: exp_avg[k] ...}, nu={k: exp_avg_sq[k] ...})

    (torch ``exp_avg`` = ``mu``, ``exp_avg_sq`` = ``nu``,
    ``momentum_buffer`` = ``trace``, ``sum`` = ``sum_of_squares``; CS231n's
    ``config['m']``, ``config['v']``, ``config['t']`` = ``mu``, ``nu``,
    ``count``.)  An unknown field name raises ``KeyError``.
    """
    todo = dict(fields)

    def walk(s):
        if hasattr(s, "_fields"):
            mine = {f: todo.pop(f) for f in list(todo) if f in s._fields}
            return s._replace(**mine) if mine else s
        if isinstance(s, tuple):
            return type(s)(walk(x) for x in s)
        return s

    new = walk(state)
    if todo:
        raise KeyError(f"no state field(s) {sorted(todo)}")
    return new
