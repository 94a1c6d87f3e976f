"""Trusted checks of assignment 2 (losses and their gradients).

See :mod:`coursekit.judge`. References are PyTorch in float64; the
student's functions run in the sandboxed kernel, on fresh inputs from
``rng``. Functions handed to the student's code are built in the kernel
from public code text (the ``f`` of a numerical gradient, the forward
functions of a derivation), or, where their code would give the answer
away (the backward functions of a derivation, one of which may be
wrong), served from here (``S.serve``): in the kernel every one is the
same stub, and only the values it returns tell a wrong step.
"""
import numpy as np
import torch

from coursekit.judge import hidden, note, show
from coursekit.remote import Code, RList, served_array
from dlopt.grading import Feedback, Mistake, check_array, to_float_array

# scipy is absent too: scipy.optimize.approx_fprime / scipy.differentiate
# would answer question 4 for the student.
KERNEL = {"forbid": ["torch", "functorch", "scipy", "dlopt.losses",
                     "dlopt.gradcheck", "dlopt.maps", "dlopt.mlp",
                     "dlopt.autodiff", "dlopt.distill", "dlopt.train"]}
F = torch.nn.functional
H = 1e-5


def _t(a, **kw):
    return torch.tensor(np.asarray(a, dtype=np.float64), **kw)


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softmax(Z, axis=1):
    E = np.exp(Z - Z.max(axis=axis, keepdims=True))
    return E / E.sum(axis=axis, keepdims=True)


# -- comparing an answer ----------------------------------------------------
def _kind(x) -> str:
    name = getattr(x, "type_name", None)
    return (name if isinstance(name, str) else type(x).__name__) \
        .split(".")[-1]


#: the answers' comparison: float64, first differing index, relative
#: error, a word about float32 and Python lists (dlopt.grading)
check = check_array


def _loss(S, fname, *args):
    """Call the student's loss; it must return a pair (number, array)."""
    try:
        out = S.call(fname, *args)
    except NotImplementedError:
        raise Feedback(f"{fname} is not implemented yet") from None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise Feedback(f"{fname} must return a pair (L, grad), got "
                       f"{_kind(out)}")
    L, grad = out
    if np.ndim(L) != 0 or isinstance(L, (list, RList)):
        raise Feedback(f"{fname}: the loss L must be one number (the mean "
                       f"over the batch), got shape {np.shape(L)}")
    return L, grad


# -- 1. mean squared error --------------------------------------------------
def test_mse(S, rng):
    L, g = _loss(S, "mse", np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))
    check("mse loss", L, 1.25, hint="L = (1^2 + 2^2) / (2 * 2).")
    check("mse gradient", g, [[0.5], [1.0]], mistakes=[
        Mistake([[-0.5], [-1.0]], "the sign is flipped: dL/dY_hat = "
                "(Y_hat - Y)/N points from the target to the prediction."),
        Mistake([[1.0], [2.0]], "the 1/N is missing: the loss is a mean "
                "over the batch, so its gradient carries 1/N."),
    ])
    with hidden():
        for N, K in [(5, 3), (1, 4), (7, 1), (3, 3)]:
            Yh, Y = rng.normal(size=(N, K)), rng.normal(size=(N, K))
            Yt = _t(Yh, requires_grad=True)
            ref = ((Yt - _t(Y)) ** 2).sum() / (2 * N)
            ref.backward()
            with show(Y_hat=Yh, Y=Y):
                L, g = _loss(S, "mse", Yh, Y)
                R = Yh - Y
                check("mse loss", L, ref.item(), mistakes=[
                    Mistake(np.sum(R ** 2) / N, "the ½ is missing "
                            "(L = 1/(2N) sum)."),
                    Mistake(np.sum(R ** 2) / 2, "you summed over the batch; "
                            "the loss is the mean: divide by N."),
                    Mistake(np.mean(R ** 2) / 2, "you averaged over all N*K "
                            "entries (torch's MSELoss); the book averages "
                            "over the N examples and sums over the K "
                            "outputs."),
                ])
                check("mse gradient", g, Yt.grad.numpy(), mistakes=[
                    Mistake(-R / N, "the sign is flipped: dL/dY_hat = "
                            "(Y_hat - Y)/N."),
                    Mistake(R, "the 1/N is missing: the loss is a mean over "
                            "the batch, so its gradient carries 1/N."),
                    Mistake(2 * R / N, "the factor 2 should cancel with the "
                            "½."),
                    Mistake(R / (N * K), "you divided by N*K; the loss sums "
                            "over the K outputs, so divide by N only."),
                ])


