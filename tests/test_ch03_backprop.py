"""Checks of every formula in chapter 3, "Backpropagation".

The formulas are evaluated as printed, in NumPy float64, and compared with
torch.autograd (error terms via ``retain_grad`` on the pre-activations),
with dlopt.mlp and dlopt.autodiff, or with numerical gradients.
"""
import numpy as np
import pytest
import torch
from formulas import covers
from hypothesis import given, settings, strategies as st

from dlopt.autodiff import tensor, zero_grad
from dlopt.gradcheck import check_gradients, numerical_gradient, rel_error
from dlopt.maps import relu_grad, sigmoid, sigmoid_grad, tanh_grad
from dlopt.mlp import init_mlp, mlp_forward, mlp_loss_and_grads

F = torch.nn.functional
SETTINGS = settings(deadline=None, max_examples=20)
dims = st.integers(1, 6)
seeds = st.integers(0, 2**31 - 1)


def t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def two_layer_case(N, D, M, K, seed):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(N, D)), rng.uniform(size=(N, K))
    p = {"W1": rng.normal(size=(M, D)), "b1": rng.normal(size=M),
         "W2": rng.normal(size=(K, M)), "b2": rng.normal(size=K)}
    return X, Y, p


def torch_two_layer(X, Y, p):
    """Loss, parameter grads and error terms from torch.autograd."""
    tp = {k: t(v, grad=True) for k, v in p.items()}
    Z1 = t(X) @ tp["W1"].T + tp["b1"]
    Z1.retain_grad()
    A1 = torch.tanh(Z1)
    Z2 = A1 @ tp["W2"].T + tp["b2"]
    Z2.retain_grad()
    Yh = torch.sigmoid(Z2)
    N = X.shape[0]
    L = ((Yh - t(Y)) ** 2).sum() / (2 * N)
    L.backward()
    return (L.item(), {k: v.grad.numpy() for k, v in tp.items()},
            Z1.grad.numpy(), Z2.grad.numpy())


def printed_two_layer(X, Y, p):
    """The chapter's equations, exactly as printed."""
    N = X.shape[0]
    Z1 = X @ p["W1"].T + p["b1"]
    A1 = np.tanh(Z1)
    Z2 = A1 @ p["W2"].T + p["b2"]
    Yh = sigmoid(Z2)
    L = np.sum((Yh - Y) ** 2) / (2 * N)
    d2 = (Yh - Y) / N * sigmoid_grad(Z2)
    d1 = (d2 @ p["W2"]) * (1 - np.tanh(Z1) ** 2)
    grads = {"W2": d2.T @ A1, "b2": d2.T @ np.ones(N),
             "W1": d1.T @ X, "b1": d1.T @ np.ones(N)}
    return L, grads, d1, d2, A1


@covers("eq-bp-chain")
def test_chain_rule_sums_over_paths():
    # u = x^2 feeds v1 = sin(u) and v2 = u * x; L = v1 + v2 * v1.
    x0 = 0.7
    u = x0 ** 2
    v1, v2 = np.sin(u), u * x0
    dL_dv1, dL_dv2 = 1 + v2, v1
    # dL/du = sum over the children of u (v1 and v2).
    dL_du = dL_dv1 * np.cos(u) + dL_dv2 * x0
    # x has three children: u, v2 (directly) -> sum again.
    dL_dx = dL_du * 2 * x0 + dL_dv2 * u
    xt = t(x0, grad=True)
    ut = xt ** 2
    v1t, v2t = torch.sin(ut), ut * xt
    (v1t + v2t * v1t).backward()
    assert dL_dx == pytest.approx(xt.grad.item(), rel=1e-12)
    xa = tensor(x0, requires_grad=True)
    ua = xa ** 2
    # dlopt.autodiff has no sin: check the same rule on L = u x + u^2,
    # where u feeds two products and x feeds u and one product.
    (ua * xa + ua * ua).backward()
    expect = (xa.data + 2 * ua.data) * 2 * x0 + ua.data
    assert float(xa.grad) == pytest.approx(float(expect), rel=1e-12)


@covers("eq-bp-forward")
@SETTINGS
@given(N=dims, D=dims, M=dims, K=dims, seed=seeds)
def test_forward_pass_matches_torch_and_dlopt(N, D, M, K, seed):
    X, Y, p = two_layer_case(N, D, M, K, seed)
    L, *_ = printed_two_layer(X, Y, p)
    L_ref, *_ = torch_two_layer(X, Y, p)
    assert L == pytest.approx(L_ref, rel=1e-12)
    out, _ = mlp_forward(p, X, activation="tanh", output="sigmoid")
    L_lib, _ = mlp_loss_and_grads(p, X, Y, loss="mse", activation="tanh",
                                  output="sigmoid")
    assert L_lib == pytest.approx(L_ref, rel=1e-12)


