"""Trusted checks of assignment 5 (regularization): see coursekit.judge.

References are PyTorch in float64 (penalties and their gradients by
autograd, dropout's backward pass by autograd through the mask) and an
independent early-stopping rule written here. The student's functions
run in the sandboxed kernel through a small public driver (``CALL``) that
also reports whether they changed an input array in place (a note worth
no points: the kernel's report could be faked there).
"""
import functools

import numpy as np
import torch

from coursekit.judge import hidden, note, show
from coursekit.remote import Code
from dlopt.grading import Feedback, Mistake, check_array, to_float_array

KERNEL = {"forbid": ["torch", "dlopt.regularization", "dlopt.train"]}

# Public code run in the kernel: call f on the arguments and say which
# array arguments it changed in place.
CALL = r'''
import numpy as np


def call(f, *args, **kw):
    saved = [np.array(a, copy=True) if type(a) is np.ndarray else None
             for a in args]
    out = f(*args, **kw)
    changed = [i for i, (a, s) in enumerate(zip(args, saved))
               if s is not None and not np.array_equal(a, s, equal_nan=True)]
    return out, changed
'''




def _call(S, name, *args, argnames=(), **kw):
    """The student's ``name(*args, **kw)``; a changed input is noted.

    The comparison runs in the kernel, where the student's code could
    fake it, so it is a note worth no points (``judge.note``): the
    values returned are what is graded.
    """
    out, changed = S.run(Code(CALL, define="call"),
                                S.function(name), *args, **kw)
    if changed and isinstance(changed, list) and \
            isinstance(changed[0], int):
        which = argnames[changed[0]] if 0 <= changed[0] < len(argnames) \
            else f"argument {changed[0] + 1}"
        note(f"{name} changed its input {which} in place (an augmented "
             f"assignment such as {which} *= ..., or {which}[...] = ...): "
             f"the caller still owns it. Compute a new array instead. "
             f"(Only the values your function returns are graded: what it "
             f"does to its inputs inside your kernel cannot be verified "
             f"from outside.)")
    return out


def _pair(name, out, what="(value, gradient)"):
    if not (isinstance(out, tuple) and len(out) == 2):
        raise Feedback(f"{name} must return a tuple {what}")
    return out


def _array(name, x, shape):
    """An answer that must be an array (not a list) of ``shape``."""
    if isinstance(x, list):
        raise Feedback(f"{name} is a Python list; return a NumPy array "
                       f"(np.array(...)) of shape {shape}")
    return to_float_array(name, x, shape)


# These answers are a few operations from the inputs: a float64
# computation agrees to ~1e-15, one in float32 (~1e-7) never passes by
# chance on random inputs.
_check = functools.partial(check_array, rtol=1e-9, atol=1e-12)


# -- 1. L2 -------------------------------------------------------------------
def _l2(S, W, lam, N):
    return _pair("l2_penalty", _call(S, "l2_penalty", W, lam, N,
                                     argnames=("W",)))


def test_l2_value(S, rng):
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    value, _ = _l2(S, W, 2.0, 10)
    _check("l2_penalty value", value, 3.0, mistakes=[
        Mistake(30.0, "the penalty is N times too large: you summed the "
                "norm once per example (lam/(2N) * sum over N examples of "
                "||W||^2 = lam/2 ||W||^2). Sum over the entries of W "
                "once."),
        Mistake(6.0, "the factor 1/2 is missing: lam/(2N), not lam/N."),
    ])
    with hidden():
        for shape, lam, N in [((3, 4), 0.7, 25), ((5,), 3.0, 1),
                              ((2, 3), 0.0, 9), ((2, 2, 3), 1.3, 7)]:
            W = rng.normal(size=shape)
            ref = float(lam / (2 * N) * (torch.from_numpy(W) ** 2).sum())
            mistakes = []
            if N > 1 and lam:
                mistakes.append(Mistake(
                    lam / 2 * np.sum(W * W), "the penalty is N times too "
                    "large: the squared norm was added once per example; "
                    "add it once in total."))
            if lam:
                mistakes.append(Mistake(lam / N * np.sum(W * W),
                                        "the factor 1/2 is missing."))
            with show(W=W, lam=lam, N=N):
                value, _ = _l2(S, W, lam, N)
                _check("l2_penalty value", value, ref, mistakes=mistakes)


