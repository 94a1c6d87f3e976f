"""dlopt.autodiff: every operation and whole networks vs torch.autograd."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dlopt.autodiff import Tensor, tensor, zero_grad
from dlopt.gradcheck import numerical_gradient

SETTINGS = settings(deadline=None, max_examples=30)
dims = st.integers(min_value=1, max_value=5)
seeds = st.integers(0, 2**31 - 1)


def tt(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def both(fn_ours, fn_torch, *arrays, upstream_seed=0):
    """Run the same expression in both; compare value and every grad.

    The output is contracted with a random upstream gradient so that
    every entry of the Jacobian matters.
    """
    ours = [tensor(a, requires_grad=True) for a in arrays]
    theirs = [tt(a) for a in arrays]
    out, ref = fn_ours(*ours), fn_torch(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(),
                               rtol=1e-12, atol=1e-14)
    g = np.asarray(np.random.default_rng(upstream_seed).normal(
        size=out.shape))
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10,
                                   atol=1e-13)


UNARY = {
    "tanh": (lambda a: a.tanh(), torch.tanh),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid),
    "relu": (lambda a: a.relu(), torch.relu),
    "exp": (lambda a: a.exp(), torch.exp),
    "neg": (lambda a: -a, lambda a: -a),
    "square": (lambda a: a ** 2, lambda a: a ** 2),
    "sum": (lambda a: a.sum(), lambda a: a.sum()),
    "sum0": (lambda a: a.sum(axis=0), lambda a: a.sum(dim=0)),
    "sum1k": (lambda a: a.sum(axis=1, keepdims=True),
              lambda a: a.sum(dim=1, keepdim=True)),
    "mean": (lambda a: a.mean(), lambda a: a.mean()),
    "mean0": (lambda a: a.mean(axis=0), lambda a: a.mean(dim=0)),
    "T": (lambda a: a.T, lambda a: a.T),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(N=dims, M=dims, seed=seeds)
def test_unary_ops_match_torch(name, N, M, seed):
    x = 2 * np.random.default_rng(seed).normal(size=(N, M))
    x[np.abs(x) < 1e-3] = 0.5  # relu has no derivative at 0
    both(*UNARY[name], x, upstream_seed=seed)


def test_log_matches_torch():
    x = np.random.default_rng(1).uniform(0.1, 3.0, size=(3, 4))
    both(lambda a: a.log(), torch.log, x)


BINARY = {
    "add": (lambda a, b: a + b),
    "sub": (lambda a, b: a - b),
    "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / b),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shape_b", [(3, 4), (4,), (1, 4), (3, 1), ()])
def test_broadcasting_binary_ops_match_torch(name, shape_b):
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 4))
    b = rng.uniform(0.5, 2.0, size=shape_b)  # away from 0 for division
    f = BINARY[name]
    both(f, f, a, b)


@SETTINGS
@given(N=dims, D=dims, M=dims, seed=seeds)
def test_matmul_matches_torch(N, D, M, seed):
    rng = np.random.default_rng(seed)
    both(lambda a, b: a @ b, lambda a, b: a @ b,
         rng.normal(size=(N, D)), rng.normal(size=(D, M)),
         upstream_seed=seed)


def test_constants_mix_with_tensors():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3))
    c = rng.normal(size=(2, 3))
    both(lambda a: 2.0 - a * c + 1 / (a * a + 1.0),
         lambda a: 2.0 - a * torch.from_numpy(c) + 1 / (a * a + 1.0), x)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu"])
def test_two_layer_mse_network_matches_torch(act):
    """The chapter's network, written with Tensor ops, vs torch."""
    rng = np.random.default_rng(4)
    N, D, H, K = 6, 4, 5, 3
    X, Y = rng.normal(size=(N, D)), rng.uniform(size=(N, K))
    p = {"W1": rng.normal(size=(H, D)), "b1": rng.normal(size=H),
         "W2": rng.normal(size=(K, H)), "b2": rng.normal(size=K)}

    def net(W1, b1, W2, b2, lib):
        if lib is torch:
            Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
            A1 = getattr(torch, act)(Xt @ W1.T + b1)
            Yh = torch.sigmoid(A1 @ W2.T + b2)
            return ((Yh - Yt) ** 2).sum() / (2 * N)
        A1 = getattr(X_ @ W1.T + b1, act)()
        Yh = (A1 @ W2.T + b2).sigmoid()
        return ((Yh - Y) ** 2).sum() / (2 * N)

    X_ = tensor(X)
    both(lambda *a: net(*a, None), lambda *a: net(*a, torch),
         *p.values())