@covers("eq-bp-delta2", "eq-bp-delta1")
@SETTINGS
@given(N=dims, D=dims, M=dims, K=dims, seed=seeds)
def test_error_terms_match_autograd(N, D, M, K, seed):
    X, Y, p = two_layer_case(N, D, M, K, seed)
    _, _, d1, d2, _ = printed_two_layer(X, Y, p)
    _, _, dZ1, dZ2 = torch_two_layer(X, Y, p)
    np.testing.assert_allclose(d2, dZ2, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(d1, dZ1, rtol=1e-10, atol=1e-15)


@covers("eq-bp-w2-entries", "eq-bp-grad-w2", "eq-bp-grad-w1")
@SETTINGS
@given(N=dims, D=dims, M=dims, K=dims, seed=seeds)
def test_parameter_gradients_match_autograd(N, D, M, K, seed):
    X, Y, p = two_layer_case(N, D, M, K, seed)
    _, grads, _, d2, A1 = printed_two_layer(X, Y, p)
    _, ref, _, _ = torch_two_layer(X, Y, p)
    for k in grads:
        assert grads[k].shape == p[k].shape
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-9, atol=1e-14)
    # The entrywise sum over the batch, as printed.
    entries = np.array([[sum(d2[n, k] * A1[n, m] for n in range(N))
                         for m in range(M)] for k in range(K)])
    np.testing.assert_allclose(entries, ref["W2"], rtol=1e-9, atol=1e-14)


@covers("eq-bp-four")
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_four_equations_for_a_deep_network(act):
    rng = np.random.default_rng(1)
    sizes = [4, 6, 5, 7, 3]
    p = init_mlp(sizes, activation=act, init="xavier", seed=1)
    X, Y = rng.normal(size=(9, 4)), rng.normal(size=(9, 3))
    phi = {"relu": (lambda z: np.maximum(z, 0), relu_grad),
           "tanh": (np.tanh, tanh_grad),
           "sigmoid": (sigmoid, sigmoid_grad)}[act]
    L = len(sizes) - 1
    A, Z = {0: X}, {}
    for l in range(1, L + 1):
        Z[l] = A[l - 1] @ p[f"W{l}"].T + p[f"b{l}"]
        A[l] = phi[0](Z[l]) if l < L else Z[l]   # identity output
    N = X.shape[0]
    delta = {L: (A[L] - Y) / N * 1.0}            # BP1, phi' = 1 (identity)
    for l in range(L - 1, 0, -1):                # BP2
        delta[l] = (delta[l + 1] @ p[f"W{l + 1}"]) * phi[1](Z[l])
    grads = {}
    for l in range(1, L + 1):
        grads[f"b{l}"] = delta[l].T @ np.ones(N)     # BP3
        grads[f"W{l}"] = delta[l].T @ A[l - 1]       # BP4
    tp = {k: t(v, grad=True) for k, v in p.items()}
    a = t(X)
    fn = {"relu": torch.relu, "tanh": torch.tanh,
          "sigmoid": torch.sigmoid}[act]
    for l in range(1, L + 1):
        a = a @ tp[f"W{l}"].T + tp[f"b{l}"]
        if l < L:
            a = fn(a)
    (((a - t(Y)) ** 2).sum() / (2 * N)).backward()
    for k in p:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(),
                                   rtol=1e-9, atol=1e-14)
    _, lib = mlp_loss_and_grads(p, X, Y, loss="mse", activation=act)
    for k in p:
        np.testing.assert_allclose(lib[k], grads[k], rtol=1e-10,
                                   atol=1e-14)


def test_article_backprop_fails_a_gradient_check():
    """The chapter's 'common mistake' box: mistake 5 of the articles."""
    X, Y, p = two_layer_case(8, 4, 5, 3, seed=0)
    _, grads, *_ = printed_two_layer(X, Y, p)
    Z1 = X @ p["W1"].T + p["b1"]
    A1 = np.tanh(Z1)
    s2 = sigmoid_grad(A1 @ p["W2"].T + p["b2"])

    def loss(params):
        out, _ = mlp_forward(params, X, activation="tanh",
                             output="sigmoid")
        return np.sum((out - Y) ** 2) / (2 * X.shape[0])

    params = {k: v.copy() for k, v in p.items()}
    check_gradients(loss, params, grads).assert_ok()
    article = dict(grads, W2=s2.T @ A1)
    res = check_gradients(loss, params, article)
    assert not res.ok and res.worst_param == "W2"


