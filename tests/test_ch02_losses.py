"""Checks of every formula in chapter 2, "Loss functions".

Each formula is evaluated as printed (NumPy, float64) and compared with
torch (functional losses, distributions, autograd) or with a numerical
gradient; dlopt's implementation is compared too where it exists.
"""
import numpy as np
import pytest
import torch
from formulas import covers
from hypothesis import given, settings, strategies as st

from dlopt import losses
from dlopt.gradcheck import check_gradients, numerical_gradient
from dlopt.maps import sigmoid, sigmoid_grad, softmax

F = torch.nn.functional
SETTINGS = settings(deadline=None, max_examples=25)
dims = st.integers(1, 6)
seeds = st.integers(0, 2**31 - 1)


def t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def autograd(fn, x):
    xt = t(x, grad=True)
    val = fn(xt)
    val.backward()
    return val.item(), xt.grad.numpy()


@covers("eq-loss-mse", "eq-loss-mse-grad")
@SETTINGS
@given(N=dims, K=dims, seed=seeds)
def test_mse_and_its_gradient(N, K, seed):
    rng = np.random.default_rng(seed)
    Yh, Y = rng.normal(size=(N, K)), rng.normal(size=(N, K))
    # As printed: 1/(2N) sum_n ||yhat_n - y_n||^2; gradient (Yhat - Y)/N.
    printed = sum(np.sum((Yh[n] - Y[n]) ** 2) for n in range(N)) / (2 * N)
    val, grad = autograd(
        lambda a: ((a - t(Y)) ** 2).sum(dim=1).mean() / 2, Yh)
    assert printed == pytest.approx(val, rel=1e-12)
    np.testing.assert_allclose((Yh - Y) / N, grad, rtol=1e-12)
    ours = losses.mse(Yh, Y)
    assert ours[0] == pytest.approx(val, rel=1e-12)
    np.testing.assert_allclose(ours[1], grad, rtol=1e-12)
    # torch's MSELoss is the same loss times c = 2/K.
    assert F.mse_loss(t(Yh), t(Y)).item() == pytest.approx(
        2 / K * printed, rel=1e-12)


@covers("eq-loss-mse-scale")
@pytest.mark.parametrize("convention", ["torch_mean", "sum_with_half"])
def test_rescaled_loss_with_rescaled_lr_gives_identical_steps(convention):
    """GD on c*L with lr alpha == GD on L with lr c*alpha (torch.optim)."""
    rng = np.random.default_rng(1)
    N, D, K = 8, 3, 4   # c = 2/K = 1/2 for torch's mean
    X, Y = rng.normal(size=(N, D)), rng.normal(size=(N, K))
    W0 = rng.normal(size=(K, D))
    c = 2 / K if convention == "torch_mean" else N
    alpha = 0.05

    def run(loss_fn, lr):
        W = t(W0, grad=True)
        opt = torch.optim.SGD([W], lr=lr)
        for _ in range(20):
            opt.zero_grad()
            loss_fn(t(X) @ W.T, t(Y)).backward()
            opt.step()
        return W.detach().numpy()

    def book(a, b):
        return ((a - b) ** 2).sum() / (2 * N)

    if convention == "torch_mean":
        other = F.mse_loss
    else:
        def other(a, b):
            return ((a - b) ** 2).sum() / 2
    np.testing.assert_allclose(run(other, alpha), run(book, c * alpha),
                               rtol=1e-10)
    # ...and the same lr on both does NOT give the same steps.
    assert not np.allclose(run(other, alpha), run(book, alpha))


@covers("eq-loss-linreg-grad")
def test_linear_regression_gradient_is_a_vector():
    rng = np.random.default_rng(2)
    x = rng.normal(size=30)
    y = 2 * x + 1 + 0.1 * rng.normal(size=30)
    theta = np.array([0.3, -0.5])
    r = theta[0] + theta[1] * x - y
    printed = np.array([r.sum(), (r * x).sum()]) / 30
    _, ref = autograd(
        lambda th: ((th[0] + th[1] * t(x) - t(y)) ** 2).mean() / 2, theta)
    np.testing.assert_allclose(printed, ref, rtol=1e-12)
    # The article's version (factor 2 and the sign) fails a gradient check.
    def J(p):
        return np.mean((p["th"][0] + p["th"][1] * x - y) ** 2) / 2
    assert check_gradients(J, {"th": theta.copy()}, {"th": printed}).ok
    assert not check_gradients(J, {"th": theta.copy()},
                               {"th": -2 * printed}).ok


