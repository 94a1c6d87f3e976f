"""Trusted checks of assignment 3 (backpropagation by hand).

See :mod:`coursekit.judge`. References are torch.autograd in float64; the
student's functions run in the sandboxed kernel on fresh inputs from
``rng``. The backward passes handed to the student's
``find_wrong_gradients`` stay in the grader (``S.serve``): in the kernel
each one is the same stub, and only the gradients it returns tell a
mistake.
"""
import functools

import numpy as np
import torch

from coursekit.judge import hidden, show
from coursekit.remote import Refused, StudentError, served_array
from dlopt.grading import Feedback, Mistake, check_array

KERNEL = {"forbid": ["torch", "functorch", "dlopt.mlp", "dlopt.maps",
                     "dlopt.autodiff", "dlopt.losses", "dlopt.distill",
                     "dlopt.train"]}
NAMES = ["W1", "b1", "W2", "b2"]


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _forward(X, p):
    Z1 = X @ p["W1"].T + p["b1"]
    A1 = np.tanh(Z1)
    Z2 = A1 @ p["W2"].T + p["b2"]
    Y_hat = _sigmoid(Z2)
    return Y_hat, {"Z1": Z1, "A1": A1, "Z2": Z2, "Y_hat": Y_hat}


def _random_case(rng, N, D, M, K):
    X, Y = rng.normal(size=(N, D)), rng.uniform(size=(N, K))
    params = {"W1": rng.normal(size=(M, D)), "b1": 0.5 * rng.normal(size=M),
              "W2": rng.normal(size=(K, M)), "b2": 0.5 * rng.normal(size=K)}
    return X, Y, params


def _torch_grads(X, Y, params):
    tp = {name: torch.tensor(value, dtype=torch.float64,
                             requires_grad=True)
          for name, value in params.items()}
    A1 = torch.tanh(torch.from_numpy(X) @ tp["W1"].T + tp["b1"])
    Y_hat = torch.sigmoid(A1 @ tp["W2"].T + tp["b2"])
    L = ((Y_hat - torch.from_numpy(Y)) ** 2).sum() / (2 * X.shape[0])
    L.backward()
    return {name: t.grad.numpy() for name, t in tp.items()}


def _loss_value(X, Y, p):
    Y_hat, _ = _forward(X, p)
    return float(np.sum((Y_hat - Y) ** 2) / (2 * X.shape[0]))


def _numeric(X, Y, p, name, h=1e-6):
    """Centred differences of the loss (as dlopt.gradcheck does)."""
    q = {k: np.array(v, dtype=float) for k, v in p.items()}
    x, g = q[name], np.zeros_like(q[name])
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = _loss_value(X, Y, q)
        x[i] = old - h
        fm = _loss_value(X, Y, q)
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def _rel(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(1e-8,
                                                   np.abs(a) + np.abs(b))))


# -- comparing an answer ----------------------------------------------------
check = functools.partial(
    check_array, shape_hint="A gradient has the shape of its parameter.")


# -- 1. the backward pass -----------------------------------------------------
def _variants(X, Y, p):
    """Every named mistake, as the full set of gradients it produces."""
    N = X.shape[0]
    Z1 = X @ p["W1"].T + p["b1"]
    A1 = np.tanh(Z1)
    Yh = _sigmoid(A1 @ p["W2"].T + p["b2"])
    s2, t1 = Yh * (1 - Yh), 1 - A1 ** 2

    def grads(d2, d1=None, **override):
        if d1 is None:
            d1 = (d2 @ p["W2"]) * t1
        g = {"W2": d2.T @ A1, "b2": d2.sum(axis=0),
             "W1": d1.T @ X, "b1": d1.sum(axis=0)}
        g.update(override)
        return g

    d2 = (Yh - Y) / N * s2
    d1 = (d2 @ p["W2"]) * t1
    found = [
        ("the sign is flipped: the error term is (Y_hat - Y)/N, not "
         "(Y - Y_hat)/N.", grads(-d2)),
        ("the 1/N is missing: the loss is a mean over the batch, so "
         "dL/dY_hat = (Y_hat - Y)/N.", grads(N * d2)),
        ("sigma'(Z2) is missing: Y_hat = sigma(Z2), so delta2 = "
         "(Y_hat - Y)/N * sigma'(Z2), with sigma'(Z2) = Y_hat(1 - Y_hat).",
         grads((Yh - Y) / N)),
        ("the error term (Y_hat - Y)/N is missing (the source article's "
         "mistake): delta2 = (Y_hat - Y)/N * sigma'(Z2).", grads(s2 + 0)),
        ("sigma' was applied to Y_hat instead of Z2: sigma'(Z2) = "
         "Y_hat(1 - Y_hat).",
         grads((Yh - Y) / N * _sigmoid(Yh) * (1 - _sigmoid(Yh)))),
        ("tanh'(Z1) is missing: delta1 = (delta2 W2) * tanh'(Z1), with "
         "tanh'(Z1) = 1 - A1**2.", grads(d2, d1=d2 @ p["W2"])),
        ("tanh'(Z1) is 1 - tanh(Z1)**2 = 1 - A1**2, not 1 - Z1**2.",
         grads(d2, d1=(d2 @ p["W2"]) * (1 - Z1 ** 2))),
        ("this is the gradient transposed (the shape of W^T): with W of "
         "shape (out, in), dL/dW2 = delta2^T A1 and dL/dW1 = delta1^T X.",
         grads(d2, W2=A1.T @ d2, W1=X.T @ d1)),
        ("the bias gradient is summed over the wrong axis: b is added to "
         "every example (row), so sum delta over the examples, axis 0.",
         grads(d2, b2=d2.sum(axis=1), b1=d1.sum(axis=1))),
        ("you averaged the bias gradient over the batch; the 1/N is "
         "already inside delta, so sum over axis 0.",
         grads(d2, b2=d2.mean(axis=0), b1=d1.mean(axis=0))),
        ("you kept the first example's delta only; b is added to every "
         "example, so its gradient sums delta over the batch (axis 0).",
         grads(d2, b2=d2[0], b1=d1[0])),
    ]
    if p["W2"].shape[0] == p["W2"].shape[1]:
        found.append((
            "delta1 = (delta2 W2) * tanh'(Z1): the forward pass multiplied "
            "by W2^T, so the backward pass multiplies by W2, untransposed.",
            grads(d2, d1=(d2 @ p["W2"].T) * t1)))
    return found