@covers("eq-bp-accumulate")
def test_gradients_accumulate_in_torch_and_in_dlopt_autodiff():
    rng = np.random.default_rng(2)
    w0, x = rng.normal(size=4), rng.normal(size=4)
    wt, wo = t(w0, grad=True), tensor(w0, requires_grad=True)
    per_call = 2 * w0 * x ** 2   # d/dw sum((w x)^2)
    for calls in range(1, 4):
        ((wt * t(x)) ** 2).sum().backward()
        ((wo * x) ** 2).sum().backward()
        np.testing.assert_allclose(wt.grad.numpy(), calls * per_call)
        np.testing.assert_allclose(wo.grad, calls * per_call)
    wt.grad = None
    zero_grad([wo])
    ((wt * t(x)) ** 2).sum().backward()
    ((wo * x) ** 2).sum().backward()
    np.testing.assert_allclose(wt.grad.numpy(), per_call)
    np.testing.assert_allclose(wo.grad, per_call)


@covers("eq-bp-gradcheck")
def test_centred_difference_has_second_order_error():
    x0 = np.array([0.3, -1.2, 2.0])

    def f(x):
        return float(np.sum(np.sin(x) * x ** 2))

    exact = np.cos(x0) * x0 ** 2 + 2 * x0 * np.sin(x0)
    errs, fwd = [], []
    for h in (1e-2, 1e-3):
        central = np.array([(f(x0 + h * e) - f(x0 - h * e)) / (2 * h)
                            for e in np.eye(3)])
        forward = np.array([(f(x0 + h * e) - f(x0)) / h for e in np.eye(3)])
        errs.append(np.max(np.abs(central - exact)))
        fwd.append(np.max(np.abs(forward - exact)))
    assert 50 < errs[0] / errs[1] < 200        # O(h^2): 100x per 10x
    assert 5 < fwd[0] / fwd[1] < 20            # O(h): 10x per 10x
    # dlopt's numerical gradient and rel_error are the printed formulas.
    num = numerical_gradient(f, x0.copy(), h=1e-3)
    central = np.array([(f(x0 + 1e-3 * e) - f(x0 - 1e-3 * e)) / 2e-3
                        for e in np.eye(3)])
    np.testing.assert_allclose(num, central, rtol=1e-12)
    a, b = exact, exact + np.array([0.0, 1e-3, 0.0])
    printed = np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))
    assert rel_error(a, b) == pytest.approx(printed, rel=1e-12)


@covers("eq-bp-slopes")
def test_activation_slopes_are_bounded():
    z = np.linspace(-20, 20, 40001)
    s = sigmoid_grad(z)
    assert s.max() == pytest.approx(0.25, rel=1e-12)
    assert z[np.argmax(s)] == pytest.approx(0.0, abs=1e-9)
    zt = t(z, grad=True)
    torch.sigmoid(zt).sum().backward()
    np.testing.assert_allclose(s, zt.grad.numpy(), rtol=1e-10, atol=1e-15)
    assert tanh_grad(z).max() == pytest.approx(1.0)
    assert set(np.unique(relu_grad(z))) == {0.0, 1.0}


@covers("eq-bp-variance")
def test_variance_of_a_pre_activation():
    rng = np.random.default_rng(3)
    n_in, var_w = 200, 0.3 ** 2
    A = rng.uniform(-1, 2, size=(4000, n_in))        # E[a^2] = 1
    W = rng.normal(0, 0.3, size=(300, n_in))
    Z = A @ W.T
    predicted = n_in * var_w * np.mean(A ** 2)
    assert Z.var() == pytest.approx(predicted, rel=0.1)


@covers("eq-bp-init")
@pytest.mark.parametrize("init,expected", [
    ("xavier", lambda fi, fo: 2 / (fi + fo)),
    ("he", lambda fi, fo: 2 / fi),
])
def test_init_variances(init, expected):
    fan_in, fan_out = 300, 200
    W = init_mlp([fan_in, fan_out], init=init, seed=4)["W1"]
    assert W.var() == pytest.approx(expected(fan_in, fan_out), rel=0.05)