# -- 2. binary cross-entropy ------------------------------------------------
def _finite_bce(L, size="of size 1000"):
    if not np.isfinite(float(np.asarray(L, dtype=np.float64))):
        raise Feedback(f"your loss overflows to inf/nan for logits {size}: "
                       "log(sigmoid(z)) rounds to log(0). "
                       "Compute it from the logits: max(z, 0) - z*y + "
                       "log1p(exp(-|z|)).")


def test_bce_value(S, rng):
    L, _ = _loss(S, "bce_with_logits", np.zeros(4),
                 np.array([0.0, 1.0, 1.0, 0.0]))
    check("bce loss at z = 0", L, np.log(2), hint="p = 1/2 everywhere.")
    L, _ = _loss(S, "bce_with_logits", np.array([1000.0, -1000.0]),
                 np.array([0.0, 1.0]))
    _finite_bce(L)
    check("bce loss for logits +-1000 (both wrong)", L, 1000.0)
    with hidden():
        for N, scale in [(6, 1.0), (5, 30.0), (1, 3.0), (8, 300.0)]:
            z = scale * rng.normal(size=N)
            y = rng.integers(0, 2, size=N).astype(float)
            ref = F.binary_cross_entropy_with_logits(_t(z), _t(y)).item()
            with show(z=z, y=y):
                L, _ = _loss(S, "bce_with_logits", z, y)
                _finite_bce(L, "this large")
                per = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
                check("bce loss", L, ref, rtol=1e-9, mistakes=[
                    Mistake(per.sum(), "you summed over the batch; divide "
                            "by N."),
                    Mistake(-per.mean(), "the sign is flipped: the loss is "
                            "-[y log p + (1 - y) log(1 - p)], which is "
                            ">= 0."),
                ])


def _bce_grad_mistakes(z, y):
    N, p = z.shape[0], _sigmoid(z)
    return [
        Mistake((p - y) / (p * (1 - p)) / N, "this is the gradient with "
                "respect to the probabilities p, not the logits z. Chain "
                "it through p = sigmoid(z): sigma'(z) = p(1 - p) cancels "
                "the denominator and leaves (p - y)/N."),
        Mistake((y - p) / N, "the sign is flipped: dL/dz = (p - y)/N."),
        Mistake(p - y, "the 1/N is missing: the loss is a mean over the "
                "batch, so its gradient carries 1/N."),
        Mistake((p - y) * p * (1 - p) / N, "you multiplied by sigma'(z) "
                "once too often: with cross-entropy it cancels (that "
                "extra factor is the MSE pattern, which saturates)."),
    ]


def test_bce_grad(S, rng):
    z, y = np.array([2.0, -1.0, 0.5]), np.array([1.0, 1.0, 0.0])
    _, g = _loss(S, "bce_with_logits", z, y)
    check("bce gradient", g, (_sigmoid(z) - y) / 3,
          hint="dL/dz = (sigmoid(z) - y) / N.",
          mistakes=_bce_grad_mistakes(z, y))
    with hidden():
        for N in (7, 2, 12, 1):
            z = 2 * rng.normal(size=N)
            y = rng.integers(0, 2, size=N).astype(float)
            zt = _t(z, requires_grad=True)
            F.binary_cross_entropy_with_logits(zt, _t(y)).backward()
            with show(z=z, y=y):
                _, g = _loss(S, "bce_with_logits", z, y)
                check("bce gradient", g, zt.grad.numpy(),
                      mistakes=_bce_grad_mistakes(z, y))


