"""dlopt.mlp: end-to-end gradients vs torch.autograd in float64."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlopt import losses, mlp
from dlopt.gradcheck import check_gradients

SETTINGS = settings(deadline=None, max_examples=15)


def torch_grads(params, fn):
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    val = fn(tp)
    val.backward()
    return val.item(), {k: v.grad.numpy() for k, v in tp.items()}


def assert_grads_close(ours, ref, rtol=1e-10):
    assert list(ours) == list(ref) or set(ours) == set(ref)
    for k in ref:
        assert ours[k].shape == ref[k].shape, k
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=1e-13,
                                   err_msg=k)


@SETTINGS
@given(N=st.integers(1, 6), D=st.integers(1, 5), H=st.integers(1, 5),
       K=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_two_layer_tanh_sigmoid_mse_vs_torch(N, D, H, K, seed):
    """The articles' 2-layer net: tanh hidden, sigmoid output, MSE."""
    rng = np.random.default_rng(seed)
    params = mlp.init_mlp([D, H, K], activation="tanh", rng=rng)
    params["b1"] = rng.normal(size=H)
    params["b2"] = rng.normal(size=K)
    X, Y = rng.normal(size=(N, D)), rng.uniform(size=(N, K))
    val, grads = mlp.mlp_loss_and_grads(params, X, Y, loss="mse",
                                        activation="tanh",
                                        output="sigmoid")

    def fn(p):
        A1 = torch.tanh(torch.tensor(X) @ p["W1"].T + p["b1"])
        Yh = torch.sigmoid(A1 @ p["W2"].T + p["b2"])
        # our MSE: 1/(2N) sum over all entries = K/2 * torch's mean
        return K / 2 * F.mse_loss(Yh, torch.tensor(Y))

    ref_val, ref = torch_grads(params, fn)
    assert val == pytest.approx(ref_val, rel=1e-12, abs=1e-15)
    assert_grads_close(grads, ref)


def test_two_layer_backprop_book_formulas():
    """delta2 = (yhat - y)/N * sigma'(z2), dW2 = delta2^T A1,
    delta1 = (delta2 W2) * tanh'(z1), dW1 = delta1^T X."""
    rng = np.random.default_rng(7)
    N, D, H, K = 5, 3, 4, 2
    p = mlp.init_mlp([D, H, K], activation="tanh", rng=rng)
    X, Y = rng.normal(size=(N, D)), rng.uniform(size=(N, K))
    Z1 = X @ p["W1"].T + p["b1"]
    A1 = np.tanh(Z1)
    Z2 = A1 @ p["W2"].T + p["b2"]
    Yh = 1 / (1 + np.exp(-Z2))
    d2 = (Yh - Y) / N * Yh * (1 - Yh)
    d1 = (d2 @ p["W2"]) * (1 - A1 ** 2)
    _, g = mlp.mlp_loss_and_grads(p, X, Y, loss="mse", activation="tanh",
                                  output="sigmoid")
    np.testing.assert_allclose(g["W2"], d2.T @ A1, rtol=1e-12)
    np.testing.assert_allclose(g["b2"], d2.sum(0), rtol=1e-12)
    np.testing.assert_allclose(g["W1"], d1.T @ X, rtol=1e-12)
    np.testing.assert_allclose(g["b1"], d1.sum(0), rtol=1e-12)


@SETTINGS
@given(N=st.integers(1, 6), sizes=st.lists(st.integers(1, 5), min_size=2,
                                           max_size=4),
       K=st.integers(2, 4), seed=st.integers(0, 2**31 - 1))
def test_relu_softmax_net_vs_torch(N, sizes, K, seed):
    rng = np.random.default_rng(seed)
    sizes = sizes + [K]
    params = mlp.init_mlp(sizes, activation="relu", rng=rng)
    for k in params:
        if k.startswith("b"):
            params[k] = 0.1 * rng.normal(size=params[k].shape)
    X = rng.normal(size=(N, sizes[0]))
    y = rng.integers(0, K, size=N)
    val, grads = mlp.mlp_loss_and_grads(params, X, y, loss="softmax_ce")
    L = len(sizes) - 1

    def fn(p):
        A = torch.tensor(X)
        for l in range(1, L + 1):
            A = A @ p[f"W{l}"].T + p[f"b{l}"]
            if l < L:
                A = torch.relu(A)
        return F.cross_entropy(A, torch.tensor(y))

    ref_val, ref = torch_grads(params, fn)
    assert val == pytest.approx(ref_val, rel=1e-12)
    assert_grads_close(grads, ref)


