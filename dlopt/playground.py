"""An optimizer playground: interactive in Jupyter, animated in the book.

Three things live here, all built on ``dlopt.optim`` and
``dlopt.landscapes``:

- ``Playground``: an ipywidgets app. Pick a landscape and an optimizer,
  move sliders for the learning rate ``alpha``, ``beta`` (momentum ``mu``
  or Adam's ``beta1``) and ``beta2`` (Adam's ``beta2``, RMSprop's decay),
  and see the path and the loss curve update. Besides the course's
  optimizers it runs *your own* update functions (the assignment's rules)::

      rule(theta, g, state, alpha, beta, beta2) -> (theta, state)

- ``trajectory`` / ``run_rule``: the runs the playground draws, usable
  without widgets (and in tests).
- ``animate``: a matplotlib animation of paths (the online book renders
  it as HTML with ``tools.bookhtml.jshtml``, the site's tooling).

ipywidgets and matplotlib are imported lazily; nothing here calls
``plt.show()``.
"""
from __future__ import annotations

import html
import io
from typing import Callable

import numpy as np

from . import optim
from .landscapes import LANDSCAPES, Landscape, Trajectory

__all__ = ["BUILTIN", "START", "make_optimizer", "run_rule", "trajectory",
           "Playground", "animate"]

# Optimizer name -> factory of the slider values (alpha, beta, beta2).
BUILTIN: dict[str, Callable] = {
    "SGD": lambda a, b, b2: optim.sgd(a),
    "momentum": lambda a, b, b2: optim.sgd(a, momentum=b),
    "Nesterov": lambda a, b, b2: optim.sgd(a, momentum=b, nesterov=True),
    "AdaGrad": lambda a, b, b2: optim.adagrad(a),
    "RMSprop": lambda a, b, b2: optim.rmsprop(a, alpha=b2),
    "Adam": lambda a, b, b2: optim.adam(a, betas=(b, b2)),
    "NAdam": lambda a, b, b2: optim.nadam(a, betas=(b, b2)),
    "AdamW": lambda a, b, b2: optim.adamw(a, betas=(b, b2)),
}

# A start point per landscape that shows something interesting.
START = {"quadratic": (-2.5, 1.5), "rosenbrock": (-1.5, 2.5),
         "beale": (1.0, 1.4), "himmelblau": (-0.5, -0.5),
         "saddle": (-1.8, 0.02), "monkey_saddle": (0.9, 0.3)}


def make_optimizer(name: str, alpha: float, beta: float = 0.9,
                   beta2: float = 0.999) -> optim.GradientTransformation:
    """The course optimizer ``name`` (a key of ``BUILTIN``) with the
    slider values; ``beta`` is ``mu`` or ``beta1``, ``beta2`` is Adam's
    ``beta2`` or RMSprop's decay."""
    if name not in BUILTIN:
        raise ValueError(f"optimizer must be one of {sorted(BUILTIN)}, "
                         f"got {name!r}")
    return BUILTIN[name](alpha, beta, beta2)


def _landscape(landscape) -> Landscape:
    if isinstance(landscape, Landscape):
        return landscape
    if landscape not in LANDSCAPES:
        raise ValueError(f"landscape must be a Landscape or one of "
                         f"{sorted(LANDSCAPES)}, got {landscape!r}")
    return LANDSCAPES[landscape]()


