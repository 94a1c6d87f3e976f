"""Post-training int8 quantization of an MLP (symmetric, no zero point).

A float array ``x`` is stored as int8 codes ``q`` and one float scale
``s`` per tensor (or per output row of a weight matrix)::

    s = max|x| / 127,   q = clip(round(x / s), -127, 127),   x ~ s q

so the rounding error is at most ``s / 2`` per entry.  ``round`` is
round-half-to-even, as in ``torch.quantize_per_tensor``.

The quantized forward pass multiplies int8 activations by int8 weights
with int32 accumulation and rescales once per layer::

    Z = (s_A s_W) * (Q_A Q_W^T) + b

which is how integer-only inference engines run a linear layer
(Jacob et al., 2018), here with symmetric ranges for simplicity.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import as_float_array
from .maps import get_activation
from .mlp import num_layers

__all__ = ["QTensor", "quantize", "dequantize", "quantize_params",
           "quantized_mlp_forward", "size_in_bytes"]

QMAX = 127


class QTensor(NamedTuple):
    """int8 codes ``q`` and float64 ``scale`` (a scalar, or one per row
    of ``q`` with shape ``(M, 1)`` when quantized per channel)."""
    q: np.ndarray
    scale: np.ndarray


def quantize(x, per_channel: bool = False) -> QTensor:
    """Symmetric int8 quantization of ``x``.

    ``per_channel=True`` (for a weight matrix ``W`` of shape ``(M, D)``)
    gives each output row its own scale ``max_d |W_md| / 127``.  An
    all-zero tensor (or row) gets scale 1 so that it stays exactly 0.
    """
    x = as_float_array("x", x)
    if per_channel:
        if x.ndim != 2:
            raise ValueError(f"per_channel quantization needs a matrix "
                             f"(M, D), got shape {x.shape}")
        amax = np.max(np.abs(x), axis=1, keepdims=True)
    else:
        amax = np.asarray(np.max(np.abs(x)) if x.size else 0.0)
    scale = np.where(amax > 0, amax / QMAX, 1.0).astype(np.float64)
    q = np.clip(np.round(x / scale), -QMAX, QMAX).astype(np.int8)
    return QTensor(q, scale)


def dequantize(t: QTensor) -> np.ndarray:
    """``s * q`` as float64."""
    return t.scale * t.q.astype(np.float64)


def quantize_params(params: dict, per_channel: bool = True) -> dict:
    """Quantize every weight matrix ``W<l>``; biases stay float64.

    Returns a dict like ``params`` with a :class:`QTensor` for each
    ``W<l>``.
    """
    num_layers(params)
    return {k: (quantize(v, per_channel) if k.startswith("W")
                else as_float_array(k, v).copy())
            for k, v in params.items()}


def quantized_mlp_forward(qparams: dict, X, activation="relu"):
    """Integer forward pass of an MLP with quantized weights.

    Each layer quantizes its input activations per tensor (dynamic
    quantization), multiplies the int8 codes in int32 and rescales:
    ``Z = (s_A s_W^T) * (Q_A Q_W^T) + b``, then applies the activation
    (identity at the output, so the result is logits ``(N, K)``).
    """
    L = num_layers(qparams)
    act = get_activation(activation)
    A = as_float_array("X", X, ndim=2)
    for l in range(1, L + 1):
        W, b = qparams[f"W{l}"], qparams[f"b{l}"]
        if not isinstance(W, QTensor):
            raise TypeError(f"qparams['W{l}'] must be a QTensor from "
                            f"quantize_params")
        if A.shape[1] != W.q.shape[1]:
            raise ValueError(f"layer {l}: input has {A.shape[1]} "
                             f"features but W{l} expects {W.q.shape[1]}")
        qa = quantize(A)
        acc = qa.q.astype(np.int32) @ W.q.astype(np.int32).T
        Z = acc * (qa.scale * np.reshape(W.scale, (1, -1))) + b
        A = act.forward(Z)[0] if l < L else Z
    return A


def size_in_bytes(params: dict) -> int:
    """Storage of a (possibly quantized) parameter dict in bytes."""
    total = 0
    for v in params.values():
        if isinstance(v, QTensor):
            total += v.q.nbytes + np.asarray(v.scale).nbytes
        else:
            total += np.asarray(v).nbytes
    return int(total)
