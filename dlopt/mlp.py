"""A small multilayer perceptron composed of the maps in ``dlopt.maps``.

Layer ``l = 1..L`` computes ``Z^(l) = A^(l-1) W^(l)T + 1 b^(l)T`` and
``A^(l) = phi(Z^(l))`` with ``A^(0) = X``. Hidden layers share one
activation ``phi``; the output layer has its own (``None`` = identity, so
the network returns logits).

Parameters are a flat dict ``{"W1", "b1", ..., "WL", "bL"}`` with
``W<l>`` of shape ``(sizes[l], sizes[l-1])`` (*(out, in)* as in
``torch.nn.Linear``) and ``b<l>`` of shape ``(sizes[l],)``.

Backpropagation runs the maps in reverse: with
``delta^(l) = dL/dZ^(l)``,

- ``dL/dW^(l) = delta^(l)T A^(l-1)``, ``dL/db^(l) = 1^T delta^(l)``,
- ``delta^(l-1) = (delta^(l) W^(l)) * phi'(Z^(l-1))``.
"""
from __future__ import annotations

import re

import numpy as np

from . import losses as _losses
from ._checks import as_float_array, check_int, check_positive, is_torch
from .maps import affine_backward, affine_forward, get_activation

__all__ = [
    "init_mlp",
    "mlp_forward",
    "mlp_backward",
    "mlp_loss_and_grads",
    "predict",
    "accuracy",
    "num_layers",
    "LOSSES",
]


def _rng(seed, rng):
    if rng is not None and seed is not None:
        raise ValueError("pass either seed or rng, not both")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got "
                            f"{type(rng).__name__}")
        return rng
    return np.random.default_rng(seed)


def init_mlp(sizes, activation: str = "relu", init: str | None = None,
             scale: float = 0.01, seed=None, rng=None) -> dict:
    """Initial parameters for an MLP with layer widths ``sizes``.

    Parameters
    ----------
    sizes : sequence of ints ``[D, M_1, ..., M_{L-1}, K]`` (at least 2).
    activation : hidden activation; only used to choose ``init`` when it
        is ``None`` ("he" for ReLU, "xavier" otherwise).
    init : how to draw the weights ``W<l>`` of shape ``(out, in)``:

        - ``"he"``: ``N(0, 2 / fan_in)``, He et al. (2015), "Delving Deep
          into Rectifiers", for ReLU (keeps the activations' second moment
          constant across layers).
        - ``"xavier"``: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in +
          fan_out))``, Glorot & Bengio (2010), "Understanding the
          difficulty of training deep feedforward neural networks",
          their normalized initialization, for tanh/sigmoid.
        - ``"normal"``: ``N(0, scale^2)`` (CS231n's ``weight_scale``).

        Biases start at zero.
    scale : standard deviation for ``init="normal"``.
    seed, rng : a seed for ``numpy.random.default_rng`` or a Generator.

    Returns
    -------
    dict ``{"W1": (M_1, D), "b1": (M_1,), ...}`` of float64 arrays.
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least input and output "
                         f"widths, got {sizes}")
    for s in sizes:
        try:
            check_int("sizes[i]", s)
        except ValueError:
            raise ValueError(f"sizes must be positive integers, got "
                             f"{sizes}") from None
    act = get_activation(activation).name
    if init is None:
        init = "he" if act == "relu" else "xavier"
    if init not in ("he", "xavier", "normal"):
        raise ValueError(f"init must be 'he', 'xavier' or 'normal', got "
                         f"{init!r}")
    scale = check_positive("scale", scale)
    gen = _rng(seed, rng)
    params = {}
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        shape = (int(fan_out), int(fan_in))
        if init == "he":
            W = gen.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        elif init == "xavier":
            a = np.sqrt(6.0 / (fan_in + fan_out))
            W = gen.uniform(-a, a, size=shape)
        else:
            W = gen.normal(0.0, scale, size=shape)
        params[f"W{l}"] = W
        params[f"b{l}"] = np.zeros(int(fan_out))
    return params


_KEY = re.compile(r"^([Wb])([1-9][0-9]*)$")


def num_layers(params: dict) -> int:
    """Number of affine layers ``L``; checks keys are W1, b1, ..., WL, bL.
    """
    if not isinstance(params, dict) or not params:
        raise TypeError("params must be a non-empty dict {'W1', 'b1', ...}")
    layers = set()
    for k in params:
        m = _KEY.match(str(k))
        if not m:
            raise ValueError(f"params has an unexpected key {k!r}; "
                             f"expected W1, b1, W2, b2, ...")
        layers.add(int(m.group(2)))
    L = max(layers)
    want = {f"{c}{l}" for l in range(1, L + 1) for c in "Wb"}
    if set(params) != want:
        raise ValueError(f"params must have keys "
                         f"{sorted(want, key=lambda s: (s[1:], s[0]))}, "
                         f"missing {sorted(want - set(params))}")
    return L


def mlp_forward(params: dict, X, activation="relu", output=None):
    """Forward pass of the MLP.

    Parameters
    ----------
    params : dict from :func:`init_mlp`.
    X : array (N, D).
    activation : hidden-layer activation name ("relu", "tanh", ...).
    output : output activation name, or ``None`` for the identity
        (logits). E.g. ``"sigmoid"`` for the two-layer tanh/sigmoid net.

    Returns
    -------
    out : array (N, K), ``A^(L)``.
    caches : list of per-layer ``(affine_cache, act_cache, activation)``
        for :func:`mlp_backward`.
    """
    L = num_layers(params)
    hidden = get_activation(activation)
    final = get_activation(output)
    A = as_float_array("X", X, ndim=2)
    caches = []
    for l in range(1, L + 1):
        try:
            Z, aff = affine_forward(A, params[f"W{l}"], params[f"b{l}"])
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"layer {l} (params 'W{l}', 'b{l}'): "
                            f"{exc}") from None
        act = final if l == L else hidden
        A, ac = act.forward(Z)
        caches.append((aff, ac, act))
    return A, caches


def mlp_backward(dout, caches) -> dict:
    """Backward pass: ``dout = dL/dA^(L)`` of shape (N, K) -> grads dict.

    Returns ``{"W1": dL/dW1, "b1": dL/db1, ...}``, each shaped like its
    parameter.
    """
    grads = {}
    dA = dout
    for l in range(len(caches), 0, -1):
        aff, ac, act = caches[l - 1]
        dZ = act.backward(dA, ac)
        dA, grads[f"W{l}"], grads[f"b{l}"] = affine_backward(dZ, aff)
    return dict(sorted(grads.items(), key=lambda kv: (int(kv[0][1:]),
                                                       kv[0][0])))


LOSSES = {
    "softmax_ce": _losses.softmax_cross_entropy,
    "mse": _losses.mse,
    "mae": _losses.mae,
    "huber": _losses.huber,
    "bce_logits": _losses.binary_cross_entropy_with_logits,
    "bce": _losses.binary_cross_entropy,
    # cross-entropy of softmax *probabilities*: use with output="softmax";
    # same value and gradients as "softmax_ce" on logits, less stable.
    "ce_probs": _losses.cross_entropy_from_probs,
}

# Losses that take logits: stacking an output map on them is a bug
# (e.g. sigmoid outputs fed to a softmax cross-entropy).
_FROM_LOGITS = {"softmax_ce", "bce_logits"}


def mlp_loss_and_grads(params: dict, X, y, loss: str = "softmax_ce",
                       activation="relu", output=None):
    """Loss of the MLP on a batch and its gradients w.r.t. every param.

    Parameters
    ----------
    params, X, activation, output : as in :func:`mlp_forward`.
    y : targets as the loss expects: integer labels ``(N,)`` (or
        one-hot) for ``"softmax_ce"`` and ``"ce_probs"``; an array shaped
        like the output for the others.
    loss : one of :data:`LOSSES`. ``"softmax_ce"`` and ``"bce_logits"``
        take logits, so ``output`` must be ``None`` for them.

    Returns
    -------
    (loss, grads) : a float (batch mean) and a dict like ``params``.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got "
                         f"{loss!r}")
    if loss in _FROM_LOGITS and get_activation(output).name != "identity":
        raise ValueError(
            f"loss {loss!r} takes logits, so output must be None, got "
            f"output={output!r} (the output map is already inside the "
            f"loss)")
    out, caches = mlp_forward(params, X, activation, output)
    value, dout = LOSSES[loss](out, y)
    grads = mlp_backward(dout, caches)
    # Each gradient has its parameter's dtype (as in torch): the losses
    # compute in float64, a float32 network gets float32 gradients.
    return value, {k: g.astype(params[k].dtype, copy=False)
                   if k in params and g.dtype != params[k].dtype else g
                   for k, g in grads.items()}


