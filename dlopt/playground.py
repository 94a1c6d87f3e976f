"""An optimizer playground: interactive in Jupyter, animated in the book.

Three things live here, all built on ``dlopt.optim`` and
``dlopt.landscapes``:

- ``Playground``: an ipywidgets app. Pick a landscape and an optimizer,
  move sliders for the learning rate ``lr``, ``beta`` (momentum ``mu``
  or Adam's ``beta1``) and ``beta2`` (Adam's ``beta2``, RMSprop's decay
  ``alpha``), and see the path and the loss curve update. An optimizer
  is what it is everywhere in the course, a ``GradientTransformation``:
  the library's, or *your own*, given as a factory of the slider values
  (``optimizers={"mine": lambda lr, beta, beta2: my_momentum(lr,
  beta)}``).
- ``trajectory``: the run the playground draws (``landscapes.run``,
  cut at the last finite iterate), usable without widgets.
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
from ._checks import check_int
from .landscapes import LANDSCAPES, Landscape, Trajectory, run

__all__ = ["BUILTIN", "START", "make_optimizer", "from_rule", "trajectory",
           "Playground", "animate"]

# Optimizer name -> factory of the slider values (lr, beta, beta2).
BUILTIN: dict[str, Callable] = {
    "SGD": lambda lr, b, b2: optim.sgd(lr),
    "momentum": lambda lr, b, b2: optim.sgd(lr, momentum=b),
    "Nesterov": lambda lr, b, b2: optim.sgd(lr, momentum=b, nesterov=True),
    "AdaGrad": lambda lr, b, b2: optim.adagrad(lr),
    "RMSprop": lambda lr, b, b2: optim.rmsprop(lr, alpha=b2),
    "Adam": lambda lr, b, b2: optim.adam(lr, betas=(b, b2)),
    "NAdam": lambda lr, b, b2: optim.nadam(lr, betas=(b, b2)),
    "AdamW": lambda lr, b, b2: optim.adamw(lr, betas=(b, b2)),
}

# A start point per landscape that shows something interesting.
START = {"quadratic": (-2.5, 1.5), "rosenbrock": (-1.5, 2.5),
         "beale": (1.0, 1.4), "himmelblau": (-0.5, -0.5),
         "saddle": (-1.8, 0.02), "monkey_saddle": (0.9, 0.3)}


def make_optimizer(name: str, lr: float, beta: float = 0.9,
                   beta2: float = 0.999) -> optim.GradientTransformation:
    """The course optimizer ``name`` (a key of ``BUILTIN``) with the
    slider values; ``beta`` is ``mu`` or ``beta1``, ``beta2`` is Adam's
    ``beta2`` or RMSprop's decay."""
    if name not in BUILTIN:
        raise ValueError(f"optimizer must be one of {sorted(BUILTIN)}, "
                         f"got {name!r}")
    return BUILTIN[name](lr, beta, beta2)


def from_rule(rule: Callable, init_state: Callable | None = None):
    """Adapt an old-style update function to the one interface.

    ``rule(theta, g, state, lr, beta, beta2) -> (theta, state)`` on
    arrays of shape (2,), ``state`` from ``init_state(theta)`` (default
    ``{}``), becomes a factory ``(lr, beta, beta2) ->
    GradientTransformation`` whose update is ``rule``'s new theta minus
    the old one.  (Kept for the assignments written before the
    playground took ``GradientTransformation``s.)
    """
    if not callable(rule):
        raise TypeError("rule must be callable (theta, g, state, lr, "
                        "beta, beta2) -> (theta, state)")

    def factory(lr, beta, beta2):
        def init(params):
            return {k: init_state(np.array(v, copy=True)) if init_state
                    else {} for k, v in params.items()}

        def update(grads, state, params=None):
            if params is None:
                raise ValueError("a rule needs params: call "
                                 "update(grads, state, params)")
            updates, new = {}, {}
            for k, g in grads.items():
                out = rule(np.array(params[k], copy=True), g, state[k], lr,
                           beta, beta2)
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise TypeError("an update rule must return "
                                    "(theta, state)")
                updates[k] = np.asarray(out[0], dtype=float) - params[k]
                new[k] = out[1]
            return updates, new
        return optim.GradientTransformation(init, update, chunkable=False)
    return factory


def _landscape(landscape) -> Landscape:
    if isinstance(landscape, Landscape):
        return landscape
    if landscape not in LANDSCAPES:
        raise ValueError(f"landscape must be a Landscape or one of "
                         f"{sorted(LANDSCAPES)}, got {landscape!r}")
    return LANDSCAPES[landscape]()


