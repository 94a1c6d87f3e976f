"""Trusted checks of assignment 1 (the mapping view): see coursekit.judge.

References are PyTorch in float64; the student's functions are called in
the sandboxed kernel on fresh inputs from ``rng``.
"""
import numpy as np
import torch

from coursekit.judge import hidden, show
from dlopt.grading import Feedback, Mistake, check_array, check_function

KERNEL = {"forbid": ["torch", "dlopt.maps", "dlopt.mlp", "dlopt.autodiff",
                     "dlopt.train"]}
F = torch.nn.functional


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def test_affine(S, rng):
    X = np.array([[1.0, 2.0, 3.0]])
    W = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = np.array([0.5, -1.0])
    with show(X=X, W=W, b=b):
        check_function("affine(X, W, b)", S.affine, dict(X=X, W=W, b=b),
                       [[-1.5, 3.0]],
                       hint="Z = X W^T + b, with W of shape (M, D).",
                       mistakes=[Mistake([[-2.0, 4.0]], "the bias b is "
                                         "missing."),
                                 Mistake([[-2.5, 5.0]], "the bias is "
                                         "subtracted.")])
    with hidden():
        for trial in range(5):
            N, D, M = (int(k) for k in rng.integers(1, 7, size=3))
            if trial == 0:
                D = M = 4  # square W, so W and W^T have the same shape
                # a batch of several examples on every seed: an answer
                # right only for a batch of one never passes by chance
                N = int(rng.integers(2, 7))
            X, W, b = rng.normal(size=(N, D)), rng.normal(size=(M, D)), \
                rng.normal(size=M)
            ref = F.linear(_t(X), _t(W), _t(b)).numpy()
            mistakes = [
                Mistake(X @ W.T, "the bias b is missing: Z = X W^T + b."),
                Mistake(X @ W.T - b, "the bias is subtracted; it must be "
                        "added."),
            ]
            if D == M:
                mistakes.append(Mistake(
                    X @ W + b, "you multiplied by W instead of W^T. W has "
                    "shape (out, in), so a batch with examples as rows "
                    "needs X W^T."))
            with show(X=X, W=W, b=b):
                check_function("affine(X, W, b)", S.affine,
                               dict(X=X, W=W, b=b), ref, mistakes=mistakes)


def test_two_layer(S, rng):
    X = rng.normal(size=(5, 3))
    p = dict(W1=rng.normal(size=(4, 3)), b1=np.zeros(4),
             W2=rng.normal(size=(2, 4)), b2=np.zeros(2))
    Y_hat = S.two_layer(X, **p)
    if np.shape(Y_hat) != (5, 2):
        raise Feedback(f"two_layer returned shape {np.shape(Y_hat)}; "
                       f"expected (N, K) = (5, 2)")
    Y_hat = np.asarray(Y_hat, dtype=float)
    if not np.all((0 < Y_hat) & (Y_hat < 1)):
        raise Feedback("outputs must be probabilities, strictly between 0 "
                       "and 1: the output layer is a sigmoid and the "
                       "hidden layer tanh (swapped, or the sigmoid "
                       "missing?)")
    with hidden():
        for trial in range(5):
            N, D, H, K = (int(k) for k in rng.integers(1, 6, size=4))
            X = rng.normal(size=(N, D))
            W1, b1 = rng.normal(size=(H, D)), rng.normal(size=H)
            W2, b2 = rng.normal(size=(K, H)), rng.normal(size=K)
            ref = torch.sigmoid(F.linear(torch.tanh(F.linear(
                _t(X), _t(W1), _t(b1))), _t(W2), _t(b2))).numpy()

            def sig(z):
                return 1 / (1 + np.exp(-z))
            Z1 = X @ W1.T + b1
            mistakes = [
                Mistake(np.tanh(sig(Z1) @ W2.T + b2), "the activations are "
                        "swapped: the hidden layer uses tanh and the "
                        "output uses sigmoid."),
                Mistake(np.tanh(Z1) @ W2.T + b2, "the output sigmoid is "
                        "missing: these are logits, not probabilities."),
                Mistake(sig(Z1 @ W2.T + b2), "the hidden tanh is missing: "
                        "without it the two affine maps collapse into "
                        "one."),
                Mistake(sig(np.tanh(Z1) @ W2.T), "the output bias b2 is "
                        "missing."),
            ]
            with show(X=X, W1=W1, b1=b1, W2=W2, b2=b2):
                check_function("two_layer(X, W1, b1, W2, b2)", S.two_layer,
                               dict(X=X, W1=W1, b1=b1, W2=W2, b2=b2), ref,
                               mistakes=mistakes)