def test_l2_grad(S, rng):
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    _, dW = _l2(S, W, 2.0, 10)
    dW = _array("l2_penalty gradient", dW, W.shape)
    _check("l2_penalty gradient", dW, [[0.2, 0.4], [0.6, 0.8]], mistakes=[
        Mistake([[2.0, 4.0], [6.0, 8.0]], "the gradient is N times too "
                "large: the penalty was summed once per example."),
        Mistake([[0.4, 0.8], [1.2, 1.6]], "the gradient is twice too large:"
                " differentiate the whole penalty, its factor 1/2 "
                "included."),
        Mistake([[-0.2, -0.4], [-0.6, -0.8]], "the sign is flipped: the "
                "penalty grows as |W_j| grows."),
    ])
    with hidden():
        for shape, lam, N in [((3, 4), 0.7, 25), ((6,), 3.0, 2),
                              ((2, 3, 2), 1.1, 13)]:
            W = rng.normal(size=shape)
            tw = torch.from_numpy(W.copy()).requires_grad_(True)
            (lam / (2 * N) * (tw ** 2).sum()).backward()
            with show(W=W, lam=lam, N=N):
                _, dW = _l2(S, W, lam, N)
                dW = _array("l2_penalty gradient", dW, W.shape)
                _check("l2_penalty gradient", dW, tw.grad.numpy(), mistakes=[
                    Mistake(lam * W, "the gradient is N times too large: "
                            "the penalty was summed once per example."),
                    Mistake(2 * lam / N * W, "the gradient is twice too "
                            "large."),
                    Mistake(-lam / N * W, "the sign is flipped."),
                ])


# -- 2. L1 -------------------------------------------------------------------
def _l1(S, W, lam, N):
    return _pair("l1_penalty", _call(S, "l1_penalty", W, lam, N,
                                     argnames=("W",)))


def test_l1_value(S, rng):
    W = np.array([[1.0, -2.0], [0.0, 4.0]])
    value, _ = _l1(S, W, 2.0, 10)
    _check("l1_penalty value", value, 1.4, mistakes=[
        Mistake(0.6, "negative entries must count with their absolute "
                "value: sum |W|, not sum W."),
        Mistake(14.0, "the penalty is N times too large."),
        Mistake(0.7, "there is no 1/2 in the L1 penalty: lam/N sum |W|."),
    ])
    with hidden():
        for shape, lam, N in [((3, 4), 0.7, 25), ((5,), 3.0, 1),
                              ((2, 2, 2), 1.7, 6)]:
            W = rng.normal(size=shape)
            ref = float(lam / N * torch.from_numpy(W).abs().sum())
            with show(W=W, lam=lam, N=N):
                value, _ = _l1(S, W, lam, N)
                _check("l1_penalty value", value, ref, mistakes=[
                    Mistake(lam / N * np.sum(W), "use the absolute "
                            "values."),
                    Mistake(lam / (2 * N) * np.sum(np.abs(W)),
                            "there is no 1/2 in the L1 penalty."),
                ])


def test_l1_grad(S, rng):
    W = np.array([[1.0, -2.0], [0.5, 4.0]])
    _, dW = _l1(S, W, 2.0, 10)
    dW = _array("l1_penalty gradient", dW, W.shape)
    _check("l1_penalty gradient", dW, [[0.2, -0.2], [0.2, 0.2]], mistakes=[
        Mistake(-0.2 * np.sign(W), "the sign is flipped: |w| grows with w "
                "for w > 0 and shrinks for w < 0."),
        Mistake(0.2 * W, "this is proportional to W, the pattern of the L2 "
                "gradient; the slope of |w| does not depend on the size of "
                "w."),
    ])
    with hidden():
        for shape, lam, N in [((3, 4), 0.7, 25), ((6,), 3.0, 2),
                              ((2, 3, 2), 0.9, 5)]:
            W = rng.normal(size=shape)
            W.flat[0] = 0.0                      # a weight exactly at zero
            tw = torch.from_numpy(W.copy()).requires_grad_(True)
            (lam / N * tw.abs().sum()).backward()
            at_zero = lam / N * np.sign(W)
            at_zero.flat[0] = lam / N
            with show(W=W, lam=lam, N=N):
                _, dW = _l1(S, W, lam, N)
                dW = _array("l1_penalty gradient", dW, W.shape)
                _check("l1_penalty gradient", dW, tw.grad.numpy(), mistakes=[
                    Mistake(-lam / N * np.sign(W), "the sign is flipped."),
                    Mistake(lam / N * W, "this is proportional to W (the "
                            "pattern of the L2 gradient); the slope of |w| "
                            "does not depend on the size of w."),
                    Mistake(at_zero, "at a weight exactly 0 use the "
                            "subgradient 0, as PyTorch does."),
                ])


