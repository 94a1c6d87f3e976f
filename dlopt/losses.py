"""Loss functions. Each returns ``(loss, grad)``.

``loss`` is a Python float, the **mean over the N examples** of a batch;
``grad`` is the gradient of that mean with respect to the function's first
argument (prediction, probabilities or logits) and has its shape, so it
already contains the ``1/N``.

Convention for vector outputs
-----------------------------
A batch has ``N`` examples (rows). The per-example loss **sums** over the
``K`` output coordinates; the batch loss **averages** over examples:

``L = (1/N) sum_n sum_k l(yhat_nk, y_nk)``.

``torch.nn.functional`` with ``reduction='mean'`` instead averages over
all ``N*K`` elements. So for inputs of shape ``(N,)`` (or ``(N, 1)``) the
two agree (up to MSE's 1/2), and for ``(N, K)``:

- ``mse``   = ``K/2 * F.mse_loss``
- ``mae``   = ``K * F.l1_loss``
- ``huber`` = ``K * F.huber_loss``
- ``binary_cross_entropy*`` = ``K * F.binary_cross_entropy*``

Cross-entropy over classes (``softmax_cross_entropy``) already sums over
classes per example, exactly like ``F.cross_entropy``, so they agree.
A constant factor only rescales the gradient, which a learning rate
absorbs; we pick the per-example-sum convention because it is what the
book derives (``L = 1/(2N) sum_n ||yhat_n - y_n||^2``).
"""
from __future__ import annotations

import numpy as np

from ._checks import (as_float_array, check_positive, check_shape,
                      is_torch)
from .maps import sigmoid, softmax

__all__ = [
    "mse",
    "mae",
    "huber",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "softmax_cross_entropy",
    "cross_entropy_from_probs",
    "cross_entropy_grad_wrt_probs",
    "one_hot",
]


def _pair(pred_name, pred, target_name, target):
    """Validate a (prediction, target) pair of equal shape, ndim 1 or 2."""
    pred = as_float_array(pred_name, pred, ndim=(1, 2))
    target = as_float_array(target_name, target, ndim=(1, 2))
    if pred.shape != target.shape:
        raise ValueError(
            f"{target_name} must have the same shape as {pred_name} "
            f"{pred.shape} (no broadcasting), got {target.shape}")
    if pred.shape[0] == 0:
        raise ValueError(f"{pred_name} is an empty batch (N = 0)")
    return pred, target


def mse(Y_hat, Y):
    """Mean squared error with the book's 1/2.

    ``L = 1/(2N) sum_n ||yhat_n - y_n||^2``  (sum over the K outputs,
    mean over the N examples),  ``dL/dYhat = (Yhat - Y) / N``.

    Parameters
    ----------
    Y_hat, Y : arrays of the same shape, ``(N, K)`` or ``(N,)``.

    Relation to torch: ``mse(Y_hat, Y)[0] == K/2 * F.mse_loss(Y_hat, Y)``
    (``K = 1`` for 1-D inputs).
    """
    Y_hat, Y = _pair("Y_hat", Y_hat, "Y", Y)
    N = Y_hat.shape[0]
    R = Y_hat - Y
    return float(0.5 * np.sum(R * R) / N), R / N


def mae(Y_hat, Y):
    """Mean absolute error: ``L = (1/N) sum_n ||yhat_n - y_n||_1``.

    ``dL/dYhat = sign(Yhat - Y) / N`` (0 where they are equal, as torch).
    Shapes ``(N, K)`` or ``(N,)``; equals ``K * F.l1_loss``.
    """
    Y_hat, Y = _pair("Y_hat", Y_hat, "Y", Y)
    N = Y_hat.shape[0]
    R = Y_hat - Y
    return float(np.sum(np.abs(R)) / N), np.sign(R) / N


def huber(Y_hat, Y, delta: float = 1.0):
    """Huber loss, summed over outputs and averaged over examples.

    Per element, with ``r = yhat - y``:
    ``h(r) = r^2 / 2`` if ``|r| < delta``, else
    ``delta (|r| - delta / 2)``;  ``h'(r) = clip(r, -delta, delta)``.

    ``L = (1/N) sum_n sum_k h(r_nk)``, ``dL/dYhat = h'(R) / N``.
    Equals ``K * F.huber_loss(Y_hat, Y, delta=delta)`` (torch averages
    over all ``N*K`` elements); ``delta = 1`` gives ``smooth_l1_loss``.
    """
    delta = check_positive("delta", delta)
    Y_hat, Y = _pair("Y_hat", Y_hat, "Y", Y)
    N = Y_hat.shape[0]
    R = Y_hat - Y
    absR = np.abs(R)
    quad = absR < delta
    h = np.where(quad, 0.5 * R * R, delta * (absR - 0.5 * delta))
    return float(np.sum(h) / N), np.clip(R, -delta, delta) / N


def _check_binary_targets(name, y):
    if np.any((y < 0) | (y > 1)):
        bad = np.argwhere((y < 0) | (y > 1))[0]
        raise ValueError(
            f"{name} must lie in [0, 1] (binary targets), got "
            f"{y[tuple(bad)]!r} at index {tuple(int(i) for i in bad)}")


