"""Magnitude pruning: set the smallest weights to zero.

Per tensor ``W`` with ``n`` entries and a sparsity ``s`` in [0, 1], the
``k = round(s n)`` entries of smallest ``|W|`` are removed; the mask is
``M = 1[|W| > tau]`` with ``tau`` the k-th smallest magnitude (among
equal magnitudes the first in C order go). ``torch.nn.utils.prune.
l1_unstructured(module, "weight", amount=s)`` prunes the same entries
when the magnitudes are distinct (tested). The pruned weight is
``M * W``.
"""
from __future__ import annotations

import numpy as np

from ._checks import as_float_array

__all__ = ["magnitude_mask", "magnitude_prune", "sparsity"]


def magnitude_mask(W, s: float) -> np.ndarray:
    """Boolean mask (shape of ``W``), False for the ``round(s * W.size)``
    entries of smallest magnitude."""
    W = as_float_array("W", W)
    if isinstance(s, bool) or not 0.0 <= float(s) <= 1.0:
        raise ValueError(f"sparsity s must be in [0, 1], got {s!r}")
    k = int(round(float(s) * W.size))
    mask = np.ones(W.size, dtype=bool)
    if k:
        # a stable sort: among equal magnitudes the first ones go
        drop = np.argsort(np.abs(W).ravel(), kind="stable")[:k]
        mask[drop] = False
    return mask.reshape(W.shape)


def magnitude_prune(params: dict, s: float, keys=None):
    """Prune each weight matrix in ``params`` to sparsity ``s``.

    ``keys``: which entries to prune (default: those starting with "W",
    so biases stay). Returns ``(pruned_params, masks)``; the input is not
    modified.
    """
    if keys is None:
        keys = [k for k in params if str(k).startswith("W")]
    unknown = sorted(set(keys) - set(params))
    if unknown:
        raise KeyError(f"params has no {unknown}")
    masks = {k: magnitude_mask(params[k], s) for k in keys}
    out = {k: (v * masks[k] if k in masks else np.array(v, copy=True))
           for k, v in params.items()}
    return out, masks


def sparsity(params: dict, keys=None) -> float:
    """Fraction of exact zeros among the entries of ``keys`` (default:
    the weight matrices "W...")."""
    if keys is None:
        keys = [k for k in params if str(k).startswith("W")]
    total = sum(np.size(params[k]) for k in keys)
    zeros = sum(int(np.sum(np.asarray(params[k]) == 0)) for k in keys)
    return zeros / total if total else 0.0