def test_softmax_cross_entropy_graph_matches_torch():
    rng = np.random.default_rng(5)
    N, K = 5, 4
    Z = 3 * rng.normal(size=(N, K))
    y = rng.integers(0, K, size=N)
    Y = np.eye(K)[y]

    def ours(z):
        m = z.data.max(axis=1, keepdims=True)  # a constant shift
        s = z - m
        logp = s - s.exp().sum(axis=1, keepdims=True).log()
        return -(logp * Y).sum() / N

    both(ours, lambda z: torch.nn.functional.cross_entropy(
        z, torch.from_numpy(y)), Z)


def test_shared_node_sums_gradients_over_paths():
    # y = x * x + x uses x three times: dy/dx = 2x + 1.
    x = tensor([1.5, -2.0], requires_grad=True)
    y = (x * x + x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_agrees_with_numerical_gradient():
    rng = np.random.default_rng(6)
    W = rng.normal(size=(3, 4))
    X = rng.normal(size=(5, 4))

    def f(w):
        return float((np.tanh(X @ w.T) ** 2).sum())

    Wt = tensor(W, requires_grad=True)
    ((tensor(X) @ Wt.T).tanh() ** 2).sum().backward()
    num = numerical_gradient(f, W.copy())
    np.testing.assert_allclose(Wt.grad, num, rtol=1e-6, atol=1e-9)


def test_gradients_accumulate_like_torch_until_zeroed():
    rng = np.random.default_rng(7)
    w0 = rng.normal(size=3)
    x = rng.normal(size=3)
    w, wt = tensor(w0, requires_grad=True), tt(w0)
    for _ in range(3):
        (w * x).tanh().sum().backward()
        (wt * torch.from_numpy(x)).tanh().sum().backward()
    np.testing.assert_allclose(w.grad, wt.grad.numpy(), rtol=1e-12)
    one = (1 - np.tanh(w0 * x) ** 2) * x
    np.testing.assert_allclose(w.grad, 3 * one, rtol=1e-12)
    zero_grad({"w": w})
    assert w.grad is None
    (w * x).tanh().sum().backward()
    np.testing.assert_allclose(w.grad, one, rtol=1e-12)


def test_intermediate_nodes_keep_no_gradient():
    w = tensor([1.0, 2.0], requires_grad=True)
    h = w * 3.0
    h.sum().backward()
    assert h.grad is None and not h.is_leaf
    np.testing.assert_allclose(w.grad, [3.0, 3.0])


def test_constants_do_not_build_a_graph():
    a = tensor([1.0, 2.0])
    b = (a * 2).exp()
    assert not b.requires_grad and b.is_leaf
    with pytest.raises(RuntimeError, match="requires_grad"):
        b.sum().backward()


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = tensor(0.5, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 5000, rel=1e-9)


def test_errors_name_the_problem():
    a = tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="cannot be multiplied"):
        a @ tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        a @ tensor(np.ones(3))
    with pytest.raises(ValueError, match="scalar"):
        (a * 2).backward()
    with pytest.raises(ValueError, match="grad must have shape"):
        (a * 2).backward(np.ones(3))
    with pytest.raises(TypeError, match="cannot combine"):
        a + "x"
    with pytest.raises(TypeError, match="exponent"):
        a ** a
    with pytest.raises(ValueError, match="data"):
        Tensor([1.0, np.nan])
    with pytest.raises(TypeError, match="Tensors"):
        zero_grad([np.ones(2)])


def test_autodiff_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, dlopt.autodiff; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
