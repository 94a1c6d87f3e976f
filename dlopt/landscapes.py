"""Two-dimensional test landscapes with exact gradients, and a runner.

Each landscape is a ``Landscape`` with ``value(x, y)`` and
``grad(x, y) -> (dx, dy)`` (NumPy broadcasting, so both take grids), its
known minima, and a plotting window.  ``run(opt, landscape, x0, steps)``
drives any ``GradientTransformation`` on the params dict ``{"xy":
array([x, y])}`` and records the trajectory.
"""
from __future__ import annotations

import contextlib
from typing import Callable, NamedTuple

import numpy as np

from ._checks import as_float_array, check_int, check_shape
from .optim import GradientTransformation, apply_updates

__all__ = ["Landscape", "Trajectory", "quadratic", "rotated_quadratic",
           "rosenbrock", "beale",
           "himmelblau", "saddle", "monkey_saddle", "run", "LANDSCAPES"]


class Landscape(NamedTuple):
    name: str
    value: Callable
    grad: Callable
    minima: tuple          # ((x, y), ...) with zero gradient
    window: tuple          # (xmin, xmax, ymin, ymax) for plots
    log_contours: bool = True


def quadratic(kappa: float = 10.0) -> Landscape:
    """``f = (x^2 + kappa y^2) / 2``: condition number ``kappa``;
    gradient ``(x, kappa y)``; minimum at the origin."""
    kappa = float(kappa)
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    return Landscape(
        f"quadratic (kappa={kappa:g})",
        lambda x, y: 0.5 * (x * x + kappa * y * y),
        lambda x, y: (x * 1.0, kappa * y),
        ((0.0, 0.0),), (-3.0, 3.0, -2.0, 2.0))


def rotated_quadratic(kappa: float = 10.0,
                      angle: float = np.pi / 4) -> Landscape:
    """``quadratic(kappa)`` turned by ``angle`` (radians) about the
    origin: ``f(p) = (u^2 + kappa v^2) / 2`` with ``(u, v) = R(-angle) p``.

    The curvatures are still ``1`` and ``kappa``, but the valley's axes
    are no longer the coordinate axes, so per-coordinate step sizes
    (AdaGrad, RMSprop, Adam) cannot undo the conditioning. Gradient:
    ``R(angle) (u, kappa v)``; minimum at the origin.
    """
    kappa = float(kappa)
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    c, s = float(np.cos(angle)), float(np.sin(angle))

    def uv(x, y):                      # coordinates along the valley
        return c * x + s * y, -s * x + c * y

    def value(x, y):
        u, v = uv(x, y)
        return 0.5 * (u * u + kappa * v * v)

    def grad(x, y):
        u, v = uv(x, y)
        gu, gv = u, kappa * v
        return c * gu - s * gv, s * gu + c * gv

    return Landscape(f"rotated quadratic (kappa={kappa:g})", value, grad,
                     ((0.0, 0.0),), (-3.0, 3.0, -3.0, 3.0))


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Landscape:
    """``f = (a - x)^2 + b (y - x^2)^2``; minimum ``(a, a^2)``;
    gradient ``(-2(a - x) - 4 b x (y - x^2), 2 b (y - x^2))``."""
    return Landscape(
        "Rosenbrock",
        lambda x, y: (a - x) ** 2 + b * (y - x * x) ** 2,
        lambda x, y: (-2 * (a - x) - 4 * b * x * (y - x * x),
                      2 * b * (y - x * x)),
        ((a, a * a),), (-2.0, 2.0, -1.0, 3.0))


def _beale_terms(x, y):
    return (1.5 - x + x * y, 2.25 - x + x * y ** 2, 2.625 - x + x * y ** 3)


def _beale_value(x, y):
    t1, t2, t3 = _beale_terms(x, y)
    return t1 ** 2 + t2 ** 2 + t3 ** 2


def _beale_grad(x, y):
    t1, t2, t3 = _beale_terms(x, y)
    dx = 2 * t1 * (y - 1) + 2 * t2 * (y ** 2 - 1) + 2 * t3 * (y ** 3 - 1)
    dy = 2 * t1 * x + 2 * t2 * 2 * x * y + 2 * t3 * 3 * x * y ** 2
    return dx, dy