@covers("eq-loss-mae")
@SETTINGS
@given(N=dims, K=dims, seed=seeds)
def test_mae_and_its_gradient(N, K, seed):
    rng = np.random.default_rng(seed)
    Yh, Y = rng.normal(size=(N, K)), rng.normal(size=(N, K))
    val, grad = autograd(lambda a: (a - t(Y)).abs().sum() / N, Yh)
    assert np.abs(Yh - Y).sum() / N == pytest.approx(val, rel=1e-12)
    np.testing.assert_allclose(np.sign(Yh - Y) / N, grad, rtol=1e-12)
    assert losses.mae(Yh, Y)[0] == pytest.approx(val, rel=1e-12)


@covers("eq-loss-huber")
@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_huber_and_its_gradient(delta):
    rng = np.random.default_rng(3)
    Yh, Y = 2 * rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    R = Yh - Y
    h = np.where(np.abs(R) < delta, R ** 2 / 2,
                 delta * (np.abs(R) - delta / 2))
    printed = h.sum() / 6
    dprinted = np.clip(R, -delta, delta) / 6
    val, grad = autograd(
        lambda a: F.huber_loss(a, t(Y), delta=delta, reduction="sum") / 6,
        Yh)
    assert printed == pytest.approx(val, rel=1e-12)
    np.testing.assert_allclose(dprinted, grad, rtol=1e-12)
    # Continuity at the kink: the two pieces agree in value and slope.
    quad, lin = delta ** 2 / 2, delta * (delta - delta / 2)
    assert quad == pytest.approx(lin)
    assert np.mean(np.abs(R) >= delta) > 0, "test should reach both pieces"


@covers("eq-loss-bce")
@SETTINGS
@given(N=dims, seed=seeds)
def test_binary_cross_entropy(N, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, size=N)
    y = rng.integers(0, 2, size=N).astype(float)
    printed = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    ref = F.binary_cross_entropy(t(p), t(y)).item()
    assert printed == pytest.approx(ref, rel=1e-12)
    assert losses.binary_cross_entropy(p, y)[0] == pytest.approx(ref)


@covers("eq-loss-ce")
@SETTINGS
@given(N=dims, K=st.integers(2, 6), seed=seeds)
def test_softmax_cross_entropy(N, K, seed):
    rng = np.random.default_rng(seed)
    Z = 3 * rng.normal(size=(N, K))
    c = rng.integers(0, K, size=N)
    P, Y = softmax(Z), np.eye(K)[c]
    printed = -np.sum(Y * np.log(P)) / N
    picked = -np.mean(np.log(P[np.arange(N), c]))
    ref = F.cross_entropy(t(Z), torch.from_numpy(c)).item()
    assert printed == pytest.approx(ref, rel=1e-10)
    assert picked == pytest.approx(ref, rel=1e-10)
    assert losses.softmax_cross_entropy(Z, c)[0] == pytest.approx(
        ref, rel=1e-12)


@covers("eq-loss-nll", "eq-loss-gaussian")
@pytest.mark.parametrize("s", [0.5, 1.0, 3.0])
def test_gaussian_nll_is_mse_plus_a_constant(s):
    rng = np.random.default_rng(4)
    yh, y = rng.normal(size=10), rng.normal(size=10)
    printed = (y - yh) ** 2 / (2 * s ** 2) + 0.5 * np.log(2 * np.pi * s**2)
    ref = -torch.distributions.Normal(t(yh), s).log_prob(t(y)).numpy()
    np.testing.assert_allclose(printed, ref, rtol=1e-12)
    # eq-loss-nll: mean of the per-example NLL = MSE / s^2 + constant.
    nll = ref.mean()
    mse = losses.mse(yh, y)[0]
    assert nll == pytest.approx(mse / s ** 2
                                + 0.5 * np.log(2 * np.pi * s ** 2))
    # Hence the same minimiser: gradients differ only by 1/s^2.
    _, g = autograd(lambda a: -torch.distributions.Normal(a, s)
                    .log_prob(t(y)).mean(), yh)
    np.testing.assert_allclose(g, losses.mse(yh, y)[1] / s ** 2,
                               rtol=1e-12)