# -- 3. dropout --------------------------------------------------------------
def _dropout_case(shape, p, seed):
    A = np.random.default_rng(seed + 1).normal(size=shape) + 2.0
    keep = np.random.default_rng(seed).random(shape) >= p
    return A, keep


def _dropout(S, A, p, seed, train=True):
    out = _call(S, "dropout_forward", A, p,
                Code(f"np.random.default_rng({int(seed)})"), train,
                argnames=("A",))
    out, mask = _pair("dropout_forward", out, "(out, mask)")
    return (_array("dropout_forward out", out, A.shape),
            _array("dropout_forward mask", mask, A.shape))


def _shared_mask(A, p, seed):
    """One mask for every example (a mistake): the first axis shares it."""
    keep = np.random.default_rng(seed).random(A.shape[1:]) >= p
    return A * keep / (1 - p)


def test_dropout_train(S, rng):
    A, keep = _dropout_case((4, 5), 0.5, seed=0)
    out, mask = _dropout(S, A, 0.5, seed=0)
    _check("dropout_forward out (p = 0.5)", out, A * keep / 0.5, mistakes=[
        Mistake(A * keep, "the survivors are not rescaled: divide by 1 - p "
                "so that the expected output equals A (inverted "
                "dropout)."),
        Mistake(A * ~keep / 0.5, "you kept the entries that should be "
                "dropped: keep where rng.random(A.shape) >= p."),
        Mistake(_shared_mask(A, 0.5, 0), "every example shares one mask "
                "(rng.random(A.shape[1:])): each entry of A needs its own "
                "draw, rng.random(A.shape)."),
    ])
    with hidden():
        seeds = [int(s) for s in rng.integers(0, 2 ** 31, size=4)]
        for (shape, p), seed in zip([((6, 7), 0.2), ((3, 2, 4), 0.75),
                                     ((50,), 0.1), ((1, 9), 0.5)], seeds):
            A, keep = _dropout_case(shape, p, seed)
            mistakes = [
                Mistake(A * keep, "the survivors are not rescaled by "
                        "1/(1 - p)."),
                Mistake(A * keep / p, "rescale by 1/(1 - p), the keep "
                        "probability, not 1/p."),
                Mistake(A * keep * (1 - p), "multiply the survivors by "
                        "1/(1 - p), not by (1 - p): that is the test-time "
                        "scaling of non-inverted dropout."),
                Mistake(A * (~keep) / (1 - p), "p is the probability to "
                        "DROP: keep where rng.random(A.shape) >= p."),
            ]
            if len(shape) > 1 and shape[0] > 1:
                mistakes.append(Mistake(
                    _shared_mask(A, p, seed), "every example shares one "
                    "mask (rng.random(A.shape[1:])): each entry of A needs "
                    "its own draw, rng.random(A.shape)."))
            with show(A_shape=shape, p=p, seed=seed):
                out, mask = _dropout(S, A, p, seed)
                _check(f"dropout_forward out (p = {p})", out,
                       A * keep / (1 - p), mistakes=mistakes)
                _check(f"dropout_forward mask (p = {p})", mask,
                       keep / (1 - p), hint="mask must be the scaled mask "
                       "keep / (1 - p).")


def test_dropout_eval(S, rng):
    A, _ = _dropout_case((4, 5), 0.5, seed=1)
    out, mask = _dropout(S, A, 0.5, seed=1, train=False)
    _check("dropout_forward out (train=False)", out, A,
           hint="At evaluation time dropout must be the identity: no mask "
           "and no rescaling.")
    with hidden():
        seed = int(rng.integers(0, 2 ** 31))
        for p in (0.3, 0.9):
            A, keep = _dropout_case((5, 3), p, seed=seed)
            with show(A_shape=A.shape, p=p, train=False):
                out, mask = _dropout(S, A, p, seed=seed, train=False)
                _check("dropout_forward out (train=False)", out, A,
                       mistakes=[
                    Mistake(A * keep / (1 - p), "dropout is still applied "
                            "at evaluation time: with train=False return A "
                            "unchanged."),
                    Mistake(A * (1 - p), "with inverted dropout, "
                            "evaluation is the identity: the rescaling "
                            "already happened in training."),
                ])
                _check("dropout_forward mask (train=False)", mask,
                       np.ones_like(A))