def _optimizer(optimizer, lr, beta, beta2, extra=None):
    """A name (``BUILTIN`` or ``extra``), a ``GradientTransformation`` or
    a factory ``(lr, beta, beta2) -> GradientTransformation``."""
    if isinstance(optimizer, str):
        if extra and optimizer in extra:
            optimizer = extra[optimizer]
        else:
            return make_optimizer(optimizer, lr, beta, beta2)
    if not isinstance(optimizer, optim.GradientTransformation) \
            and callable(optimizer):
        optimizer = optimizer(lr, beta, beta2)
    if not isinstance(optimizer, optim.GradientTransformation):
        raise TypeError(f"optimizer must be a name in {sorted(BUILTIN)}, "
                        f"a GradientTransformation or a factory (lr, "
                        f"beta, beta2) -> GradientTransformation, got "
                        f"{type(optimizer).__name__}")
    return optimizer


def trajectory(optimizer, landscape, x0=None, steps: int = 100,
               lr: float = 0.01, beta: float = 0.9, beta2: float = 0.999):
    """Run an optimizer (a name in ``BUILTIN``, a
    ``GradientTransformation`` or a factory of ``(lr, beta, beta2)``) on
    a landscape (a name in ``LANDSCAPES`` or a ``Landscape``) from
    ``x0`` (default ``START``).

    Returns ``(Trajectory, message)``; a diverging run is cut at the
    last finite iterate and the message says so.
    """
    land = _landscape(landscape)
    if x0 is None:
        key = landscape if isinstance(landscape, str) else None
        x0 = START.get(key, (0.5, 0.5))
    opt = _optimizer(optimizer, lr, beta, beta2)
    tr = run(opt, land, x0, steps, stop_on_divergence=True)
    return tr, tr.message


# ------------------------------------------------------------ the widget
class Playground:
    """An ipywidgets optimizer playground (see the module docstring).

    ``optimizers``: ``{name: optimizer}`` added to the optimizer menu,
    each a ``GradientTransformation`` or a factory ``(lr, beta, beta2)
    -> GradientTransformation`` (the sliders' values).  ``rules`` and
    ``init_state`` take old-style update functions instead (see
    ``from_rule``).  The app is ``playground.widget``; ``controls``
    holds its widgets (``landscape``, ``optimizer``, ``lr``, ``beta``,
    ``beta2``, ``steps``), ``result`` the last ``Trajectory`` drawn
    and ``message`` the status text. Changing a control redraws at once; the figure is
    rendered to a PNG ``Image`` widget, so it needs no plotting backend.
    """

    def __init__(self, optimizers: dict | None = None,
                 landscape: str = "rosenbrock", optimizer: str = "Adam",
                 lr: float = 0.05, beta: float = 0.9,
                 beta2: float = 0.999, steps: int = 150, *,
                 rules: dict | None = None, init_state=None):
        import ipywidgets as w
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.optimizers = {}
        for what, given in (("optimizers", optimizers), ("rules", rules)):
            for name, opt in (given or {}).items():
                if not callable(opt) and not isinstance(
                        opt, optim.GradientTransformation):
                    raise TypeError(f"{what}[{name!r}] is neither a "
                                    f"GradientTransformation nor callable")
                if name in BUILTIN or name in self.optimizers:
                    raise ValueError(f"{what}[{name!r}]: the name is "
                                     f"taken")
                self.optimizers[name] = (from_rule(opt, init_state)
                                         if what == "rules" else opt)
        layout = {"description_width": "initial"}
        self.controls = {
            "landscape": w.Dropdown(options=list(LANDSCAPES),
                                    value=landscape,
                                    description="landscape"),
            "optimizer": w.Dropdown(options=[*BUILTIN, *self.optimizers],
                                    value=optimizer,
                                    description="optimizer"),
            "lr": w.FloatLogSlider(value=lr, base=10, min=-4, max=0.5,
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
            w.HBox([c["lr"], c["beta"], c["beta2"]]),
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
        x0 = START[v["landscape"]]
        try:
            opt = _optimizer(v["optimizer"], v["lr"], v["beta"],
                             v["beta2"], self.optimizers)
            return trajectory(opt, v["landscape"], x0, v["steps"])
        except Exception as exc:   # the reader's code: show it, go on
            if v["optimizer"] not in self.optimizers:
                raise
            land = LANDSCAPES[v["landscape"]]()
            empty = Trajectory(np.array([x0], float),
                               np.array([land.value(*x0)]))
            return empty, (f"your optimizer raised "
                           f"{type(exc).__name__}: {exc}")

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

    from .plotting import plot_contours

    if not trajectories:
        raise ValueError("trajectories is empty")
    frames = check_int("frames", frames)
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
    plot_contours(land, ax=ax, levels=12, n=100, filled=True)
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