@covers("eq-loss-nll", "eq-loss-bernoulli")
def test_bernoulli_nll_is_binary_cross_entropy():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, size=12)
    y = rng.integers(0, 2, size=12).astype(float)
    printed = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    ref = -torch.distributions.Bernoulli(probs=t(p)).log_prob(t(y))
    np.testing.assert_allclose(printed, ref.numpy(), rtol=1e-12)
    assert ref.mean().item() == pytest.approx(
        losses.binary_cross_entropy(p, y)[0], rel=1e-12)


@covers("eq-loss-nll", "eq-loss-categorical")
def test_categorical_nll_is_cross_entropy():
    rng = np.random.default_rng(6)
    Z = rng.normal(size=(7, 5))
    c = rng.integers(0, 5, size=7)
    P, Y = softmax(Z), np.eye(5)[c]
    printed = -np.sum(Y * np.log(P), axis=1)
    ref = -torch.distributions.Categorical(probs=t(P)).log_prob(
        torch.from_numpy(c))
    np.testing.assert_allclose(printed, ref.numpy(), rtol=1e-12)
    assert ref.mean().item() == pytest.approx(
        losses.softmax_cross_entropy(Z, c)[0], rel=1e-12)


@covers("eq-loss-bce-grad")
@SETTINGS
@given(N=dims, seed=seeds)
def test_binary_cross_entropy_gradients(N, seed):
    rng = np.random.default_rng(seed)
    z = 2 * rng.normal(size=N)
    y = rng.integers(0, 2, size=N).astype(float)
    p = sigmoid(z)
    _, dp = autograd(lambda a: F.binary_cross_entropy(a, t(y)), p)
    np.testing.assert_allclose((p - y) / (p * (1 - p)) / N, dp,
                               rtol=1e-9)
    _, dz = autograd(lambda a: F.binary_cross_entropy_with_logits(
        a, t(y)), z)
    np.testing.assert_allclose((p - y) / N, dz, rtol=1e-10, atol=1e-15)
    # The chain rule as printed: dL/dz = dL/dp * sigma'(z).
    np.testing.assert_allclose(dp * sigmoid_grad(z), dz, rtol=1e-9,
                               atol=1e-15)


@covers("eq-loss-ce-grad-probs")
def test_cross_entropy_gradient_wrt_probabilities():
    rng = np.random.default_rng(7)
    P = softmax(rng.normal(size=(6, 4)))
    c = rng.integers(0, 4, size=6)
    Y = np.eye(4)[c]
    _, ref = autograd(lambda a: -(t(Y) * a.log()).sum() / 6, P)
    np.testing.assert_allclose(-Y / P / 6, ref, rtol=1e-12)
    np.testing.assert_allclose(losses.cross_entropy_grad_wrt_probs(P, c),
                               ref, rtol=1e-12)
    # The article's claim, (P - Y)/N, is not this gradient.
    assert not np.allclose((P - Y) / 6, ref)


@covers("eq-loss-softmax-jacobian")
def test_softmax_jacobian():
    z = np.random.default_rng(8).normal(size=5)
    p = softmax(z)
    printed = np.array([[p[k] * ((k == j) - p[j]) for j in range(5)]
                        for k in range(5)])
    ref = torch.autograd.functional.jacobian(
        lambda a: torch.softmax(a, dim=0), t(z)).numpy()
    np.testing.assert_allclose(printed, ref, rtol=1e-10, atol=1e-15)


@covers("eq-loss-ce-grad-logits")
@SETTINGS
@given(N=dims, K=st.integers(2, 6), seed=seeds)
def test_cross_entropy_gradient_wrt_logits(N, K, seed):
    rng = np.random.default_rng(seed)
    Z = 3 * rng.normal(size=(N, K))
    c = rng.integers(0, K, size=N)
    _, ref = autograd(lambda a: F.cross_entropy(a, torch.from_numpy(c)), Z)
    np.testing.assert_allclose((softmax(Z) - np.eye(K)[c]) / N, ref,
                               rtol=1e-9, atol=1e-15)