def test_he_init_keeps_relu_signal_and_naive_does_not():
    """The chapter's claim behind eq-bp-init, measured on a deep net."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(512, 64))
    sizes = [64] * 12

    def last_rms(init, scale=0.01):
        p = init_mlp(sizes, activation="relu", init=init, scale=scale,
                     seed=6)
        out, caches = mlp_forward(p, X, activation="relu", output="relu")
        return np.sqrt(np.mean(out ** 2))

    first = np.sqrt(np.mean(np.maximum(X @ init_mlp(
        sizes[:2], init="he", seed=6)["W1"].T, 0) ** 2))
    assert 0.3 < last_rms("he") / first < 3
    assert last_rms("normal", 0.01) < 1e-10
    assert last_rms("normal", 0.5) > 1e3


# ------------------------------------------- the page's own data

@pytest.fixture(scope="module")
def page():
    from chapter import run_page
    return run_page("ch03_backprop")


def test_glued_gradient_checks(page):
    g = page["_glued"]
    assert g["ch03-check-ours"] == page["ours_check"].max_rel_error
    assert g["ch03-check-ours"] < 1e-7        # "around 1e-8 or better"
    assert page["ours_check"].ok and not page["article_check"].ok
    assert g["ch03-check-article"] > 0.1      # "off by order 1"
    # independently: rel_error of the article's W2 against centred
    # differences of the page's loss
    params = {k: v.copy() for k, v in page["p"].items()}

    def f(_):
        return page["loss"](params)
    num = numerical_gradient(f, params["W2"])
    assert rel_error(page["ours"]["W2"], num) < 1e-7
    assert rel_error(page["article"]["W2"], num) > 0.1


def test_zero_grad_plot(page):
    (l_z, u_z), (l_n, u_n) = page["with_zero"], page["without_zero"]
    assert len(l_z) == len(l_n) == 300
    assert np.all(np.diff(l_z) < 0)           # "decreases smoothly"
    assert l_n[20] < l_z[20]                  # "drops faster at first"
    assert np.sum(np.diff(l_n[50:]) > 0) > 20  # "keeps bouncing"
    assert np.all(np.diff(u_z) < 0) and u_z[-1] < 0.1   # "below 0.1"
    assert np.all(np.abs(np.array(u_n[20:]) - 4.5) < 0.5)  # "about 4.5"
    # without zeroing the gradient used is the running sum: at step 2 it
    # is g1 + g2, whose norm exceeds g1's (here the gradients align)
    assert u_n[1] > u_n[0] == u_z[0]


def test_vanishing_and_exploding_claims(page):
    g, runs = page["_glued"], page["runs"]
    assert (g["ch03-depth"], g["ch03-width"], g["ch03-batch"]) == (
        page["depth"], page["width"], page["batch"]) == (10, 64, 256)
    assert page["sizes"] == [64] + [64] * 10 + [10]      # the caption
    assert len(page["Xd"]) == 256

    def orders(name):                         # last layer over first
        gb = runs[name][1]
        return np.log10(gb[-1] / gb[0])
    # alt text: sigmoid ~6 orders, normal(0.01) ~12, normal(0.5) ~-4,
    # Xavier ~1, He flat; tanh and He within a factor of about two
    assert round(orders("sigmoid, Xavier")) == 6
    assert g["ch03-sigmoid-orders"] == pytest.approx(
        orders("sigmoid, Xavier"))
    assert round(orders("ReLU, normal(0, 0.01²)")) == 12
    assert round(orders("ReLU, normal(0, 0.5²)")) == -4
    assert round(orders("ReLU, Xavier")) == 1
    for name in ("tanh, Xavier", "ReLU, He"):
        gb = runs[name][1]
        assert gb.max() / gb.min() < 2, name
    # the per-layer factors: the formula and the measured slope
    assert g["ch03-factor-small"] == pytest.approx(np.sqrt(64e-4 / 2))
    assert g["ch03-factor-large"] == pytest.approx(2 * np.sqrt(2))
    assert g["ch03-measured-small"] == pytest.approx(
        g["ch03-factor-small"], rel=0.25)
    assert g["ch03-measured-large"] == pytest.approx(
        g["ch03-factor-large"], rel=0.1)
    # weight gradients of the naive init: ~1e-13 in every layer
    gW = runs["ReLU, normal(0, 0.01²)"][0]
    assert np.all((gW > 1e-14) & (gW < 1e-12))
    assert g["ch03-naive-dW"] == pytest.approx(
        np.prod(gW) ** (1 / len(gW)), rel=1e-9)
