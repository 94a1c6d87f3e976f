"""Plot helpers: landscapes with trajectories, and loss curves.

Every helper takes ``ax=None`` (a new figure) and returns ``(fig, ax)``;
matplotlib is imported lazily and ``plt.show()`` is never called.
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_contours", "plot_trajectories", "plot_losses"]


def _fig_ax(ax, figsize=(5, 4)):
    import matplotlib.pyplot as plt
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def plot_contours(landscape, ax=None, levels: int = 30, n: int = 200,
                  filled: bool = False):
    """Contours of ``landscape`` over its window; log-spaced levels
    (above the minimum) unless the landscape is unbounded below.

    ``filled``: flat filled contours (``contourf``, no anti-aliasing),
    which compress far better in PNG animation frames than anti-aliased
    lines (about 5x smaller pages; ``playground.animate`` uses them).
    """
    fig, ax = _fig_ax(ax)
    x0, x1, y0, y1 = landscape.window
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    Z = landscape.value(X, Y)
    if landscape.log_contours:
        lo = Z.min()
        Z = Z - lo + 1e-3 * (Z.max() - lo + 1e-12)
        levels = np.geomspace(Z.min(), Z.max(), levels)
    if filled:
        ax.contourf(X, Y, Z, levels=levels, cmap="Blues_r",
                    antialiased=False)
    else:
        ax.contour(X, Y, Z, levels=levels, cmap="viridis", linewidths=0.8)
    for mx, my in landscape.minima:
        ax.plot(mx, my, "k*", ms=8 if filled else 10)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y",
           title=landscape.name)
    return fig, ax


def plot_trajectories(landscape, trajectories: dict, ax=None,
                      markevery=None, **kw):
    """Contours plus one line per ``{name: Trajectory}`` (its
    ``params``, shape ``(steps + 1, 2)``), a dot at every iterate, or at
    every ``markevery``-th one (long runs: a lighter SVG); ``kw`` go to
    :func:`plot_contours`."""
    fig, ax = plot_contours(landscape, ax=ax, **kw)
    for name, traj in trajectories.items():
        p = np.asarray(traj.params)
        ax.plot(p[:, 0], p[:, 1], ".-", ms=3, lw=1.2, label=name,
                markevery=markevery)
        ax.plot(p[0, 0], p[0, 1], "ko", ms=4)
    if trajectories:
        ax.legend(fontsize="small")
    return fig, ax


def plot_losses(curves: dict, ax=None, log: bool = True,
                xlabel: str = "step"):
    """One line per ``{name: sequence of losses}`` (or a ``Trajectory``,
    or a training ``History``: its ``loss`` is plotted)."""
    fig, ax = _fig_ax(ax)
    for name, c in curves.items():
        y = np.asarray(getattr(c, "loss", c), dtype=float)
        ax.plot(np.arange(len(y)), y, label=name)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel="loss")
    if curves:
        ax.legend(fontsize="small")
    return fig, ax