def beale() -> Landscape:
    """Beale's function; global minimum ``(3, 0.5)``."""
    return Landscape("Beale", _beale_value, _beale_grad, ((3.0, 0.5),),
                     (-4.5, 4.5, -4.5, 4.5))


_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286170),
    (3.584428340330492, -1.848126526964404),
)


def himmelblau() -> Landscape:
    """``f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2``; four minima (f = 0)."""
    def value(x, y):
        return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2

    def grad(x, y):
        a, b = x * x + y - 11, x + y * y - 7
        return 4 * x * a + 2 * b, 2 * a + 4 * y * b
    return Landscape("Himmelblau", value, grad, _HIMMELBLAU_MINIMA,
                     (-5.0, 5.0, -5.0, 5.0))


def saddle() -> Landscape:
    """``f = (x^2 - y^2) / 2``: a saddle point at the origin (no
    minimum; the origin is a stationary point, not a minimum)."""
    return Landscape("saddle", lambda x, y: 0.5 * (x * x - y * y),
                     lambda x, y: (x * 1.0, -y * 1.0), (),
                     (-2.0, 2.0, -2.0, 2.0), log_contours=False)


def monkey_saddle() -> Landscape:
    """``f = x^3 - 3 x y^2``: a degenerate saddle at the origin."""
    return Landscape("monkey saddle", lambda x, y: x ** 3 - 3 * x * y * y,
                     lambda x, y: (3 * x * x - 3 * y * y, -6 * x * y), (),
                     (-1.5, 1.5, -1.5, 1.5), log_contours=False)


LANDSCAPES = {"quadratic": quadratic, "rosenbrock": rosenbrock,
              "beale": beale, "himmelblau": himmelblau, "saddle": saddle,
              "monkey_saddle": monkey_saddle}


class Trajectory(NamedTuple):
    """``params``: shape (steps + 1, 2), row 0 is ``x0``;
    ``loss``: shape (steps + 1,), the value at each row; ``message``:
    None, or why the run stopped early (fewer rows then)."""
    params: np.ndarray
    loss: np.ndarray
    message: str | None = None


def run(opt: GradientTransformation, landscape: Landscape, x0,
        steps: int, *, stop_on_divergence: bool = False) -> Trajectory:
    """Run ``steps`` updates of ``opt`` from ``x0`` (shape (2,)) on the
    params dict ``{"xy": array([x, y])}``.

    If the iterate diverges, the optimizer's check raises
    ``FloatingPointError`` (a NaN/inf gradient); with
    ``stop_on_divergence`` the run is instead cut at the last finite
    iterate and ``message`` says at which step (the playground's mode).
    """
    if not isinstance(opt, GradientTransformation):
        raise TypeError(f"opt must be a GradientTransformation, got "
                        f"{type(opt).__name__}")
    steps = check_int("steps", steps, low=0)
    x0 = as_float_array("x0", x0, ndim=1).astype(np.float64)
    check_shape("x0", x0, (2,))
    params = {"xy": x0.copy()}
    state = opt.init(params)
    path, loss, message = [x0.copy()], [float(landscape.value(*x0))], None
    quiet = np.errstate(all="ignore") if stop_on_divergence \
        else contextlib.nullcontext()
    with quiet:
        for t in range(1, steps + 1):
            gx, gy = landscape.grad(*params["xy"])
            grads = {"xy": np.array([gx, gy], dtype=np.float64)}
            try:
                updates, state = opt.update(grads, state, params)
            except FloatingPointError:
                if not stop_on_divergence:
                    raise
                message = f"diverged at step {t}"
                break
            params = apply_updates(params, updates)
            value = float(landscape.value(*params["xy"]))
            if stop_on_divergence and not (
                    np.all(np.isfinite(params["xy"])) and np.isfinite(value)):
                message = f"diverged at step {t}"
                break
            path.append(np.asarray(params["xy"], dtype=np.float64).copy())
            loss.append(value)
    return Trajectory(np.array(path), np.array(loss), message)