@pytest.mark.parametrize("loss,output,act", [
    ("softmax_ce", None, "relu"),
    ("mse", "sigmoid", "tanh"),
    ("mse", None, "sigmoid"),
    ("huber", None, "tanh"),
    ("mae", None, "tanh"),
    ("bce_logits", None, "tanh"),
    ("bce", "sigmoid", "relu"),
    ("mse", "softmax", "tanh"),
    ("ce_probs", "softmax", "relu"),
])
def test_mlp_passes_numerical_gradient_check(loss, output, act):
    rng = np.random.default_rng(11)
    N, K = 6, 3
    params = mlp.init_mlp([4, 5, K], activation=act, rng=rng)
    X = rng.normal(size=(N, 4))
    if loss in ("softmax_ce", "ce_probs"):
        y = rng.integers(0, K, size=N)
    elif loss.startswith("bce"):
        y = (rng.uniform(size=(N, K)) > 0.5).astype(float)
    else:
        y = rng.normal(size=(N, K))
    _, grads = mlp.mlp_loss_and_grads(params, X, y, loss=loss,
                                      activation=act, output=output)

    def f(p):
        return mlp.mlp_loss_and_grads(p, X, y, loss=loss, activation=act,
                                      output=output)[0]

    # 1e-5, not 1e-6: some entries here are ~1e-5 in size, where the
    # ~1e-10 rounding noise of centred differences is already a 1e-6
    # relative error. A wrong gradient is off by O(1).
    check_gradients(f, params, grads, tol=1e-5).assert_ok()


def test_softmax_output_with_ce_probs_equals_softmax_ce_on_logits():
    rng = np.random.default_rng(4)
    p = mlp.init_mlp([3, 5, 4], seed=4)
    X, y = rng.normal(size=(7, 3)), rng.integers(0, 4, size=7)
    v1, g1 = mlp.mlp_loss_and_grads(p, X, y, loss="softmax_ce")
    v2, g2 = mlp.mlp_loss_and_grads(p, X, y, loss="ce_probs",
                                    output="softmax")
    assert v1 == pytest.approx(v2, rel=1e-12)
    assert_grads_close(g2, g1)


def test_article_style_backprop_mistakes_are_caught():
    """Dropping the error term, or W2's transpose, fails the check."""
    rng = np.random.default_rng(5)
    N, D, H, K = 4, 3, 3, 3
    p = mlp.init_mlp([D, H, K], activation="tanh", rng=rng)
    X, Y = rng.normal(size=(N, D)), rng.uniform(size=(N, K))
    kw = dict(loss="mse", activation="tanh", output="sigmoid")
    _, g = mlp.mlp_loss_and_grads(p, X, Y, **kw)

    def f(q):
        return mlp.mlp_loss_and_grads(q, X, Y, **kw)[0]

    A1 = np.tanh(X @ p["W1"].T + p["b1"])
    Yh = 1 / (1 + np.exp(-(A1 @ p["W2"].T + p["b2"])))
    no_error_term = (Yh * (1 - Yh)).T @ A1  # "a1 * sigma'(z2)"
    res = check_gradients(f, p, {**g, "W2": no_error_term})
    assert not res.ok and res.worst_param == "W2"
    d2 = (Yh - Y) / N * Yh * (1 - Yh)
    d1_no_T = (d2 @ p["W2"].T) * (1 - A1 ** 2)  # W2 used untransposed
    res = check_gradients(f, p, {**g, "W1": d1_no_T.T @ X})
    assert not res.ok and res.worst_param == "W1"
    check_gradients(f, p, g).assert_ok()