@covers("eq-loss-sigmoid-mse-grad")
def test_sigmoid_mse_gradient_and_its_saturation():
    rng = np.random.default_rng(9)
    z = 3 * rng.normal(size=8)
    y = rng.integers(0, 2, size=8).astype(float)
    _, ref = autograd(lambda a: ((torch.sigmoid(a) - t(y)) ** 2).sum()
                      / (2 * 8), z)
    printed = (sigmoid(z) - y) * sigmoid_grad(z) / 8
    np.testing.assert_allclose(printed, ref, rtol=1e-10, atol=1e-16)
    # The chapter's claim: saturated on the wrong side, MSE's gradient is
    # tiny while cross-entropy's is close to its maximum 1/N.
    zs, ys = np.array([-10.0]), np.array([1.0])
    g_mse = abs(((sigmoid(zs) - ys) * sigmoid_grad(zs))[0])
    g_ce = abs(losses.binary_cross_entropy_with_logits(zs, ys)[1][0])
    assert g_mse < 1e-4 < 0.99 < g_ce


@covers("eq-loss-sigmoid-catce-grad")
def test_independent_sigmoids_with_categorical_ce():
    rng = np.random.default_rng(10)
    Z = rng.normal(size=(5, 4))
    Y = np.eye(4)[rng.integers(0, 4, size=5)]
    _, ref = autograd(lambda a: -(t(Y) * torch.sigmoid(a).log()).sum() / 5,
                      Z)
    printed = -Y * (1 - sigmoid(Z)) / 5
    np.testing.assert_allclose(printed, ref, rtol=1e-10, atol=1e-16)
    # No gradient at all for the wrong classes.
    assert np.all(ref[Y == 0] == 0)


@covers("eq-loss-logsumexp")
def test_log_softmax_by_log_sum_exp():
    rng = np.random.default_rng(11)
    for scale in (1.0, 1e3):
        z = scale * rng.normal(size=7)
        m = z.max()
        printed = z - m - np.log(np.sum(np.exp(z - m)))
        ref = torch.log_softmax(t(z), dim=0).numpy()
        np.testing.assert_allclose(printed, ref, rtol=1e-12, atol=1e-12)
        assert np.all(np.isfinite(printed))
    # The naive formula overflows where the printed one does not.
    with np.errstate(all="ignore"):
        naive = np.log(np.exp(z) / np.exp(z).sum())
    assert not np.all(np.isfinite(naive))


@covers("eq-loss-bce-logits")
def test_stable_binary_cross_entropy_from_logits():
    z = np.array([-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0])
    for yv in (0.0, 1.0, 0.3):
        y = np.full_like(z, yv)
        printed = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        ref = F.binary_cross_entropy_with_logits(t(z), t(y),
                                                 reduction="none").numpy()
        np.testing.assert_allclose(printed, ref, rtol=1e-12, atol=1e-14)
        # Equal to the textbook form wherever that one is finite.
        mid = np.abs(z) < 30
        p = sigmoid(z[mid])
        textbook = -(y[mid] * np.log(p) + (1 - y[mid]) * np.log(1 - p))
        np.testing.assert_allclose(printed[mid], textbook, rtol=1e-9)


def test_perfect_cross_entropy_is_positive_zero():
    val = losses.softmax_cross_entropy(np.array([[1000.0, 0.0]]),
                                       np.array([0]))[0]
    assert val == 0.0 and not np.signbit(val)


def test_numerical_gradient_agrees_with_every_loss_gradient():
    rng = np.random.default_rng(12)
    Z = rng.normal(size=(4, 3))
    c = rng.integers(0, 3, size=4)
    Y = rng.normal(size=(4, 3))
    cases = [
        (lambda a: losses.mse(a, Y)[0], losses.mse(Z, Y)[1]),
        (lambda a: losses.softmax_cross_entropy(a, c)[0],
         losses.softmax_cross_entropy(Z, c)[1]),
        (lambda a: losses.binary_cross_entropy_with_logits(
            a, (Y > 0).astype(float))[0],
         losses.binary_cross_entropy_with_logits(Z, (Y > 0).astype(float))
         [1]),
    ]
    for f, g in cases:
        np.testing.assert_allclose(numerical_gradient(f, Z.copy()), g,
                                   rtol=1e-6, atol=1e-9)


# ------------------------------------------- the page's own data

@pytest.fixture(scope="module")
def page():
    from chapter import run_page
    return run_page("ch02_losses")