# -- 3. softmax cross-entropy -----------------------------------------------
_ONE_HOT = ("your one-hot targets do not have one row per example: Y must "
            "have shape (N, K) with a single 1 in each row, Y[n, y[n]] = 1 "
            "(a (K,) vector with Y[y] = 1 broadcasts every label over the "
            "whole batch, which is right only for a batch of one).")


def _broadcast_one_hot(y, K):
    Y = np.zeros(K)
    Y[y] = 1.0
    return Y


def _finite_ce(L):
    if not np.isfinite(float(np.asarray(L, dtype=np.float64))):
        raise Feedback("your loss overflows to inf/nan for logits of size "
                       "1000: exp(1000) is inf in float64. Subtract each "
                       "row's maximum first (log-sum-exp).")


def _ce_value_mistakes(Z, y):
    N, K = Z.shape
    rows = np.arange(N)
    with np.errstate(divide="ignore"):      # log(0) = -inf is the answer
        logP = np.log(_softmax(Z))
    lp = logP[rows, y]
    # Normalised over the batch axis, without and with a row-wise shift.
    # (On the large-logit cases these wrong answers are inf or NaN, as the
    # mistake itself would be: no warning in the grader's log.)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        E0 = np.exp(Z - Z.max())
        E1 = np.exp(Z - Z.max(axis=1, keepdims=True))
        wrong_axis = np.log(E0 / E0.sum(axis=0, keepdims=True))[rows, y]
        wrong_axis1 = np.log(E1 / E1.sum(axis=0, keepdims=True))[rows, y]
    axis = ("the softmax is normalised over the wrong axis (the batch, "
            "axis 0); each row (example) must sum to one: axis=1.")
    return [
        Mistake(-lp.sum(), "you summed over the batch; divide by N."),
        Mistake(-lp.sum() / (N * K), "you divided by N*K; the loss sums "
                "over the classes and averages over the N examples."),
        Mistake(-wrong_axis.mean(), axis),
        Mistake(-wrong_axis1.mean(), axis),
        Mistake(lp.mean(), "the sign is flipped: L = -mean log p."),
        Mistake(-np.sum(_broadcast_one_hot(y, K) * logP) / N, _ONE_HOT),
    ]


def test_ce_value(S, rng):
    Z0, y0 = np.zeros((3, 4)), np.array([0, 3, 1])
    L, _ = _loss(S, "softmax_ce", Z0, y0)
    check("cross-entropy at Z = 0", L, np.log(4),
          mistakes=_ce_value_mistakes(Z0, y0),
          hint="every class gets probability 1/K.")
    L, _ = _loss(S, "softmax_ce", np.array([[1000.0, 0.0, -1000.0]]),
                 np.array([1]))
    _finite_ce(L)
    check("cross-entropy for logits (1000, 0, -1000), label 1", L, 1000.0)
    with hidden():
        for N, K, scale in [(5, 4, 1.0), (3, 2, 50.0), (1, 6, 3.0),
                            (6, 3, 400.0)]:
            Z = scale * rng.normal(size=(N, K))
            y = rng.integers(0, K, size=N)
            ref = F.cross_entropy(_t(Z), torch.from_numpy(y)).item()
            with show(Z=Z, y=y):
                L, _ = _loss(S, "softmax_ce", Z, y)
                _finite_ce(L)
                check("cross-entropy", L, ref, rtol=1e-9,
                      mistakes=_ce_value_mistakes(Z, y))