def _call_backward(S, X, Y, params):
    """The student's backward on this case (the cache from a trusted
    forward pass); it must return a dict with the four names."""
    _, cache = _forward(X, params)
    try:
        grads = S.backward(X, Y, params, cache)
    except NotImplementedError:
        raise Feedback("backward is not implemented yet") from None
    except StudentError as exc:
        if exc.ename != "ValueError":     # not a shape mismatch
            raise
        msg, tb = exc.msg, exc.tb
        raise Feedback(f"backward raised ValueError: {msg} (check the "
                       f"shapes: X {X.shape}, W1 {params['W1'].shape}, W2 "
                       f"{params['W2'].shape})" + (f"\n{tb}" if tb else "")
                       ) from None
    if not isinstance(grads, dict) or set(grads) != set(NAMES):
        raise Feedback("backward must return a dict with the keys "
                       "'W1', 'b1', 'W2', 'b2'")
    return grads


def _check_gradient(S, name, X, Y, p):
    got = _call_backward(S, X, Y, p)[name]
    ref = _torch_grads(X, Y, p)[name]
    with show(X=X, Y=Y, **p):
        check(f"dL/d{name}", got, ref,
              mistakes=[Mistake(v[name], msg)
                        for msg, v in _variants(X, Y, p)])


def _check_cell(S, rng, name):
    # The visible case again, then fresh ones (one a batch of one).
    _check_gradient(S, name, *_random_case(rng, 5, 3, 4, 2))
    with hidden():
        for N, D, M, K in [(6, 3, 4, 2), (4, 5, 3, 3), (1, 2, 5, 4),
                           (7, 4, 2, 5)]:
            _check_gradient(S, name, *_random_case(rng, N, D, M, K))


def test_dW2(S, rng):
    _check_cell(S, rng, "W2")


def test_db2(S, rng):
    _check_cell(S, rng, "b2")


def test_dW1(S, rng):
    _check_cell(S, rng, "W1")


def test_db1(S, rng):
    _check_cell(S, rng, "b1")


# -- 2. find the wrong gradients ----------------------------------------------
# The backward passes handed to find_wrong_gradients stay here, served
# (coursekit.remote.Student.serve): in the kernel each one is the same
# stub backward(X, Y, params, cache), and only the gradients it returns
# tell which are wrong. Each call computes every form below from the
# arguments it is given (the same work, and the same refusals, whichever
# form is served) and returns the served one; which pass is handed when
# is drawn from ``rng``.
def _forms(X, Y, p, cache):
    """Every backward pass the check hands out, computed from the
    student's arguments: name -> gradients (the same key order)."""
    N, D = X.shape
    A1, Yh = cache["A1"], cache["Y_hat"]
    d2 = (Yh - Y) / N * Yh * (1 - Yh)
    t1 = 1 - A1 ** 2
    d1 = (d2 @ p["W2"]) * t1

    def grads(W2=d2.T @ A1, b2=d2.sum(axis=0), W1=d1.T @ X,
              b1=d1.sum(axis=0)):
        return {"W2": W2, "b2": b2, "W1": W1, "b1": b1}

    bare = d2 @ p["W2"]                       # tanh'(Z1) left out
    s2 = Yh * (1 - Yh)                        # the source article's
    dZ1 = s2.sum(axis=1, keepdims=True) * t1
    return {
        None: grads(),
        "b2_mean": grads(b2=d2.mean(axis=0)),
        "W1_extra_1_over_N": grads(W1=d1.T @ X / N),
        "no_tanh_prime": grads(W1=bare.T @ X, b1=bare.sum(axis=0)),
        "W2_transposed": grads(W2=A1.T @ d2),
        "sign_of_delta2": grads(W2=-d2.T @ A1, b2=-d2.sum(axis=0)),
        "published": grads(W2=s2.T @ A1, b2=s2.sum(axis=0),
                           W1=dZ1.T @ np.ones((N, D)), b1=dZ1.sum(axis=0)),
    }


