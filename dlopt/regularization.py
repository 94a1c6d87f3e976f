"""Regularization: penalties, inverted dropout, an early-stopping rule.

Notation (book/notation.md and chapter 8). ``N`` is the number of
*training examples* (the whole training set, not the mini-batch), the
data loss ``L`` is a mean over examples, and the penalties are added to
it once, not once per example:

- L2: ``R(theta) = lambda / (2N) * sum_j theta_j^2``,
  ``dR/dtheta = (lambda / N) theta``.
- L1: ``R(theta) = lambda / N * sum_j |theta_j|``,
  ``dR/dtheta = (lambda / N) sign(theta)`` (0 at theta = 0).

Only weight matrices (keys ``W1``, ``W2``, ...) are penalised by
default; biases shift the map and are not shrunk.

Inverted dropout (Srivastava et al., 2014, with the 1/(1-p) scaling at
training time so that evaluation is the identity): keep each unit with
probability ``1 - p``, ``A_drop = A * M / (1 - p)``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import optim
from ._checks import (as_float_array, check_in_range, check_int,
                      check_positive)

__all__ = ["l2_penalty", "l1_penalty", "penalized", "dropout_forward",
           "dropout_backward", "early_stopping_rule", "early_stopping_step",
           "StopRecord"]


def _weights(params, keys):
    if not isinstance(params, dict) or not params:
        raise TypeError("params must be a non-empty dict name -> array")
    if keys is None:
        keys = [k for k in params if str(k).startswith("W")]
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(f"keys {missing} are not in params "
                         f"{sorted(params)}")
    return list(keys)


def _check_n(n):
    return check_int("n (number of training examples)", n)


def l2_penalty(params: dict, lam: float, n: int, keys=None):
    """L2 penalty ``lam / (2 n) * sum_j theta_j^2`` and its gradient.

    Parameters
    ----------
    params : dict name -> array (any shapes).
    lam : penalty strength lambda >= 0.
    n : number of training examples N (the penalty is added once to
        the *mean* data loss, so it is divided by N once).
    keys : which entries to penalise; default every ``W*`` key.

    Returns
    -------
    (value, grads) : a float and a dict with the keys of ``params``;
    ``grads[k] = (lam / n) * params[k]`` for penalised keys, zeros
    otherwise.
    """
    return _penalty(params, lam, n, keys, optim.add_decayed_weights,
                    lambda a: float(np.sum(a * a)) / 2)


def l1_penalty(params: dict, lam: float, n: int, keys=None):
    """L1 penalty ``lam / n * sum_j |theta_j|`` and a subgradient.

    ``grads[k] = (lam / n) * sign(params[k])`` (0 where a weight is
    exactly 0, as ``torch.sign`` and ``torch.abs``'s gradient give).
    Arguments as in :func:`l2_penalty`.
    """
    return _penalty(params, lam, n, keys, optim.add_l1,
                    lambda a: float(np.sum(np.abs(a))))


def _penalty(params, lam, n, keys, block, size):
    """``(lam / n) * sum_k size(params[k])`` over the penalised keys, and
    its gradient: the optimizer block that adds the same term to a
    gradient (``add_decayed_weights``, ``add_l1``, one definition),
    applied to zero gradients."""
    lam = check_positive("lam", lam, allow_zero=True)
    n = _check_n(n)
    keys = set(_weights(params, keys))
    arrays = {k: as_float_array(f"params[{k!r}]", v)
              for k, v in params.items()}
    zeros = {k: np.zeros_like(a) for k, a in arrays.items()}
    grads, _ = block(lam / n, mask=keys).update(zeros, optim.EmptyState(),
                                                arrays)
    value = sum(size(arrays[k]) for k in keys)
    return lam / n * value, grads


def penalized(loss_and_grads, penalty, lam: float, n: int, keys=None):
    """Wrap ``loss_and_grads(params, X, y)`` to add a penalty.

    ``penalty`` is :func:`l2_penalty` or :func:`l1_penalty`. The result
    has the same signature, so it plugs into ``dlopt.train.fit``.
    """
    if penalty not in (l2_penalty, l1_penalty):
        raise ValueError("penalty must be l2_penalty or l1_penalty")

    def wrapped(params, X, y):
        loss, grads = loss_and_grads(params, X, y)
        r, rg = penalty(params, lam, n, keys)
        return loss + r, {k: grads[k] + rg[k] for k in grads}

    return wrapped


def dropout_forward(A, p: float, rng=None, train: bool = True):
    """Inverted dropout of activations ``A`` (any shape).

    At training time each entry is kept with probability ``1 - p`` and
    the survivors are scaled by ``1 / (1 - p)``::

        mask = (U >= p) / (1 - p),   U ~ Uniform[0, 1)
        out  = A * mask

    so ``E[out] = A``. At evaluation time (``train=False``) or with
    ``p = 0`` the map is the identity and the mask is all ones.

    Parameters
    ----------
    A : array of activations.
    p : drop probability in [0, 1).
    rng : a ``numpy.random.Generator`` (or an int seed); required when
        ``train`` and ``p > 0``.
    train : training (random mask) or evaluation (identity).

    Returns
    -------
    (out, mask) : ``out`` shaped like ``A``; ``mask`` (already scaled)
    is the cache for :func:`dropout_backward`.
    """
    A = as_float_array("A", A)
    p = check_in_range("p", p, 0.0, 1.0)
    if not train or p == 0.0:
        return A.copy(), np.ones_like(A)
    if rng is None:
        raise ValueError("rng is required for dropout at training time "
                         "(pass a numpy Generator or a seed)")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    mask = (rng.random(A.shape) >= p) / (1.0 - p)
    return A * mask, mask


def dropout_backward(dout, mask):
    """Backward pass of inverted dropout: ``dA = dout * mask``.

    ``mask`` is the scaled mask returned by :func:`dropout_forward`.
    """
    dout = as_float_array("dout", dout)
    mask = as_float_array("mask", mask)
    if dout.shape != mask.shape:
        raise ValueError(f"dout has shape {dout.shape} but mask has "
                         f"shape {mask.shape}")
    return dout * mask


class StopRecord(NamedTuple):
    """Early stopping's memory: the best loss so far, its epoch, and
    the number of epochs since it (``wait``)."""
    best: float = math.inf
    best_epoch: int = 0
    wait: int = 0


def early_stopping_step(record: StopRecord, epoch: int, loss: float,
                        patience: int | None, min_delta: float = 0.0):
    """One epoch of the early-stopping rule: ``(record', stop)``.

    The epoch *improves* if ``loss < best - min_delta`` (then ``wait``
    restarts at 0), otherwise ``wait`` grows by one; ``stop`` is true
    once ``wait`` reaches ``patience`` (never for ``patience=None``).
    ``dlopt.train.fit`` and :func:`early_stopping_rule` both use it.
    """
    if loss < record.best - min_delta:
        record = StopRecord(float(loss), epoch, 0)
    else:
        record = record._replace(wait=record.wait + 1)
    return record, patience is not None and record.wait >= patience


def early_stopping_rule(val_losses, patience: int,
                        min_delta: float = 0.0):
    """When training stops, and which epoch is kept.

    Walks through the validation losses epoch by epoch (0-based) with
    :func:`early_stopping_step`: an epoch improves if its loss is below
    the best so far by more than ``min_delta``; otherwise a counter
    ``wait`` grows by one. Training stops after the epoch at which
    ``wait`` reaches ``patience`` (so ``patience`` epochs without
    improvement are tolerated and the ``patience``-th one ends the run).
    This is the rule of ``dlopt.train.fit`` and of Keras'
    ``EarlyStopping``.

    Returns
    -------
    (stop_epoch, best_epoch) : ``stop_epoch`` is the index of the last
    epoch run, or ``None`` if the rule never fires on these losses;
    ``best_epoch`` is the index of the best loss up to the stop.
    """
    patience = check_int("patience", patience)
    min_delta = check_positive("min_delta", min_delta, allow_zero=True)
    losses = as_float_array("val_losses", val_losses, ndim=1)
    record = StopRecord()
    for epoch, loss in enumerate(losses):
        record, stop = early_stopping_step(record, epoch, float(loss),
                                           patience, min_delta)
        if stop:
            return epoch, record.best_epoch
    return None, record.best_epoch