def binary_cross_entropy(p, y):
    """Binary cross-entropy from **probabilities** ``p`` in ``(0, 1)``.

    ``L = -(1/N) sum [y log p + (1 - y) log(1 - p)]``
    ``dL/dp = (p - y) / (p (1 - p)) / N``.

    Shapes ``(N,)`` or ``(N, K)`` (sum over K); ``y`` in ``[0, 1]``.
    Prefer :func:`binary_cross_entropy_with_logits`: composing this with a
    sigmoid loses precision when ``p`` rounds to 0 or 1, which is why
    ``p`` outside the open interval is rejected rather than clipped.
    """
    p, y = _pair("p", p, "y", y)
    if np.any((p <= 0) | (p >= 1)):
        bad = np.argwhere((p <= 0) | (p >= 1))[0]
        raise ValueError(
            f"p must be probabilities strictly inside (0, 1); got "
            f"{p[tuple(bad)]!r} at index {tuple(int(i) for i in bad)} "
            f"(pass logits to binary_cross_entropy_with_logits instead)")
    _check_binary_targets("y", y)
    N = p.shape[0]
    loss = -np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)) / N
    return float(loss), (p - y) / (p * (1 - p)) / N


def binary_cross_entropy_with_logits(z, y):
    """Binary cross-entropy from **logits** ``z`` (``p = sigma(z)``).

    Stable form per element: ``max(z, 0) - z y + log1p(exp(-|z|))``,
    equal to ``-[y log sigma(z) + (1 - y) log(1 - sigma(z))]`` but never
    overflowing. Gradient: ``dL/dz = (sigma(z) - y) / N``.

    Shapes ``(N,)`` or ``(N, K)`` (sum over K); ``y`` in ``[0, 1]``.
    """
    z, y = _pair("z", z, "y", y)
    _check_binary_targets("y", y)
    N = z.shape[0]
    per = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(np.sum(per) / N), (sigmoid(z) - y) / N


def one_hot(y, K: int):
    """Integer labels ``(N,)`` -> one-hot matrix ``(N, K)`` of float64."""
    y = _check_labels("y", y, K)
    Y = np.zeros((y.shape[0], K))
    Y[np.arange(y.shape[0]), y] = 1.0
    return Y


def _check_labels(name, y, K):
    if is_torch(y):
        raise TypeError(f"{name} is a torch tensor; pass a NumPy array "
                        f"({name}.detach().numpy())")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D integer labels, got shape "
                         f"{y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got "
                        f"dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= K):
        bad = int(np.argmax((y < 0) | (y >= K)))
        raise ValueError(f"{name} must hold labels in [0, {K - 1}], got "
                         f"{int(y[bad])} at index {bad}")
    return y


def _targets(name, y, N, K):
    """Integer labels (N,) or one-hot / probability rows (N, K) -> (N, K).
    """
    if is_torch(y):
        raise TypeError(f"{name} is a torch tensor; pass a NumPy array "
                        f"({name}.detach().numpy())")
    y_arr = np.asarray(y)
    if y_arr.ndim == 1:
        if y_arr.shape[0] != N:
            raise ValueError(f"{name} must have shape ({N},) to match "
                             f"{N} examples, got {y_arr.shape}")
        return one_hot(_check_labels(name, y_arr, K), K)
    Y = as_float_array(name, y_arr, ndim=2)
    check_shape(name, Y, (N, K))
    if np.any(Y < 0) or not np.allclose(Y.sum(axis=1), 1.0):
        raise ValueError(f"{name} of shape (N, K) must be one-hot (or "
                         f"probability) rows: non-negative, summing to 1")
    return Y


def softmax_cross_entropy(Z, y):
    """Softmax cross-entropy from **logits** ``Z``.

    ``L = -(1/N) sum_n sum_k Y_nk log softmax(z_n)_k``, computed with the
    log-sum-exp trick: ``log softmax(z)_k = z_k - m - log sum_j
    exp(z_j - m)`` with ``m = max_j z_j``, so logits of size 1e4 are fine.

    ``dL/dZ = (softmax(Z) - Y) / N``.

    Parameters
    ----------
    Z : array (N, K) of logits.
    y : integer labels ``(N,)`` in ``[0, K)``, or one-hot ``(N, K)``
        (probability rows summing to 1 are also accepted).

    Matches ``F.cross_entropy(Z, y)`` (mean over the batch).
    """
    Z = as_float_array("Z", Z, ndim=2)
    N, K = Z.shape
    if N == 0:
        raise ValueError("Z is an empty batch (N = 0)")
    Y = _targets("y", y, N, K)
    S = Z - Z.max(axis=1, keepdims=True)
    log_p = S - np.log(np.exp(S).sum(axis=1, keepdims=True))
    loss = 0.0 - np.sum(Y * log_p) / N  # 0.0 -: a perfect fit is +0.0
    return float(loss), (softmax(Z) - Y) / N


def cross_entropy_from_probs(P, y):
    """Cross-entropy from **probabilities** ``P`` (e.g. softmax outputs).

    ``L = -(1/N) sum_n sum_k Y_nk log P_nk`` and the gradient with
    respect to the **probabilities** is

    ``dL/dP = -Y / P / N``   (elementwise division).

    This is *not* ``P - Y``: that simpler expression is the gradient with
    respect to the **logits** when ``P = softmax(Z)`` (the softmax
    Jacobian turns ``-Y/P`` into ``P - Y``). Mixing the two up is a common
    mistake; a gradient check catches it. Use
    :func:`softmax_cross_entropy` for training.

    ``P`` must be strictly positive (``(N, K)``); ``y`` as in
    :func:`softmax_cross_entropy`.
    """
    P = as_float_array("P", P, ndim=2)
    N, K = P.shape
    if N == 0:
        raise ValueError("P is an empty batch (N = 0)")
    if np.any(P <= 0) or np.any(P > 1):
        raise ValueError("P must hold probabilities in (0, 1]")
    Y = _targets("y", y, N, K)
    loss = -np.sum(Y * np.log(P)) / N
    return float(loss), -Y / P / N


def cross_entropy_grad_wrt_probs(P, y):
    """Only the gradient ``dL/dP = -Y / P / N`` of
    :func:`cross_entropy_from_probs` (the gradient w.r.t. probabilities,
    not logits)."""
    return cross_entropy_from_probs(P, y)[1]
