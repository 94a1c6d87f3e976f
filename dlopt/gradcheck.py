"""Numerical gradient checking in float64.

A gradient check compares an analytic gradient (from a backward pass) with
centred finite differences

``df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)``,

whose error is ``O(h^2)``. In float64 with ``h = 1e-6`` a correct gradient
typically agrees to a relative error of ``1e-7`` or better; a wrong one
(a flipped sign, a missing ``1/N``, a missing transpose) is off by ``O(1)``.

Everything here insists on float64: in float32, rounding error in ``f``
divided by ``2h`` swamps the comparison and the check becomes useless.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._checks import is_torch

__all__ = [
    "numerical_gradient",
    "rel_error",
    "elementwise_rel_error",
    "check_gradients",
    "GradCheckResult",
]


def _require_float64(name, x):
    if is_torch(x):
        raise TypeError(f"{name} is a torch tensor; gradient checks take "
                        f"NumPy float64 arrays ({name}.detach().numpy())")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array (it is perturbed "
                        f"in place), got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(
            f"{name} must have dtype float64 for a gradient check, got "
            f"{x.dtype}; convert it first, e.g. {name}.astype(np.float64)")


def numerical_gradient(f, x, h: float = 1e-6, df=None):
    """Centred-difference gradient of ``f`` at ``x``.

    ``x`` (a float64 NumPy array) is perturbed **in place**, one entry at a
    time, and ``f(x)`` is called; so ``f`` may either use its argument or
    read ``x`` through a closure (e.g. a params dict holding ``x``). Every
    entry is restored to its exact original value afterwards, even if ``f``
    raises.

    Parameters
    ----------
    f : callable, ``f(x) -> float`` (or an array if ``df`` is given).
    x : float64 ndarray, any shape.
    h : step size.
    df : optional array of ``f``'s output shape. Then the result is the
        vector-Jacobian product ``sum(df * df_dx_i)``, i.e. the gradient
        of ``sum(df * f(x))``, which is how a map's backward is checked.

    Returns
    -------
    grad : float64 array with the shape of ``x``.
    """
    _require_float64("x", x)
    if not (isinstance(h, (int, float)) and h > 0):
        raise ValueError(f"h must be a positive number, got {h!r}")
    grad = np.zeros_like(x)
    flat = x.reshape(-1)  # a view: writing to it writes to x
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed "
                         "in place")
    gflat = grad.reshape(-1)

    def value(v):
        out = f(x)
        if df is None:
            out = np.asarray(out, dtype=np.float64)
            if out.size != 1:
                raise ValueError(
                    f"f must return a scalar, got shape {out.shape}; "
                    f"pass df= to check a vector-valued map")
            return float(out.reshape(()))
        return float(np.sum(np.asarray(df) * np.asarray(out)))

    for i in range(flat.size):
        old = flat[i]
        try:
            flat[i] = old + h
            fp = value(x)
            flat[i] = old - h
            fm = value(x)
        finally:
            flat[i] = old
        gflat[i] = (fp - fm) / (2.0 * h)
    return grad


def elementwise_rel_error(a, b):
    """``|a - b| / max(1e-8, |a| + |b|)``, elementwise."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs equal shapes, got {a.shape} "
                         f"and {b.shape}")
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def rel_error(a, b) -> float:
    """Maximum elementwise relative error between two arrays.

    ``rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|)``.

    The denominator is taken per element, then the maximum over elements,
    so one bad entry among many large correct ones is still seen. The
    ``1e-8`` floor keeps entries where both are ~0 from dividing by zero
    (there the measure becomes an absolute error scaled by ``1e8``).
    Empty arrays give 0.

    Caveat: centred differences carry rounding noise of about
    ``1e-16 |f| / h`` (~1e-10 for ``h = 1e-6``), so an entry whose true
    gradient is tiny (say ``< 1e-8``) but not exactly zero can show a
    large relative error even when the analytic gradient is right. Use
    well-scaled random inputs for checks.
    """
    e = elementwise_rel_error(a, b)
    return float(e.max()) if e.size else 0.0