def test_sigmoid_prime(S, rng):
    check_function("sigmoid_prime(0)", S.sigmoid_prime,
                   dict(z=np.array(0.0)), 0.25, hint="sigma(0) = 1/2.")
    z = np.linspace(-5, 5, 11)
    if not np.all(np.asarray(S.sigmoid_prime(z), dtype=float) > 0):
        raise Feedback("sigma is increasing, so its derivative must be "
                       "positive everywhere")
    with hidden():
        z = rng.normal(scale=3.0, size=(4, 5))
        zt = _t(z).requires_grad_(True)
        torch.sigmoid(zt).sum().backward()
        s = 1 / (1 + np.exp(-z))
        mistakes = [
            Mistake(s, "this is sigma(z) itself, not its derivative."),
            Mistake(z * (1 - z), "you applied sigma(1 - sigma) to z; the "
                    "formula is in terms of sigma(z), not z."),
            Mistake(s * (1 + s), "check the sign: sigma'(z) = sigma(z)(1 - "
                    "sigma(z))."),
            Mistake(-s * (1 - s), "the sign is flipped: sigma is "
                    "increasing."),
            Mistake(1 - s ** 2, "1 - sigma(z)^2 is the pattern of tanh' "
                    "(1 - tanh^2), not the sigmoid's derivative."),
        ]
        with show(z=z):
            check_function("sigmoid_prime(z)", S.sigmoid_prime, dict(z=z),
                           zt.grad.numpy(), mistakes=mistakes)


def _torch_affine_grads(G, X, W, b):
    t = [_t(a).requires_grad_(True) for a in (X, W, b)]
    Z = F.linear(*t)
    (Z * _t(G)).sum().backward()
    return [a.grad.numpy() for a in t]


def _grads_case(rng, N, D, M):
    return (rng.normal(size=(N, M)), rng.normal(size=(N, D)),
            rng.normal(size=(M, D)), rng.normal(size=M))


def _call_affine_grads(S, G, X, W):
    try:
        out = S.affine_grads(G, X, W)
    except NotImplementedError:
        raise Feedback("affine_grads is not implemented yet") from None
    if not (isinstance(out, tuple) and len(out) == 3):
        raise Feedback("affine_grads must return a tuple (dX, dW, db)")
    return out


def _shape_first(S, rng, which):
    G, X, W, b = _grads_case(rng, 3, 4, 2)
    out = _call_affine_grads(S, G, X, W)
    want = {"dX": X.shape, "dW": W.shape, "db": b.shape}[which]
    got = np.shape(out["dX dW db".split().index(which)])
    if got != want:
        of = {"dX": "X", "dW": "W", "db": "b"}[which]
        raise Feedback(f"{which} has shape {got}; it must have the shape "
                       f"of {of}, {want}")


def _dX_mistakes(G, X, W, N, D, M):
    m = [Mistake(-G @ W, "the sign is flipped.")]
    if D == M:
        m.append(Mistake(G @ W.T, "you used W^T; since Z = X W^T, "
                         "dL/dX = G W."))
    return m


def _dW_mistakes(G, X, W, N, D, M):
    return [
        Mistake(X.T @ G, "this is dL/dW transposed (the shape of W^T, "
                "(D, M)). With W of shape (out, in), dL/dW = G^T X."),
        Mistake(-G.T @ X, "the sign is flipped."),
        Mistake(G.T @ X / N, "you divided by N; the mean over the batch is "
                "already inside G = dL/dZ, so dW = G^T X."),
    ]


def _db_mistakes(G, X, W, N, D, M):
    m = [
        Mistake(G.mean(axis=0), "you averaged over the batch; b is added "
                "to every row, so its gradient is the sum of G's rows."),
        Mistake(-G.sum(axis=0), "the sign is flipped."),
    ]
    if N == M:
        m.append(Mistake(G.sum(axis=1), "you summed over the wrong axis: "
                         "sum over examples (axis 0)."))
    return m


# which output of affine_grads, its hidden shapes (N, D, M), its mistakes
_GRADS = {"dX": (0, [(5, 3, 3), (2, 6, 4), (1, 2, 5)], _dX_mistakes),
          "dW": (1, [(5, 3, 3), (2, 6, 4), (1, 2, 5)], _dW_mistakes),
          "db": (2, [(5, 3, 3), (2, 6, 4), (4, 2, 5)], _db_mistakes)}


def _check_grad(S, rng, which):
    _shape_first(S, rng, which)
    k, shapes, mistakes = _GRADS[which]
    with hidden():
        for N, D, M in shapes:
            G, X, W, b = _grads_case(rng, N, D, M)
            ref = _torch_affine_grads(G, X, W, b)
            got = _call_affine_grads(S, G, X, W)[k]
            with show(G=G, X=X, W=W):
                check_array(which, got, ref[k],
                            mistakes=mistakes(G, X, W, N, D, M))


def test_affine_grads_dX(S, rng):
    _check_grad(S, rng, "dX")


def test_affine_grads_dW(S, rng):
    _check_grad(S, rng, "dW")


def test_affine_grads_db(S, rng):
    _check_grad(S, rng, "db")