def predict(params: dict, X, activation="relu", output=None):
    """Integer class predictions ``(N,)``.

    With ``K >= 2`` outputs: ``argmax_k`` of the network output (the
    same for logits and probabilities). With one output: class 1 where
    the output exceeds 0.5 for a sigmoid output, 0 otherwise (logits).
    """
    out, _ = mlp_forward(params, X, activation, output)
    if out.shape[1] >= 2:
        return np.argmax(out, axis=1)
    thr = 0.5 if get_activation(output).name == "sigmoid" else 0.0
    return (out[:, 0] > thr).astype(np.int64)


def _labels(name, y):
    if is_torch(y):
        raise TypeError(f"{name} is a torch tensor; pass a NumPy array")
    y = np.asarray(y)
    if y.ndim == 2:
        as_float_array(name, y)
        return np.argmax(y, axis=1)
    if y.ndim != 1:
        raise ValueError(f"{name} must be labels (N,) or scores (N, K), "
                         f"got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer class labels, got dtype {y.dtype}; "
            f"accuracy compares labels, never floats, for equality")
    return y


def accuracy(pred, y) -> float:
    """Fraction of examples whose predicted class equals the label.

    ``pred`` and ``y`` may each be integer labels ``(N,)`` or scores /
    one-hot rows ``(N, K)`` (reduced with ``argmax``). Only integer labels
    are compared, never floats.
    """
    p = _labels("pred", pred)
    t = _labels("y", y)
    if p.shape != t.shape:
        raise ValueError(f"pred gives {p.shape[0]} labels but y gives "
                         f"{t.shape[0]}")
    if p.size == 0:
        raise ValueError("pred is empty")
    return float(np.mean(p == t))