def _ce_grad_mistakes(Z, y):
    N, K = Z.shape
    P, Y = _softmax(Z), np.eye(K)[y]
    E0, E1 = np.exp(Z - Z.max()), np.exp(Z - Z.max(axis=1, keepdims=True))
    P0 = E0 / E0.sum(axis=0, keepdims=True)
    P1 = E1 / E1.sum(axis=0, keepdims=True)
    axis = ("the softmax is summed over the wrong axis (the batch, axis "
            "0): normalise each row, axis=1.")
    return [
        Mistake(-Y / P / N, "this is the gradient with respect to the "
                "probabilities P (-Y/P/N), not the logits Z. Chain it "
                "through the softmax Jacobian: it becomes (P - Y)/N."),
        Mistake((Y - P) / N, "the sign is flipped: dL/dZ = (P - Y)/N."),
        Mistake(P - Y, "the 1/N is missing: the loss is a mean over the "
                "batch, so its gradient carries 1/N."),
        Mistake((P0 - Y) / N, axis),
        Mistake((P1 - Y) / N, axis),
        Mistake((P - Y) / (N * K), "you divided by N*K; divide by N."),
        Mistake((P - _broadcast_one_hot(y, K)) / N, _ONE_HOT),
    ]


def test_ce_grad(S, rng):
    Z, y = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]]), np.array([0, 2])
    _, g = _loss(S, "softmax_ce", Z, y)
    check("cross-entropy gradient", g, (_softmax(Z) - np.eye(3)[y]) / 2,
          hint="dL/dZ = (softmax(Z) - Y) / N.",
          mistakes=_ce_grad_mistakes(Z, y))
    with hidden():
        for N, K in [(6, 4), (2, 3), (9, 5), (1, 4)]:
            Z = 2 * rng.normal(size=(N, K))
            y = rng.integers(0, K, size=N)
            Zt = _t(Z, requires_grad=True)
            F.cross_entropy(Zt, torch.from_numpy(y)).backward()
            with show(Z=Z, y=y):
                _, g = _loss(S, "softmax_ce", Z, y)
                check("cross-entropy gradient", g, Zt.grad.numpy(),
                      mistakes=_ce_grad_mistakes(Z, y))


# -- 4. a numerical gradient --------------------------------------------------
# Runs in the kernel (public): calls the student's numerical_grad and
# returns what it computed together with the caller's x afterwards, so
# that an implementation that perturbs x in place is seen.
_NUMGRAD_DRIVER = '''
def run(numerical_grad, f, x, h):
    return numerical_grad(f, x, h), x
'''


def _lit(a) -> str:
    """Exact code text for a float64 array (repr round-trips)."""
    return f"np.array({np.asarray(a, dtype=np.float64).tolist()!r})"


def _separable_case(x):
    src = "lambda v: float(np.sum(np.exp(v) * v ** 2))"
    t = _t(x, requires_grad=True)
    (torch.exp(t) * t ** 2).sum().backward()
    return src, t.grad.numpy(), "sum(exp(x) * x**2)", {}


def _lse_case(x, A):
    # f(v) = log(sum(exp(A v))): every entry of v interacts with the others.
    src = (f"(lambda A: lambda v: float(np.log(np.sum(np.exp("
           f"A @ np.ravel(v))))))({_lit(A)})")
    t = _t(x, requires_grad=True)
    torch.logsumexp(_t(A) @ t.reshape(-1), 0).backward()
    return src, t.grad.numpy(), "log(sum(exp(A @ x.ravel())))", {"A": A}


def _quad_case(x, A):
    src = (f"(lambda A: lambda v: float(np.ravel(v) @ A @ np.ravel(v)))"
           f"({_lit(A)})")
    t = _t(x, requires_grad=True)
    (t.reshape(-1) @ _t(A) @ t.reshape(-1)).backward()
    return src, t.grad.numpy(), "x.ravel() @ A @ x.ravel()", {"A": A}


