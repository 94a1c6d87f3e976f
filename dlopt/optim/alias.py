"""The named optimizers (optax's ``alias``), as ``torch.optim`` names them.

Each is a composition of building blocks that follows ``torch.optim``
exactly (formulas and defaults, tested in float64 for params and
state), with one helper, ``_compose``: where the weight-decay line sits
in it is the whole difference between coupled L2 and decoupled weight
decay.  Every optimizer starts with ``validate`` (a bad input fails
before anything is computed) and offers torch's ``maximize``.
"""
from __future__ import annotations

from .._checks import check_positive
from .base import (GradientTransformation, Schedule, chain, check_lr,
                   lr_value, validate)
from .transform import (add_decayed_weights, scale,
                        scale_by_adam, scale_by_learning_rate,
                        scale_by_nadam, scale_by_rms, scale_by_rss, trace)

__all__ = ["sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam"]

Rate = float | Schedule


def _compose(core, learning_rate, weight_decay=0.0, *, decoupled=False,
             mask=None, maximize=False, check_finite=True):
    """``validate -> [-g] -> [L2] -> core -> [decay] -> -alpha_t``."""
    lr = check_lr(learning_rate)
    wd = check_positive("weight_decay", weight_decay, allow_zero=True)
    decay = [add_decayed_weights(wd, mask)] if wd else []
    return chain(
        validate(check_finite),
        *([scale(-1.0)] if maximize else []),    # ascend: use -g
        *([] if decoupled else decay),  # coupled L2: g + lambda theta
        *core,                          #   goes through the moments
        *(decay if decoupled else []),  # decoupled: beside the step
        scale_by_learning_rate(lr))


def sgd(learning_rate: Rate = 1e-3, momentum: float = 0.0,
        dampening: float = 0.0, weight_decay: float = 0.0,
        nesterov: bool = False, *, maximize: bool = False, mask=None,
        check_finite: bool = True) -> GradientTransformation:
    """``torch.optim.SGD``: ``g <- g + lambda theta``; with momentum
    ``b_t = mu b + (1 - dampening) g`` (``b_1 = g``), direction ``b_t``
    or ``g + mu b_t`` (Nesterov); ``theta <- theta - alpha_t u``.
    ``mask`` selects the keys that are decayed (``add_decayed_weights``).
    """
    mu = check_positive("momentum", momentum, allow_zero=True)
    if nesterov and not mu:
        raise ValueError("nesterov momentum requires momentum > 0")
    core = [trace(mu, dampening, nesterov)] if mu else []
    return _compose(core, learning_rate, weight_decay, mask=mask,
                    maximize=maximize, check_finite=check_finite)


def adagrad(learning_rate: Rate = 1e-2, lr_decay: float = 0.0,
            weight_decay: float = 0.0, initial_accumulator_value: float = 0,
            eps: float = 1e-10, *, maximize: bool = False, mask=None,
            check_finite: bool = True) -> GradientTransformation:
    """``torch.optim.Adagrad``: ``alpha_t = alpha / (1 + (t-1) lr_decay)``
    and ``theta <- theta - alpha_t g / (sqrt(s_t) + eps)``."""
    lr = check_lr(learning_rate)
    decay = check_positive("lr_decay", lr_decay, allow_zero=True)
    rate = lr
    if decay:
        def rate(k):
            return lr_value(lr, k + 1) / (1.0 + k * decay)
    return _compose([scale_by_rss(initial_accumulator_value, eps)], rate,
                    weight_decay, mask=mask, maximize=maximize,
                    check_finite=check_finite)


def rmsprop(learning_rate: Rate = 1e-2, alpha: float = 0.99,
            eps: float = 1e-8, weight_decay: float = 0.0,
            momentum: float = 0.0, centered: bool = False, *,
            maximize: bool = False, mask=None, check_finite: bool = True
            ) -> GradientTransformation:
    """``torch.optim.RMSprop`` (``alpha`` is the decay of the average,
    as in torch); momentum ``b_t = mu b + g / (sqrt(v) + eps)`` (from
    zero) is applied before the learning rate."""
    mu = check_positive("momentum", momentum, allow_zero=True)
    core = [scale_by_rms(alpha, eps, centered), *([trace(mu)] if mu
                                                  else [])]
    return _compose(core, learning_rate, weight_decay, mask=mask,
                    maximize=maximize, check_finite=check_finite)


def adam(learning_rate: Rate = 1e-3,
         betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, amsgrad: bool = False, *,
         maximize: bool = False, mask=None, check_finite: bool = True
         ) -> GradientTransformation:
    """``torch.optim.Adam`` (``weight_decay`` is coupled L2, as in torch;
    ``adamw`` is the decoupled form)."""
    b1, b2 = betas
    return _compose([scale_by_adam(b1, b2, eps, amsgrad)], learning_rate,
                    weight_decay, mask=mask, maximize=maximize,
                    check_finite=check_finite)


def adamw(learning_rate: Rate = 1e-3,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2, amsgrad: bool = False, *,
          maximize: bool = False, mask=None, check_finite: bool = True
          ) -> GradientTransformation:
    """``torch.optim.AdamW``: ``theta <- theta - alpha_t lambda theta -
    alpha_t adam_direction`` (the decay scaled by the scheduled rate);
    ``mask`` selects the decayed keys, e.g. ``lambda k:
    k.startswith("W")``."""
    b1, b2 = betas
    return _compose([scale_by_adam(b1, b2, eps, amsgrad)], learning_rate,
                    weight_decay, decoupled=True, mask=mask,
                    maximize=maximize, check_finite=check_finite)


def nadam(learning_rate: Rate = 2e-3,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 0.0, momentum_decay: float = 4e-3,
          decoupled_weight_decay: bool = False, *, maximize: bool = False,
          mask=None, check_finite: bool = True) -> GradientTransformation:
    """``torch.optim.NAdam`` (coupled L2 unless
    ``decoupled_weight_decay``, as in torch)."""
    b1, b2 = betas
    return _compose([scale_by_nadam(b1, b2, eps, momentum_decay)],
                    learning_rate, weight_decay,
                    decoupled=decoupled_weight_decay, mask=mask,
                    maximize=maximize, check_finite=check_finite)