@pytest.mark.parametrize("init,act", [("he", "relu"), ("xavier", "tanh")])
def test_init_statistics(init, act):
    fan_in, fan_out = 400, 300
    p = mlp.init_mlp([fan_in, fan_out], activation=act, init=init, seed=0)
    W = p["W1"]
    assert W.shape == (fan_out, fan_in) and p["b1"].shape == (fan_out,)
    assert np.all(p["b1"] == 0)
    if init == "he":
        want = 2 / fan_in
    else:
        a = np.sqrt(6 / (fan_in + fan_out))
        want = a * a / 3  # variance of U(-a, a) = 2 / (fan_in + fan_out)
        assert np.abs(W).max() <= a
    assert W.var() == pytest.approx(want, rel=0.02)


def test_init_defaults_seed_and_normal():
    a = mlp.init_mlp([3, 4, 2], seed=1)
    b = mlp.init_mlp([3, 4, 2], seed=1)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert list(a) == ["W1", "b1", "W2", "b2"]
    n = mlp.init_mlp([500, 400], init="normal", scale=0.05, seed=0)
    assert n["W1"].std() == pytest.approx(0.05, rel=0.02)
    with pytest.raises(ValueError, match="init must be"):
        mlp.init_mlp([3, 2], init="kaiming")
    with pytest.raises(ValueError, match="sizes must"):
        mlp.init_mlp([3])
    with pytest.raises(ValueError, match="sizes must be positive"):
        mlp.init_mlp([3, 0, 2])
    with pytest.raises(ValueError, match="either seed or rng"):
        mlp.init_mlp([3, 2], seed=0, rng=np.random.default_rng(0))


def test_predict_and_accuracy_use_integer_labels():
    rng = np.random.default_rng(2)
    p = mlp.init_mlp([4, 6, 3], seed=3)
    X = rng.normal(size=(20, 4))
    out, _ = mlp.mlp_forward(p, X)
    pred = mlp.predict(p, X)
    assert pred.dtype.kind == "i"
    np.testing.assert_array_equal(pred, out.argmax(1))
    y = rng.integers(0, 3, size=20)
    acc = mlp.accuracy(pred, y)
    assert acc == pytest.approx(np.mean(out.argmax(1) == y))
    # scores and one-hot are reduced with argmax
    assert mlp.accuracy(out, np.eye(3)[y]) == acc
    assert mlp.accuracy(y, y) == 1.0
    with pytest.raises(TypeError, match="y must hold integer class"):
        mlp.accuracy(pred, y.astype(float))
    with pytest.raises(ValueError, match="pred gives 20 labels but y"):
        mlp.accuracy(pred, y[:5])
    # one sigmoid output: threshold 0.5
    q = mlp.init_mlp([4, 1], seed=0)
    s, _ = mlp.mlp_forward(q, X, output="sigmoid")
    np.testing.assert_array_equal(
        mlp.predict(q, X, output="sigmoid"), (s[:, 0] > 0.5).astype(int))


def test_mlp_errors_name_the_problem():
    p = mlp.init_mlp([4, 3, 2], seed=0)
    X = np.ones((5, 4))
    y = np.array([0, 1, 0, 1, 1])
    with pytest.raises(ValueError, match="layer 1.*W must have shape"):
        mlp.mlp_forward(p, np.ones((5, 3)))
    with pytest.raises(ValueError, match="X contains"):
        mlp.mlp_forward(p, np.full((5, 4), np.nan))
    with pytest.raises(TypeError, match="X is a torch tensor"):
        mlp.mlp_forward(p, torch.ones(5, 4))
    with pytest.raises(ValueError, match="takes logits, so output must"):
        mlp.mlp_loss_and_grads(p, X, y, output="sigmoid")
    with pytest.raises(ValueError, match="loss must be one of"):
        mlp.mlp_loss_and_grads(p, X, y, loss="hinge")
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 1\]"):
        mlp.mlp_loss_and_grads(p, X, np.array([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"missing \['b2'\]"):
        mlp.mlp_forward({k: v for k, v in p.items() if k != "b2"}, X)
    with pytest.raises(ValueError, match="unexpected key 'W'"):
        mlp.mlp_forward({"W": p["W1"], "b1": p["b1"]}, X)
    with pytest.raises(ValueError, match="Y must have the same shape"):
        mlp.mlp_loss_and_grads(p, X, np.ones(5), loss="mse")


def test_losses_module_one_hot():
    np.testing.assert_array_equal(losses.one_hot(np.array([2, 0]), 3),
                                  [[0, 0, 1], [1, 0, 0]])