def _drive(step, landscape: Landscape, x0, steps: int):
    """Run ``theta <- step(theta, g)`` from ``x0``; stop at the first
    non-finite iterate. Returns (Trajectory, message or None)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    x = np.asarray(x0, dtype=np.float64).reshape(-1)
    if x.shape != (2,):
        raise ValueError(f"x0 must have shape (2,), got {x.shape}")
    path, loss = [x.copy()], [float(landscape.value(*x))]
    message = None
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            g = np.array(landscape.grad(*x), dtype=np.float64)
            try:
                x = np.asarray(step(x, g), dtype=np.float64).reshape(2)
            except FloatingPointError:
                message = f"diverged at step {t}"
                break
            value = float(landscape.value(*x))
            if not (np.all(np.isfinite(x)) and np.isfinite(value)):
                message = f"diverged at step {t}"
                break
            path.append(x.copy())
            loss.append(value)
    return Trajectory(np.array(path), np.array(loss)), message


def run_rule(rule: Callable, landscape, x0, steps: int, alpha: float,
             beta: float = 0.9, beta2: float = 0.999,
             init_state: Callable | None = None):
    """Run a user's update function on a landscape.

    ``rule(theta, g, state, alpha, beta, beta2) -> (theta, state)`` with
    ``theta`` and ``g`` of shape (2,); ``state`` starts as
    ``init_state(theta)`` (default ``{}``). Returns ``(Trajectory,
    message)``; the message is None, or says why the run stopped early.
    Errors raised by the rule propagate.
    """
    if not callable(rule):
        raise TypeError("rule must be callable (theta, g, state, alpha, "
                        "beta, beta2) -> (theta, state)")
    land = _landscape(landscape)
    x = np.asarray(x0, dtype=np.float64)
    box = {"state": init_state(x.copy()) if init_state else {}}

    def step(theta, g):
        out = rule(theta.copy(), g, box["state"], alpha, beta, beta2)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("an update rule must return (theta, state)")
        theta, box["state"] = out
        return theta
    return _drive(step, land, x, steps)


def trajectory(optimizer, landscape, x0=None, steps: int = 100,
               alpha: float = 0.01, beta: float = 0.9,
               beta2: float = 0.999):
    """Run a course optimizer (a name in ``BUILTIN`` or a
    ``GradientTransformation``) on a landscape (a name in
    ``LANDSCAPES`` or a ``Landscape``) from ``x0`` (default ``START``).

    Returns ``(Trajectory, message)``; a diverging run is cut at the
    last finite iterate and the message says so.
    """
    land = _landscape(landscape)
    if x0 is None:
        key = landscape if isinstance(landscape, str) else None
        x0 = START.get(key, (0.5, 0.5))
    opt = (make_optimizer(optimizer, alpha, beta, beta2)
           if isinstance(optimizer, str) else optimizer)
    if not isinstance(opt, optim.GradientTransformation):
        raise TypeError(f"optimizer must be a name in {sorted(BUILTIN)} "
                        f"or a GradientTransformation")
    params = {"xy": np.asarray(x0, dtype=np.float64)}
    box = {"state": opt.init(params)}

    def step(theta, g):
        updates, box["state"] = opt.update({"xy": g}, box["state"],
                                           {"xy": theta})
        return theta + updates["xy"]
    return _drive(step, land, x0, steps)


# ------------------------------------------------------------ the widget
class Playground:
    """An ipywidgets optimizer playground (see the module docstring).

    ``rules``: ``{name: rule}`` of user update functions, added to the
    optimizer menu; ``init_state(theta) -> state`` starts their state.
    The app is ``playground.widget``; ``controls`` holds its widgets
    (``landscape``, ``optimizer``, ``alpha``, ``beta``, ``beta2``,
    ``steps``), ``result`` the last ``Trajectory`` drawn and ``message``
    the status text. Changing a control redraws at once; the figure is
    rendered to a PNG ``Image`` widget, so it needs no plotting backend.
    """

    def __init__(self, rules: dict | None = None, init_state=None,
                 landscape: str = "rosenbrock", optimizer: str = "Adam",
                 alpha: float = 0.05, beta: float = 0.9,
                 beta2: float = 0.999, steps: int = 150):
        import ipywidgets as w
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.rules = dict(rules or {})
        for name, rule in self.rules.items():
            if not callable(rule):
                raise TypeError(f"rules[{name!r}] is not callable")
            if name in BUILTIN:
                raise ValueError(f"rules[{name!r}]: the name is taken by "
                                 f"a course optimizer")
        self.init_state = init_state
        layout = {"description_width": "initial"}
        self.controls = {
            "landscape": w.Dropdown(options=list(LANDSCAPES),
                                    value=landscape,
                                    description="landscape"),
            "optimizer": w.Dropdown(options=[*BUILTIN, *self.rules],
                                    value=optimizer,
                                    description="optimizer"),
            "alpha": w.FloatLogSlider(value=alpha, base=10, min=-4, max=0.5,
                                      step=0.05, description="α (lr)",
                                      readout_format=".2g", style=layout,
                                      continuous_update=False),
            "beta": w.FloatSlider(value=beta, min=0.0, max=0.99, step=0.01,
                                  description="β (μ, β₁)", style=layout,
                                  continuous_update=False),
            "beta2": w.FloatSlider(value=beta2, min=0.5, max=0.9999,
                                   step=0.0001, readout_format=".4f",
                                   description="β₂ (ρ)", style=layout,
                                   continuous_update=False),
            "steps": w.IntSlider(value=steps, min=10, max=1000, step=10,
                                 description="steps",
                                 continuous_update=False),
        }
        self.status = w.HTML()
        self.image = w.Image(format="png")
        self.fig = Figure(figsize=(9, 3.8))
        FigureCanvasAgg(self.fig)
        self.ax_path, self.ax_loss = self.fig.subplots(1, 2)
        self.result = None
        self.message = None
        self._drawn_landscape = None
        for c in self.controls.values():
            c.observe(self._on_change, names="value")
        c = self.controls
        self.widget = w.VBox([
            w.HBox([c["landscape"], c["optimizer"], c["steps"]]),
            w.HBox([c["alpha"], c["beta"], c["beta2"]]),
            self.status, self.image])
        self.refresh()

    def _on_change(self, change):
        self.refresh()

    def values(self) -> dict:
        """The current control values."""
        return {k: c.value for k, c in self.controls.items()}

    def run(self):
        """The run for the current controls: (Trajectory, message)."""
        v = self.values()
        land = LANDSCAPES[v["landscape"]]()
        x0 = START[v["landscape"]]
        if v["optimizer"] in self.rules:
            try:
                return run_rule(self.rules[v["optimizer"]], land, x0,
                                v["steps"], v["alpha"], v["beta"],
                                v["beta2"], init_state=self.init_state)
            except Exception as exc:      # the reader's code: show, go on
                empty = Trajectory(np.array([x0], float),
                                   np.array([land.value(*x0)]))
                return empty, (f"your rule raised {type(exc).__name__}: "
                               f"{exc}")
        return trajectory(v["optimizer"], v["landscape"], x0, v["steps"],
                          v["alpha"], v["beta"], v["beta2"])

    def refresh(self):
        """Recompute the run and redraw the figure."""
        from .plotting import plot_contours
        v = self.values()
        self.result, self.message = self.run()
        land = LANDSCAPES[v["landscape"]]()
        if self._drawn_landscape != v["landscape"]:
            self.ax_path.clear()
            plot_contours(land, ax=self.ax_path, levels=25, n=120)
            (self.path_line,) = self.ax_path.plot([], [], ".-", ms=3,
                                                  lw=1.2, color="C3")
            (self.start_dot,) = self.ax_path.plot([], [], "ko", ms=5)
            self._drawn_landscape = v["landscape"]
        p, loss = self.result.params, self.result.loss
        self.path_line.set_data(p[:, 0], p[:, 1])
        self.start_dot.set_data(p[:1, 0], p[:1, 1])
        self.ax_path.set_title(f"{land.name}: {v['optimizer']}")
        ax = self.ax_loss
        ax.clear()
        shift = loss - min(0.0, float(np.min(loss)))
        if np.all(shift > 0):
            ax.semilogy(np.arange(len(loss)), shift, color="C3")
            ax.set_ylabel("f(x, y)" + ("" if np.min(loss) >= 0 else
                                       " - min f"))
        else:
            ax.plot(np.arange(len(loss)), loss, color="C3")
            ax.set_ylabel("f(x, y)")
        ax.set(xlabel="step t", title="loss along the path")
        self.fig.tight_layout()
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=72)
        self.image.value = buf.getvalue()
        text = (f"{len(p) - 1} steps, final loss {loss[-1]:.4g} at "
                f"({p[-1, 0]:.3f}, {p[-1, 1]:.3f})")
        if self.message:
            text += f" — <b>{html.escape(self.message)}</b>"
        self.status.value = text

    def _ipython_display_(self):        # pragma: no cover (needs a kernel)
        from IPython.display import display
        display(self.widget)


# ---------------------------------------------- animation (static pages)
def _filled_contours(land: Landscape, ax, n: int = 100, levels: int = 12):
    """Flat filled contours: they compress far better in PNG frames than
    anti-aliased contour lines (about 5x smaller pages)."""
    x0, x1, y0, y1 = land.window
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    Z = land.value(X, Y)
    if land.log_contours:
        Z = np.log(Z - Z.min() + 1e-3 * (Z.max() - Z.min() + 1e-12))
    ax.contourf(X, Y, Z, levels=levels, cmap="Blues_r", antialiased=False)
    for mx, my in land.minima:
        ax.plot(mx, my, "k*", ms=8)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y",
           title=land.name)


def animate(landscape, trajectories: dict, frames: int = 25,
            figsize=(4.2, 3.4), dpi: int = 64, interval: int = 120,
            title: str | None = None, labels=("x", "y")):
    """A FuncAnimation of paths drawn step by step on ``landscape``.

    ``trajectories`` is ``{label: Trajectory}`` (or arrays of shape
    (T, 2)); frame ``i`` shows every path up to step ``i * T / frames``;
    ``labels`` names the two axes. Returns the animation (render it with
    ``tools.bookhtml.jshtml`` in the book, or ``to_jshtml``).
    """
    from matplotlib.animation import FuncAnimation
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not trajectories:
        raise ValueError("trajectories is empty")
    if isinstance(frames, bool) or not isinstance(frames, int) \
            or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
    land = _landscape(landscape)
    paths = {k: np.asarray(getattr(v, "params", v), dtype=float)
             for k, v in trajectories.items()}
    for k, p in paths.items():
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"trajectories[{k!r}] must have shape (T, 2),"
                             f" got {p.shape}")
    T = max(len(p) for p in paths.values())
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _filled_contours(land, ax)
    lines = {k: ax.plot([], [], ".-", ms=2.5, lw=1.2, label=k)[0]
             for k in paths}
    ax.legend(fontsize="x-small", loc="upper right")
    if title:
        ax.set_title(title)
    ax.set(xlabel=labels[0], ylabel=labels[1])
    fig.tight_layout()
    cut = np.unique(np.linspace(1, T, frames).round().astype(int))

    def draw(i):
        for k, line in lines.items():
            p = paths[k][:cut[i]]
            line.set_data(p[:, 0], p[:, 1])
        return list(lines.values())
    return FuncAnimation(fig, draw, frames=len(cut), interval=interval,
                         blit=False)