def _variants(f, x0, h=H):
    """What the usual wrong implementations compute (grader side)."""
    def centred_at(shift):
        x = np.array(x0, dtype=float)
        out = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + h
            fp = f(x)
            x[i] = old - h
            fm = f(x)
            x[i] = old + shift      # where the entry is left afterwards
            out[i] = (fp - fm) / (2 * h)
        return out

    x = np.array(x0, dtype=float)
    exact = centred_at(0.0)
    fwd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        fwd[i] = (f(x + e) - f(x)) / h
    allat = np.full_like(x, (f(x + h) - f(x - h)) / (2 * h))
    left = ("so every later entry is differentiated at a shifted point "
            "(the checks use functions whose entries interact, such as "
            "log(sum(exp(A x))), where this shows). Put x[i] back to its "
            "saved value after both evaluations: x[i] = old.")
    return [
        Mistake(2 * exact, "it is twice the gradient: the centred "
                "difference divides by 2h, not h."),
        Mistake(fwd, "this is a one-sided difference (f(x+h) - f(x))/h, "
                "whose error is O(h); use the centred one, O(h^2)."),
        Mistake(-exact, "the sign is flipped: f(x + h) comes first."),
        Mistake(centred_at(-h), "x[i] is left at x[i] - h after its two "
                "evaluations (never restored, or restored after the + side "
                "only), " + left),
        Mistake(centred_at(+h), "x[i] is left at x[i] + h after its two "
                "evaluations (restored to the wrong value), " + left),
        Mistake(allat, "every entry is the same: you perturbed all of x "
                "at once (x + h) instead of one entry at a time "
                "(x + h e_i)."),
    ]


def _numgrad_case(S, src, ref, x0, what, shown):
    f = eval(src, {"np": np})       # the same public code, grader side
    try:
        ng = S.value("numerical_grad")
    except Exception:
        raise Feedback("numerical_grad is not defined") from None
    with show(x=x0, f=what, **shown):
        try:
            out = S.run(Code(_NUMGRAD_DRIVER, define="run"), ng,
                        Code(src), x0, H)
        except NotImplementedError:
            raise Feedback("numerical_grad is not implemented yet") \
                from None
        got, x_after = out
        x_after = to_float_array("x", x_after)
        if x_after.shape != x0.shape or not np.array_equal(x_after, x0):
            diff = np.argwhere(~(x_after == x0)) if \
                x_after.shape == x0.shape else None
            detail = ""
            if diff is not None and len(diff):
                i = tuple(int(k) for k in diff[0])
                detail = (f" (x{list(i)} was {float(x0[i])!r} and is "
                          f"{float(x_after[i])!r} afterwards")
                if abs(x_after[i] - x0[i]) < 1e-12 * max(1, abs(x0[i])):
                    detail += ": x[i] += h then x[i] -= h does not always "
                    detail += "give back the same float"
                detail += ")"
            # reported by the kernel, which the student's code could
            # fake: a note worth no points; a perturbation left behind
            # shows in the values on functions whose entries interact
            note(f"numerical_grad changed its argument x{detail}; restore "
                 f"every entry exactly (x[i] = old, the saved value) or "
                 f"perturb a copy. (Only the gradient it returns is "
                 f"graded: what it does to x inside your kernel cannot be "
                 f"verified from outside.)")
        check("numerical_grad", got, ref, rtol=1e-7, atol=1e-9,
              mistakes=_variants(f, x0),
              hint="Centred difference: (f(x + h e_i) - f(x - h e_i)) / 2h "
                   "for each entry i.")


def test_numerical_grad(S, rng):
    x0 = np.array([0.5, -1.0, 2.0])
    src, ref, what, shown = _separable_case(x0)
    _numgrad_case(S, src, ref, x0, what, shown)
    with hidden():
        cases = [((2, 3), _lse_case), ((4,), _quad_case),
                 ((1, 1), _lse_case), ((3, 2), _quad_case),
                 ((5,), _lse_case)]
        for shape, make in cases:
            x = rng.normal(size=shape)
            n = x.size
            A = rng.normal(size=(n + 1, n)) if make is _lse_case \
                else rng.normal(size=(n, n))
            src, ref, what, shown = make(x, A)
            _numgrad_case(S, src, ref, x, what, shown)