@dataclass
class GradCheckResult:
    """Outcome of :func:`check_gradients`.

    Attributes
    ----------
    ok : bool, ``max_rel_error <= tol``.
    max_rel_error : float, the worst relative error over all parameters.
    worst_param : name of the parameter holding it.
    worst_index : index (tuple) of that entry within ``worst_param``.
    analytic_value, numeric_value : the two gradients at that entry.
    errors : dict name -> max relative error of that parameter.
    numeric : dict name -> the numerical gradient.
    tol : the tolerance used.
    """

    ok: bool
    max_rel_error: float
    worst_param: str | None
    worst_index: tuple
    analytic_value: float
    numeric_value: float
    errors: dict = field(default_factory=dict)
    numeric: dict = field(default_factory=dict, repr=False)
    tol: float = 1e-6

    def __str__(self) -> str:
        status = "PASSED" if self.ok else "FAILED"
        lines = [f"gradient check {status}: max rel error "
                 f"{self.max_rel_error:.3e} (tol {self.tol:.1e})"]
        for name, err in self.errors.items():
            flag = "" if err <= self.tol else "  <-- too large"
            lines.append(f"  {name:>10s}: {err:.3e}{flag}")
        if self.worst_param is not None:
            lines.append(
                f"  worst: {self.worst_param}{list(self.worst_index)} "
                f"analytic {self.analytic_value:.9g} vs numeric "
                f"{self.numeric_value:.9g}")
        return "\n".join(lines)

    def assert_ok(self) -> "GradCheckResult":
        """Raise ``AssertionError`` with the worst entry unless ``ok``."""
        if not self.ok:
            raise AssertionError(
                f"gradient check failed for {self.worst_param!r} at index "
                f"{self.worst_index}: analytic {self.analytic_value!r} vs "
                f"numeric {self.numeric_value!r} (rel error "
                f"{self.max_rel_error:.3e} > tol {self.tol:.1e})\n"
                + str(self))
        return self


def check_gradients(f, params: dict, analytic: dict, tol: float = 1e-6,
                    h: float = 1e-6) -> GradCheckResult:
    """Compare analytic gradients with centred differences, per parameter.

    Parameters
    ----------
    f : callable ``f(params) -> float``, the loss. Each ``params[name]`` is
        perturbed in place while ``f`` is evaluated, then restored.
    params : dict name -> float64 ndarray.
    analytic : dict name -> gradient with the same shape; it must have the
        same keys as ``params``.
    tol : pass if the maximum :func:`rel_error` is ``<= tol``.
    h : finite-difference step.

    Returns
    -------
    GradCheckResult. Call ``.assert_ok()`` in a test: a check that only
    prints proves nothing.
    """
    if not isinstance(params, dict) or not isinstance(analytic, dict):
        raise TypeError("params and analytic must be dicts name -> array")
    if set(params) != set(analytic):
        missing = sorted(set(params) - set(analytic))
        extra = sorted(set(analytic) - set(params))
        raise ValueError(f"analytic must have the keys of params; missing "
                         f"{missing}, unexpected {extra}")
    if not params:
        raise ValueError("params is empty")
    errors, numeric = {}, {}
    worst = (-1.0, None, (), np.nan, np.nan)
    for name, x in params.items():
        _require_float64(f"params[{name!r}]", x)
        a = np.asarray(analytic[name])
        if is_torch(analytic[name]):
            raise TypeError(f"analytic[{name!r}] is a torch tensor; pass "
                            f"a NumPy array")
        if a.shape != x.shape:
            raise ValueError(f"analytic[{name!r}] has shape {a.shape}, "
                             f"but params[{name!r}] has shape {x.shape}")
        a = a.astype(np.float64)
        num = numerical_gradient(lambda _x: f(params), x, h=h)
        numeric[name] = num
        e = elementwise_rel_error(a, num)
        if e.size == 0:
            errors[name] = 0.0
            continue
        # A NaN/inf anywhere must fail, not hide from argmax/compare.
        bad = ~(np.isfinite(a) & np.isfinite(num) & np.isfinite(e))
        e = np.where(bad, np.inf, e)
        idx = np.unravel_index(int(np.argmax(e)), e.shape)
        errors[name] = float(e[idx])
        if errors[name] > worst[0]:
            worst = (errors[name], name, tuple(int(i) for i in idx),
                     float(a[idx]), float(num[idx]))
    max_err, wname, widx, aval, nval = worst
    max_err = max(max_err, 0.0)
    return GradCheckResult(ok=bool(max_err <= tol), max_rel_error=max_err,
                           worst_param=wname, worst_index=widx,
                           analytic_value=aval, numeric_value=nval,
                           errors=errors, numeric=numeric, tol=tol)