def test_loss_shapes_plot(page):
    # "grows like a straight line -z for negative z": at z = -6, -z + 0.0025
    bce = np.asarray(page["bce"])
    assert bce[0] == pytest.approx(6 + np.log1p(np.exp(-6.0)), rel=1e-12)
    assert bce[0] - 6 < 3e-3 and bce[-1] < 3e-3
    # "one outlier with residual 10 weighs as much as a hundred examples
    # with residual 1"
    big = losses.mse(np.array([[10.0]]), np.zeros((1, 1)))[0]
    small = losses.mse(np.ones((100, 1)), np.zeros((100, 1)))[0] * 100
    assert big == pytest.approx(small)


def test_the_two_mse_conventions_take_the_same_steps(page):
    np.testing.assert_allclose(page["W_sum"], page["W_mean"], rtol=1e-12)


def test_gradient_check_catches_the_articles_linear_fit():
    from chapter import run_page
    ns = run_page("ch02_losses", until="### Mean absolute error and Huber")
    J, params = ns["J"], ns["params"]
    assert check_gradients(J, params, {"theta": ns["correct"]}).ok
    assert not check_gradients(J, params, {"theta": ns["article"]}).ok


def test_saturation_plot(page):
    z = np.linspace(-10, 6, 400)              # the page reuses the name z
    g_mse, g_ce = page["g_mse"], page["g_ce"]
    np.testing.assert_allclose(g_ce, 1 / (1 + np.exp(z)), rtol=1e-12)
    assert g_ce[0] > 0.9999                   # "approaches 1"
    k = int(np.argmax(g_mse))
    assert -1 < z[k] < 0                      # "peaks just below z = 0"
    assert round(g_mse[k], 2) == 0.15         # "at about 0.15"; 4/27 exact
    assert g_mse.max() == pytest.approx(4 / 27, rel=1e-3)
    assert 1e-5 < g_mse[0] < 1e-4             # "falls below 1e-4"


def test_saturated_neuron(page):
    g = page["_glued"]
    s = 1 / (1 + np.exp(10.0))                # sigma(-10)
    assert g["ch02-dsigma-10"] == pytest.approx(s * (1 - s), rel=1e-12)
    assert g["ch02-p0"] == pytest.approx(s, rel=1e-12)
    assert g["ch02-w0"] == page["w0"] == page["b0"] == -5.0
    assert g["ch02-alpha"] == 1.0
    p_ce, p_mse = np.asarray(page["p_ce"]), np.asarray(page["p_mse"])
    # alt text: cross-entropy above 0.9 within a few steps, MSE near 0
    assert 1 + np.argmax(p_ce > 0.9) <= 10
    assert p_mse.max() < 1e-4
    # "a handful of steps" and "thousands", counted independently
    assert g["ch02-steps-ce"] == 1 + int(np.argmax(p_ce > 0.5)) <= 10
    assert 1000 <= g["ch02-steps-mse"] < 15000
    p_long = np.asarray(page["train_neuron"]("mse", steps=15000))
    assert g["ch02-steps-mse"] == 1 + int(np.argmax(p_long > 0.5))


def test_sigmoid_outputs_drift_to_one_softmax_keeps_wrong_near_zero(page):
    g, yv, K = page["_glued"], page["yv"], page["K"]
    for name, out in page["outputs"].items():
        mask = np.ones_like(out, dtype=bool)
        mask[np.arange(len(yv)), yv] = False
        assert g[f"ch02-wrong-{name}"] == pytest.approx(out[mask].mean())
        assert g[f"ch02-acc-{name}"] == np.mean(out.argmax(1) == yv)
    assert g["ch02-wrong-sigmoids"] > 0.9     # "drifts towards 1"
    assert g["ch02-wrong-softmax"] < 0.05     # "near 0"
    assert g["ch02-acc-sigmoids"] < g["ch02-acc-softmax"]


def test_stable_losses_give_the_exact_answers(page):
    g = page["_glued"]
    assert (g["ch02-stable-ce0"], g["ch02-stable-ce1"],
            g["ch02-stable-bce"]) == (0.0, 1000.0, 1000.0)
    assert np.isnan(page["naive_p"][0, 0])    # "returns nan"
    assert np.isinf(page["naive_bce"][0])     # "returns inf"
    # torch agrees
    zt = t(page["z"])
    assert F.cross_entropy(zt, torch.tensor([1])).item() == 1000.0
    assert F.binary_cross_entropy_with_logits(
        zt[0, :1], torch.zeros(1, dtype=torch.float64)).item() == 1000.0