def test_dropout_backward(S, rng):
    dout = np.arange(6.0).reshape(2, 3)
    mask = np.array([[2.0, 0.0, 2.0], [0.0, 2.0, 2.0]])
    got = _call(S, "dropout_backward", dout, mask,
                argnames=("dout", "mask"))
    got = _array("dropout_backward(dout, mask)", got, dout.shape)
    _check("dropout_backward(dout, mask)", got, [[0, 0, 4], [0, 8, 10]],
           mistakes=[
        Mistake([[0, 1, 2], [3, 4, 5]], "the mask is missing: dropped "
                "units pass no gradient, and survivors' gradients are "
                "scaled like their outputs."),
        Mistake([[0, 0, 2], [0, 4, 5]], "use the scaled mask: the forward "
                "pass multiplied by 1/(1 - p), so the backward pass must "
                "too."),
    ])
    with hidden():
        for p, shape in [(0.4, (4, 6)), (0.8, (3, 2, 5)), (0.25, (1, 7))]:
            A, keep = _dropout_case(shape, p, int(rng.integers(0, 2 ** 31)))
            mask = keep / (1 - p)
            dout = rng.normal(size=A.shape)
            ta = torch.from_numpy(A.copy()).requires_grad_(True)
            (ta * torch.from_numpy(mask) * torch.from_numpy(dout)).sum() \
                .backward()
            with show(dout=dout, mask=mask):
                got = _call(S, "dropout_backward", dout, mask,
                            argnames=("dout", "mask"))
                got = _array("dropout_backward(dout, mask)", got, shape)
                _check("dropout_backward(dout, mask)", got,
                       ta.grad.numpy(), mistakes=[
                           Mistake(dout, "the mask is missing."),
                           Mistake(dout * keep, "use the scaled mask."),
                           Mistake(dout * mask * (1 - p), "the mask is "
                                   "already scaled by 1/(1 - p): multiply "
                                   "by it once.")])


# -- 4. early stopping -------------------------------------------------------
def _reference_stop(losses, patience):
    best, b, wait = float("inf"), 0, 0
    for e, loss in enumerate(losses):
        if loss < best:
            best, b, wait = loss, e, 0
        else:
            wait += 1
            if wait >= patience:
                return e, b
    return None, b


def _check_stop(S, losses, patience, want, hints=()):
    got = _call(S, "early_stopping", [float(x) for x in losses], patience)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise Feedback("early_stopping must return (stop_epoch, "
                       "best_epoch)")
    try:
        got = tuple(None if g is None else int(g) for g in got)
    except (TypeError, ValueError):
        raise Feedback("early_stopping must return two epoch numbers "
                       "(ints, or None for stop_epoch)") from None
    if got == tuple(want):
        return
    shown = [float(x) for x in losses]
    for wrong, message in hints:
        if got == tuple(wrong):
            raise Feedback(f"early_stopping({shown}, patience={patience}) "
                           f"returned {got}: {message}")
    raise Feedback(f"early_stopping({shown}, patience={patience}) "
                   f"returned {got}, expected {tuple(want)}")


def test_early_stopping(S, rng):
    _check_stop(S, [5, 4, 3, 3.5, 3.2, 3.1, 3.3, 2.9], 3, (5, 2), hints=[
        ((6, 2), "off by one: you stopped one epoch late (after patience + "
         "1 epochs without improvement)."),
        ((4, 2), "off by one: you stopped one epoch early (after patience "
         "- 1 epochs without improvement)."),
        ((5, 5), "best_epoch must be the epoch with the lowest loss, not "
         "the last epoch run."),
    ])
    with hidden():
        for _ in range(6):
            n = int(rng.integers(8, 20))
            losses = list(np.round(np.cumsum(rng.normal(-0.1, 0.3, size=n))
                                   + 5, 1))
            patience = int(rng.integers(1, 5))
            want = _reference_stop(losses, patience)
            late = _reference_stop(losses, patience + 1)
            early = _reference_stop(losses, patience - 1) if patience > 1 \
                else None
            hints = [(late, "off by one: you stopped one epoch late.")]
            if early:
                hints.append((early, "off by one: you stopped one epoch "
                              "early."))
            _check_stop(S, losses, patience, want, hints=hints)
        # ties are not improvements; never firing returns None
        _check_stop(S, [3, 2, 2, 2, 1], 2, (3, 1), hints=[
            ((None, 4), "a loss equal to the best is not an improvement "
             "(use <, not <=)."),
        ])
        _check_stop(S, [3, 2, 1, 0.5], 1, (None, 3))