#: form -> (what it is, the parameters whose gradient it gets wrong)
_HANDED = {
    None: ("a correct backward pass (its gradients are "
           "torch.autograd's)", []),
    "published": ("the published derivation", NAMES),
    "b2_mean": ("a backward pass with a hidden mistake", ["b2"]),
    "W1_extra_1_over_N": ("a backward pass with a hidden mistake", ["W1"]),
    "no_tanh_prime": ("a backward pass with a hidden mistake",
                      ["W1", "b1"]),
    "W2_transposed": ("a backward pass with a hidden mistake", ["W2"]),
    "sign_of_delta2": ("a backward pass with a hidden mistake",
                       ["W2", "b2"]),
}


def _served_backward(form, N, D, M, K):
    """backward(X, Y, params, cache) computing ``form`` (served), for
    arguments of the case's shapes (X of shape (N, D), W1 (M, D), ...)."""
    def backward(X, Y, params, cache):
        X = _arg(X, (N, D), "X")
        Y = _arg(Y, (N, K), "Y")
        p = _served_dict(params, "params", NAMES)
        p = {"W1": _arg(p["W1"], (M, D), "params['W1']"),
             "b1": _arg(p["b1"], (M,), "params['b1']"),
             "W2": _arg(p["W2"], (K, M), "params['W2']"),
             "b2": _arg(p["b2"], (K,), "params['b2']")}
        c = _served_dict(cache, "cache", ["A1", "Y_hat"])
        c = {"A1": _arg(c["A1"], (N, M), "cache['A1']"),
             "Y_hat": _arg(c["Y_hat"], (N, K), "cache['Y_hat']")}
        # every form, whichever is served: the same work every call
        forms = _forms(X, Y, p, c)
        return {k: np.asarray(v, dtype=float)
                for k, v in forms[form].items()}
    return backward


def _arg(v, shape, what):
    return served_array(v, shape, "backward(X, Y, params, cache)", what)


def _served_dict(v, what, keys):
    if not isinstance(v, dict) or not set(keys) <= set(v):
        raise Refused(f"backward(X, Y, params, cache): {what} must be a "
                      f"dict with the keys {keys}")
    return v


def _check_find(S, rng, form):
    X, Y, p = _checkable_case(rng)
    what, expected = _HANDED[form]
    (N, D), (M, K) = X.shape, (p["W1"].shape[0], p["W2"].shape[0])
    backward_fn = S.serve(_served_backward(form, N, D, M, K), "backward",
                          ("X", "Y", "params", "cache"))
    try:
        got = S.find_wrong_gradients(backward_fn, X, Y, p)
    except NotImplementedError:
        raise Feedback("find_wrong_gradients is not implemented yet") \
            from None
    if isinstance(got, tuple) or getattr(got, "type_name", "") in (
            "builtins.set", "builtins.frozenset"):
        raise Feedback(f"find_wrong_gradients must return a list (sorted), "
                       f"got a {getattr(got, 'type_name', 'tuple')}")
    if not isinstance(got, list) or not all(isinstance(n, str) for n in got) \
            or not set(got) <= set(NAMES):
        raise Feedback(f"find_wrong_gradients must return a list of names "
                       f"from {NAMES}, got {got!r}")
    got = list(got)
    if sorted(got) != got:
        raise Feedback(f"return the names sorted, got {got!r}")
    if got != sorted(expected):
        raise Feedback(f"find_wrong_gradients returned {got} for {what}; "
                       f"the wrong gradients there are {sorted(expected)}")


def _checkable_case(rng):
    """A random case on which a gradient check passes every correct
    gradient with a wide margin and fails every wrong one of every form
    clearly: the same draw whichever form is then handed out."""
    for _ in range(50):
        N, D, M, K = (int(rng.integers(lo, hi)) for lo, hi in
                      ((4, 8), (2, 6), (2, 6), (1, 4)))
        X, Y, p = _random_case(rng, N, D, M, K)
        num = {k: _numeric(X, Y, p, k) for k in NAMES}
        _, cache = _forward(X, p)
        ok = True
        for form, (_, wrong) in _HANDED.items():
            g = _forms(X, Y, p, cache)[form]
            for k in NAMES:
                if g[k].shape != num[k].shape:
                    ok &= k in wrong
                elif k in wrong:
                    ok &= _rel(g[k], num[k]) > 1e-3
                else:
                    ok &= _rel(g[k], num[k]) < 1e-7
        if ok:
            break
    return X, Y, p


def test_find_wrong_gradients(S, rng):
    # a correct pass first (as the visible test), then the hidden ones:
    # the published derivation, each mistake and a correct pass, in a
    # drawn order (the order of the checks, which is public, says nothing)
    _check_find(S, rng, None)
    hidden_forms = [f for f in _HANDED if f is not None] + [None]
    with hidden():
        for i in rng.permutation(len(hidden_forms)):
            _check_find(S, rng, hidden_forms[int(i)])
