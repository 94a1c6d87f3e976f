"""Second-order steps and line searches, for contrast with the course's
first-order optimizers.

Everything here works on a flat parameter vector ``x`` of shape ``(P,)``
with a value function ``f(x) -> float`` and a gradient ``grad(x) -> (P,)``;
a Hessian is a ``(P, P)`` array. These are the textbook algorithms of
Nocedal and Wright, *Numerical Optimization* (chapters 3 and 6), kept
small: they are for pictures and experiments on a few parameters, not
for networks (a Hessian of a million parameters has 10^12 entries).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

__all__ = ["fd_hessian", "hessian_vector", "top_curvature",
           "newton_direction", "armijo_backtracking", "Run", "descend"]


def fd_hessian(grad: Callable, x, h: float = 1e-5) -> np.ndarray:
    """Hessian ``(P, P)`` of a function at ``x`` ``(P,)`` by central
    differences of its exact gradient ``grad``, symmetrised:
    ``H[:, j] = (grad(x + h e_j) - grad(x - h e_j)) / (2h)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be a flat vector (P,), got shape {x.shape}")
    P = x.size
    H = np.empty((P, P))
    for j in range(P):
        e = np.zeros(P)
        e[j] = h
        H[:, j] = (np.asarray(grad(x + e)) - np.asarray(grad(x - e))) / (2 * h)
    return 0.5 * (H + H.T)


def hessian_vector(grad: Callable, x, v, h: float = 1e-4) -> np.ndarray:
    """``H v`` ``(P,)`` at ``x`` ``(P,)`` from two gradients, without
    forming ``H``: ``(grad(x + h v) - grad(x - h v)) / (2h)`` for a unit
    ``v`` (error O(h^2))."""
    x = np.asarray(x, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if x.ndim != 1 or v.shape != x.shape:
        raise ValueError(f"x and v must be flat vectors of one shape, got "
                         f"{x.shape} and {v.shape}")
    return (np.asarray(grad(x + h * v), dtype=np.float64)
            - np.asarray(grad(x - h * v), dtype=np.float64)) / (2 * h)


def top_curvature(grad: Callable, x, iters: int = 50, h: float = 1e-4,
                  seed: int = 0, tol: float = 1e-6):
    """The largest curvature ``h_max`` of a loss at ``x`` ``(P,)`` and its
    direction ``(P,)``, by power iteration on Hessian-vector products
    (:func:`hessian_vector`): ``v <- H v / |H v|``, ``h_max = v^T H v``.

    It finds the eigenvalue of largest *magnitude*; at a minimum (``H``
    positive semi-definite) that is ``h_max``. Stops when the estimate
    changes by less than ``tol`` (relative) or after ``iters`` products,
    two gradients each. Returns ``(h_max, v)``.
    """
    x = np.asarray(x, dtype=np.float64)
    v = np.random.default_rng(seed).normal(size=x.shape)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(iters):
        Hv = hessian_vector(grad, x, v, h)
        new = float(v @ Hv)
        norm = np.linalg.norm(Hv)
        if norm == 0:
            return 0.0, v
        v = Hv / norm
        if abs(new - lam) <= tol * abs(new):
            return new, v
        lam = new
    return lam, v


def newton_direction(g, H, damping: float = 0.0) -> np.ndarray:
    """The Newton direction ``d = -(H + damping I)^{-1} g``, shape ``(P,)``.

    ``g`` is the gradient ``(P,)``, ``H`` the Hessian ``(P, P)``. With
    ``damping > 0`` (Levenberg's regularisation) the step is shorter and
    turned towards ``-g``. Raises ``numpy.linalg.LinAlgError`` if the
    matrix is singular.
    """
    g = np.asarray(g, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    if H.shape != (g.size, g.size):
        raise ValueError(f"H must have shape ({g.size}, {g.size}) for a "
                         f"gradient of {g.size} entries, got {H.shape}")
    if damping < 0:
        raise ValueError(f"damping must be >= 0, got {damping}")
    return -np.linalg.solve(H + damping * np.eye(g.size), g)


def armijo_backtracking(f: Callable, x, fx: float, g, d,
                        alpha0: float = 1.0, shrink: float = 0.5,
                        c: float = 1e-4, max_halvings: int = 60):
    """Backtracking line search (Armijo's sufficient-decrease rule).

    Starting from ``alpha0``, multiply the step by ``shrink`` until

        f(x + alpha d) <= f(x) + c * alpha * g^T d,

    and return ``(alpha, evaluations)``. ``x``, ``g`` (the gradient at
    ``x``) and ``d`` (a descent direction, ``g^T d < 0``) have shape
    ``(P,)``; ``fx = f(x)``.
    """
    x, g, d = (np.asarray(a, dtype=np.float64) for a in (x, g, d))
    slope = float(g @ d)
    if not slope < 0:
        raise ValueError(f"d is not a descent direction: g^T d = {slope}")
    if not (0 < shrink < 1 and 0 < c < 1):
        raise ValueError(f"need 0 < shrink < 1 and 0 < c < 1, got "
                         f"shrink={shrink}, c={c}")
    alpha = float(alpha0)
    for k in range(1, max_halvings + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            value = f(x + alpha * d)
        if value <= fx + c * alpha * slope:
            return alpha, k
        alpha *= shrink
    raise RuntimeError(f"no step satisfied Armijo's rule after "
                       f"{max_halvings} halvings (last alpha {alpha:g})")


class Run(NamedTuple):
    """A run of :func:`descend`: iterates ``(T + 1, P)``, values
    ``(T + 1,)``, step sizes ``(T,)`` and the number of function
    evaluations the line searches used."""
    params: np.ndarray
    loss: np.ndarray
    steps: np.ndarray
    evaluations: int


def descend(f: Callable, grad: Callable, x0, steps: int,
            method: str = "gd", alpha: float = 1.0,
            hessian: Callable | None = None,
            line_search: bool = False, tol: float = 1e-12) -> Run:
    """Minimise ``f`` from ``x0`` ``(P,)`` for ``steps`` iterations.

    ``method="gd"``: direction ``-grad``; ``"newton"``: the Newton
    direction with ``hessian(x) -> (P, P)`` (``fd_hessian`` of ``grad``
    if not given); where the Hessian is not positive definite the Newton
    direction is replaced by ``-grad`` (otherwise it may climb). With
    ``line_search`` each step is found by :func:`armijo_backtracking`
    from ``alpha``; without, the step is ``alpha`` times the direction.
    Stops early once the gradient norm is below ``tol``.
    """
    if method not in ("gd", "newton"):
        raise ValueError(f"method must be 'gd' or 'newton', got {method!r}")
    hess = hessian or (lambda x: fd_hessian(grad, x))
    x = np.asarray(x0, dtype=np.float64).copy()
    xs, fs, alphas, evals = [x.copy()], [float(f(x))], [], 0
    for _ in range(steps):
        g = np.asarray(grad(x), dtype=np.float64)
        if np.linalg.norm(g) < tol:
            break
        d = -g
        if method == "newton":
            H = hess(x)
            if np.linalg.eigvalsh(H).min() > 0:
                d = newton_direction(g, H)
        a = alpha
        if line_search:
            a, k = armijo_backtracking(f, x, fs[-1], g, d, alpha0=alpha)
            evals += k
        x = x + a * d
        xs.append(x.copy())
        fs.append(float(f(x)))
        alphas.append(a)
        if not np.isfinite(fs[-1]):
            break
    return Run(np.array(xs), np.array(fs), np.array(alphas), evals)