# -- 5. find the wrong step -------------------------------------------------
# A derivation's forward functions and points are built in the kernel from
# public text (the same in every derivation); its backward functions stay
# here, served (coursekit.remote.Student.serve): in the kernel each one is
# the same stub, and only its values say whether it is right. Each call
# computes the right and the wrong form of its step and returns one, so
# a call's time and errors say nothing either; which derivations are
# wrong, and where, is drawn from ``rng``, in an order of its own.
_FORWARDS = '''
def _make(backwards):
    import numpy as np
    X = {X}
    y = np.array({y!r}, dtype=np.int64)
    W = {W}
    b = {b}
    N, K = X.shape[0], W.shape[0]
    Y = np.eye(K)[y]

    def softmax(Z):
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    Z = X @ W.T + b
    P = softmax(Z)

    def loss_fwd(P_):
        return -np.sum(Y * np.log(P_)) / N

    def affine_fwd(W_):
        return X @ W_.T + b

    return [("dL/dP", loss_fwd, backwards[0], P),
            ("dP/dZ", softmax, backwards[1], Z),
            ("dZ/dW", affine_fwd, backwards[2], W)]
'''
NAMES = ["dL/dP", "dP/dZ", "dZ/dW"]


def _loss_bwd(d, P_, g):
    return g * (-d.Y / P_) / d.N


def _loss_bwd_wrong(d, P_, g):
    return g * (P_ - d.Y) / d.N                 # the article: yhat - y


def _softmax_bwd(d, Z_, G):
    A = _softmax(Z_)
    return A * (G - np.sum(G * A, axis=1, keepdims=True))


def _softmax_bwd_wrong(d, Z_, G):
    A = _softmax(Z_)
    return G * A * (1 - A)                      # as if sigmoid


def _affine_bwd(d, W_, G):
    return G.T @ d.X


def _affine_bwd_wrong(d, W_, G):
    return G.T @ d.X / d.N                      # the 1/N counted twice


#: each step's backward, (right, wrong): grader side only
_FORMS = {"dL/dP": (_loss_bwd, _loss_bwd_wrong),
          "dP/dZ": (_softmax_bwd, _softmax_bwd_wrong),
          "dZ/dW": (_affine_bwd, _affine_bwd_wrong)}


class _Derivation:
    """One derivation's data, points and forward functions (the same
    public computation as the kernel's ``_make``)."""

    def __init__(self, X, y, W, b):
        self.X, self.y, self.W, self.b = X, y, W, b
        self.N, self.K = X.shape[0], W.shape[0]
        self.Y = np.eye(self.K)[y]
        Z = X @ W.T + b
        self.points = {"dL/dP": _softmax(Z), "dP/dZ": Z, "dZ/dW": W}
        self.forwards = {
            "dL/dP": lambda P_: -np.sum(self.Y * np.log(P_)) / self.N,
            "dP/dZ": _softmax,
            "dZ/dW": lambda W_: X @ W_.T + b}

    def code(self) -> Code:
        return Code(_FORWARDS.format(X=_lit(self.X),
                                     y=[int(v) for v in self.y],
                                     W=_lit(self.W), b=_lit(self.b)),
                    define="_make")

    def backward(self, name, wrong: bool):
        """Step ``name``'s backward(x, g), right or wrong (served)."""
        x_shape = self.points[name].shape
        g_shape = np.shape(self.forwards[name](self.points[name]))
        forms = _FORMS[name]
        g_means = "an array of the step's output shape" if g_shape else \
            "a number, for the loss"

        def backward(x, g):
            x = served_array(x, x_shape, "backward(x, g)", "x",
                             "an array of the shape of the step's point x")
            g = served_array(g, g_shape, "backward(x, g)", "g", g_means)
            # both forms, whichever is served: the same work every call
            outs = [np.asarray(f(self, x.copy(), g.copy()), dtype=float)
                    for f in forms]
            return outs[1] if wrong else outs[0]
        return backward

    def step_errors(self, wrong_step, seed):
        """Each step's relative error against centred differences (as
        the question defines it), with step ``wrong_step`` wrong."""
        r = np.random.default_rng(seed)
        errs = {}
        for name in NAMES:
            forward, x = self.forwards[name], np.array(self.points[name])
            out = forward(x.copy())
            g = 1.0 if np.ndim(out) == 0 else r.normal(size=np.shape(out))
            num = np.zeros_like(x)
            for i in np.ndindex(x.shape):
                old = x[i]
                x[i] = old + H
                fp = float(np.sum(g * forward(x)))
                x[i] = old - H
                fm = float(np.sum(g * forward(x)))
                x[i] = old
                num[i] = (fp - fm) / (2 * H)
            a = self.backward(name, name == wrong_step)(x.copy(), g)
            errs[name] = float(np.max(np.abs(a - num) / np.maximum(
                1e-8, np.abs(a) + np.abs(num))))
        return errs


