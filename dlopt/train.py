"""A small training loop: mini-batches, epochs, an optimizer, early
stopping and a history.

``fit`` takes any ``loss_and_grads(params, Xb, yb) -> (loss, grads)``, so
it works with every model written as a dict of arrays, and any
optimizer that is a ``GradientTransformation`` (the library's or your
own).

Evaluation mode: if ``loss_and_grads`` has a parameter named ``train``
(``def loss_and_grads(params, Xb, yb, train=True)``), ``fit`` calls it
with ``train=True`` on the training batches and ``train=False`` when it
evaluates (validation loss), so dropout and the like can switch off,
as ``model.eval()`` does in torch.

Progress bar: ``progress=None`` (auto) shows a tqdm bar only when stderr
is a terminal or the code runs in a notebook, the run has at least 20
epochs, and the environment variable ``DLOPT_PROGRESS`` is not ``0``
(``DLOPT_PROGRESS=1`` forces it on).  ``progress=True/False`` decides
explicitly.  Under pytest stderr is captured, so the bar stays quiet.
"""
from __future__ import annotations

import inspect
import math
import os
import sys
from typing import Callable, NamedTuple

import numpy as np

from ._checks import as_float_array, check_int
from .optim import GradientTransformation, step
from .regularization import StopRecord, early_stopping_step

__all__ = ["History", "fit"]


class History(NamedTuple):
    """Per-epoch records: ``loss`` (mean training loss over the epoch's
    batches), ``val_loss`` (empty without ``val``), ``metrics``
    (``{name: [value per epoch]}``, on ``val`` if given, else on the
    training data), ``best_epoch`` (0-based; with early stopping the
    returned params are from this epoch) and ``stopped_early``."""
    loss: list
    val_loss: list
    metrics: dict
    best_epoch: int
    stopped_early: bool


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except Exception:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _want_progress(progress, epochs) -> bool:
    if progress is not None:
        return bool(progress)
    env = os.environ.get("DLOPT_PROGRESS")
    if env is not None:
        return env not in ("0", "", "false", "False")
    if epochs < 20:
        return False
    return _in_notebook() or sys.stderr.isatty()


def _has_train_mode(fn) -> bool:
    try:
        return "train" in inspect.signature(fn).parameters
    except (TypeError, ValueError):     # builtins without a signature
        return False


def fit(params: dict, loss_and_grads: Callable, data, optimizer:
        GradientTransformation, epochs: int = 10, batch_size: int = 32,
        seed: int | np.random.Generator = 0, val=None,
        early_stopping: int | None = None, min_delta: float = 0.0,
        metrics: dict | None = None, progress: bool | None = None):
    """Train ``params`` by mini-batch steps of ``optimizer``.

    ``data = (X, y)`` with ``X`` of shape ``(N, ...)`` and ``y`` of shape
    ``(N, ...)``.  Each epoch shuffles the rows with a seeded generator
    and walks through batches of ``batch_size`` (the last may be
    smaller); per batch ``(L, g) = loss_and_grads(params, Xb, yb)`` and
    ``params, state = optim.step(optimizer, params, g, state)``.
    ``loss_and_grads`` may take ``train`` (see the module docstring:
    ``train=False`` when evaluating).

    ``val = (X_val, y_val)`` is evaluated after each epoch with
    ``loss_and_grads`` (its loss) and ``metrics = {name: fn(params, X,
    y) -> float}``.  ``early_stopping = patience`` stops when the
    monitored loss (validation if given, else training) has not
    improved by more than ``min_delta`` for ``patience`` epochs, and
    returns the best params seen.  Returns ``(params, History)``;
    the input ``params`` are not modified.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got "
                        f"{type(params).__name__}")
    if not isinstance(optimizer, GradientTransformation):
        raise TypeError(f"optimizer must be a GradientTransformation, got "
                        f"{type(optimizer).__name__}")
    if not callable(loss_and_grads):
        raise TypeError("loss_and_grads must be callable "
                        "(params, Xb, yb) -> (loss, grads)")
    try:
        X, y = data
    except (TypeError, ValueError):
        raise TypeError("data must be a pair (X, y)") from None
    X = as_float_array("X", X)
    y = np.asarray(y)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must have the same, non-zero number of "
                         f"rows, got {len(X)} and {len(y)}")
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    if early_stopping is not None:
        early_stopping = check_int("early_stopping", early_stopping)
    if _has_train_mode(loss_and_grads):
        def batch_loss(p, Xb, yb):
            return loss_and_grads(p, Xb, yb, train=True)

        def eval_loss(p, Xb, yb):
            return loss_and_grads(p, Xb, yb, train=False)
    else:
        batch_loss = eval_loss = loss_and_grads
    if val is not None:
        Xv, yv = val
        Xv = as_float_array("X_val", Xv)
    metrics = dict(metrics or {})
    rng = (seed if isinstance(seed, np.random.Generator)
           else np.random.default_rng(seed))

    params = {k: np.array(v, copy=True) for k, v in params.items()}
    state = optimizer.init(params)
    hist_loss, hist_val = [], []
    hist_metrics = {name: [] for name in metrics}
    record, best_params, stopped = StopRecord(), params, False

    bar = None
    if _want_progress(progress, epochs):
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs, desc="fit", leave=False)
    n = len(X)
    try:
        for epoch in range(epochs):
            order = rng.permutation(n)
            total = 0.0
            for lo in range(0, n, batch_size):
                idx = order[lo:lo + batch_size]
                loss, grads = batch_loss(params, X[idx], y[idx])
                loss = float(loss)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"loss is {loss} at epoch {epoch}, batch "
                        f"{lo // batch_size}; lower the learning rate")
                params, state = step(optimizer, params, grads, state)
                total += loss * len(idx)
            hist_loss.append(total / n)
            if val is not None:
                hist_val.append(float(eval_loss(params, Xv, yv)[0]))
            ex, ey = (Xv, yv) if val is not None else (X, y)
            for name, fn in metrics.items():
                hist_metrics[name].append(float(fn(params, ex, ey)))
            monitored = hist_val[-1] if val is not None else hist_loss[-1]
            record, stopped = early_stopping_step(
                record, epoch, monitored, early_stopping, min_delta)
            if record.wait == 0:            # this epoch improved
                best_params = params
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{hist_loss[-1]:.4g}")
            if stopped:
                break
    finally:
        if bar is not None:
            bar.close()
    best_epoch = record.best_epoch
    if early_stopping is None:
        best_params, best_epoch = params, len(hist_loss) - 1
    return best_params, History(hist_loss, hist_val, hist_metrics,
                                best_epoch, stopped)
