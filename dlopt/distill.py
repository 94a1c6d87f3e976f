"""Knowledge distillation (Hinton et al., 2015): a small *student* learns
from a large *teacher*'s softened probabilities as well as the labels.

With temperature ``T``, weight ``a`` in [0, 1], student logits ``Z``,
teacher logits ``Z_t`` (both ``(N, K)``) and labels ``y``::

    P_T = softmax(Z_t / T),   Q_T = softmax(Z / T)
    L   = (1 - a) CE(softmax(Z), y)
          + a T^2 (1/N) sum_n KL(P_T[n] || Q_T[n])

    dL/dZ = (1 - a) (softmax(Z) - Y) / N + a T (Q_T - P_T) / N

The ``T^2`` keeps the soft term's gradient on the same scale as the hard
term's when ``T`` changes (Hinton et al., section 2).
"""
from __future__ import annotations

import numpy as np

from ._checks import as_float_array, check_in_range, check_positive
from .losses import softmax_cross_entropy
from .maps import softmax

__all__ = ["distillation_loss"]


def _log_softmax(Z):
    S = Z - Z.max(axis=1, keepdims=True)
    return S - np.log(np.exp(S).sum(axis=1, keepdims=True))


def distillation_loss(Z, Z_teacher, y, T: float = 4.0, a: float = 0.5):
    """Distillation loss and its gradient w.r.t. the student logits.

    Parameters
    ----------
    Z : student logits (N, K).
    Z_teacher : teacher logits (N, K) (constants: no gradient flows to
        the teacher).
    y : integer labels (N,) or one-hot (N, K).
    T : temperature > 0.
    a : weight of the soft (teacher) term in [0, 1].

    Returns
    -------
    (loss, dZ) : a float (batch mean) and ``dL/dZ`` of shape (N, K).
    Matches ``(1-a) F.cross_entropy(Z, y) + a T^2 F.kl_div(
    F.log_softmax(Z/T), F.log_softmax(Z_t/T), log_target=True,
    reduction="batchmean")``.
    """
    Z = as_float_array("Z", Z, ndim=2)
    Zt = as_float_array("Z_teacher", Z_teacher, ndim=2)
    if Zt.shape != Z.shape:
        raise ValueError(f"Z_teacher has shape {Zt.shape} but Z has "
                         f"shape {Z.shape}")
    T = check_positive("T", T)
    a = check_in_range("a", a, 0.0, 1.0, include_high=True)
    N = Z.shape[0]
    hard, dhard = softmax_cross_entropy(Z, y)
    log_p = _log_softmax(Zt / T)
    log_q = _log_softmax(Z / T)
    kl = float(np.sum(np.exp(log_p) * (log_p - log_q))) / N
    dsoft = T * (softmax(Z / T) - softmax(Zt / T)) / N
    loss = (1 - a) * hard + a * T * T * kl
    return float(loss), (1 - a) * dhard + a * dsoft