def _checkable_derivation(rng):
    """Random data on which every correct step passes a gradient check
    with a wide margin and every wrong form fails it clearly (rounding
    noise can swamp a gradient entry that happens to be nearly zero):
    the same draw whichever step is then made wrong."""
    for _ in range(50):
        N, D, K = (int(v) for v in rng.integers(2, 6, size=3))
        d = _Derivation(*_linear_case(rng, N, D, K))
        ok = True
        for seed in (0, 1):
            ok &= all(e < 1e-7 for e in d.step_errors(None, seed).values())
            for name in NAMES:
                ok &= d.step_errors(name, seed)[name] > 1e-3
        if ok:
            break
    return d


# Runs in the kernel (public): grades question 5 on its own, with a
# correct numerical gradient in place of the student's for the call (as
# the notebook's visible test does), and puts theirs back afterwards.
_FAILING_DRIVER = '''
def run(failing_step, make, backwards):
    import numpy as np
    steps = make(backwards)

    def numerical_grad(f, x, h=1e-5):
        x = np.array(x, dtype=float)
        grad = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + h
            fp = f(x)
            x[i] = old - h
            fm = f(x)
            x[i] = old
            grad[i] = (fp - fm) / (2 * h)
        return grad

    ns = getattr(failing_step, "__globals__", None)
    if not isinstance(ns, dict):
        return failing_step(steps)
    missing = object()
    saved = ns.get("numerical_grad", missing)
    ns["numerical_grad"] = numerical_grad
    try:
        return failing_step(steps)
    finally:
        if saved is missing:
            ns.pop("numerical_grad", None)
        else:
            ns["numerical_grad"] = saved
'''


def _check_failing_step(S, fs, d, expected):
    backwards = [S.serve(d.backward(name, name == expected), "backward",
                         ("x", "g")) for name in NAMES]
    try:
        got = S.run(Code(_FAILING_DRIVER, define="run"), fs, d.code(),
                    backwards)
    except NotImplementedError:
        raise Feedback("failing_step is not implemented yet") from None
    if got is not None and got not in NAMES:
        raise Feedback(f"failing_step returned {got!r}; it must return one "
                       f"of {NAMES} or None")
    if got != expected:
        if expected is None:
            raise Feedback(f"failing_step returned {got!r} for a derivation "
                           f"whose steps are all correct; it should return "
                           f"None. Is your tolerance or your relative error "
                           f"right?")
        raise Feedback(f"failing_step returned {got!r}, but in this "
                       f"derivation the wrong step is {expected!r}: check "
                       f"every step, in order, against a numerical "
                       f"gradient.")


def _linear_case(rng, N, D, K):
    X = rng.normal(size=(N, D))
    y = rng.integers(0, K, size=N)
    # Moderate logits: probabilities far from 0 keep the check well posed.
    return X, y, 0.3 * rng.normal(size=(K, D)), 0.3 * rng.normal(size=K)


def _hidden_answers(rng):
    """The wrong step of each hidden derivation: every step and "none"
    at least once and two more drawn, in a drawn order (the order of
    the checks, which is public, says nothing)."""
    options = NAMES + [None]
    picks = options + [options[int(i)] for i in rng.integers(0, 4, size=2)]
    return [picks[int(i)] for i in rng.permutation(len(picks))]


def test_failing_step(S, rng):
    try:
        fs = S.value("failing_step")
    except Exception:
        raise Feedback("failing_step is not defined") from None
    # the visible case again (a correct derivation), then hidden ones
    _check_failing_step(S, fs, _checkable_derivation(rng), None)
    with hidden():
        for wrong in _hidden_answers(rng):
            _check_failing_step(S, fs, _checkable_derivation(rng), wrong)
