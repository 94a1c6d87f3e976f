"""dlopt.maps: every backward pass against torch.autograd in float64."""
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dlopt import maps
from dlopt.gradcheck import numerical_gradient, rel_error

SETTINGS = settings(deadline=None, max_examples=40)
dims = st.integers(min_value=1, max_value=6)


def t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def vjp(fn, inputs, dout):
    """Gradients of sum(dout * fn(*inputs)) w.r.t. inputs, via autograd."""
    ts = [t(a) for a in inputs]
    out = fn(*ts)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [x.grad.numpy() for x in ts]


@SETTINGS
@given(N=dims, D=dims, M=dims, seed=st.integers(0, 2**31 - 1))
def test_affine_matches_torch_linear(N, D, M, seed):
    rng = np.random.default_rng(seed)
    X, W, b = rng.normal(size=(N, D)), rng.normal(size=(M, D)), \
        rng.normal(size=M)
    dZ = rng.normal(size=(N, M))
    Z, cache = maps.affine_forward(X, W, b)
    dX, dW, db = maps.affine_backward(dZ, cache)
    Zt, (gX, gW, gb) = vjp(torch.nn.functional.linear, [X, W, b], dZ)
    assert Z.shape == (N, M)
    np.testing.assert_allclose(Z, Zt, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dX, gX, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, gW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, gb, rtol=1e-12, atol=1e-12)
    assert dW.shape == W.shape and db.shape == b.shape


ELEMENTWISE = [
    ("sigmoid", torch.sigmoid),
    ("tanh", torch.tanh),
    ("relu", torch.relu),
    ("identity", lambda z: z * 1.0),
]


@pytest.mark.parametrize("name,tfn", ELEMENTWISE)
@SETTINGS
@given(N=dims, M=dims, seed=st.integers(0, 2**31 - 1))
def test_elementwise_forward_backward_match_torch(name, tfn, N, M, seed):
    rng = np.random.default_rng(seed)
    Z = 3 * rng.normal(size=(N, M))
    dA = rng.normal(size=(N, M))
    act = maps.get_activation(name)
    A, cache = act.forward(Z)
    dZ = act.backward(dA, cache)
    At, (gZ,) = vjp(tfn, [Z], dA)
    np.testing.assert_allclose(A, At, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dZ, gZ, rtol=1e-12, atol=1e-14)
    # The named elementwise derivative is the same formula.
    np.testing.assert_allclose(dA * act.grad(Z), gZ, rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(act.fn(Z), At, rtol=1e-12, atol=1e-14)


def test_book_derivative_formulas():
    z = np.linspace(-6, 6, 101)
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(maps.sigmoid_grad(z), s * (1 - s),
                               rtol=1e-12)
    np.testing.assert_allclose(maps.tanh_grad(z), 1 - np.tanh(z) ** 2,
                               rtol=1e-12, atol=1e-15)
    # and both against centred differences, entry by entry (a sum over
    # all entries would add rounding noise to the small tails)
    h = 1e-5
    for f, g in ((maps.sigmoid, maps.sigmoid_grad),
                 (maps.tanh, maps.tanh_grad)):
        num = (f(z + h) - f(z - h)) / (2 * h)
        assert rel_error(num, g(z)) < 1e-7
    x = z[::10].copy()
    num = numerical_gradient(lambda v: np.sum(maps.tanh(v)), x)
    assert rel_error(num, maps.tanh_grad(x)) < 1e-5


def test_relu_grad_at_zero_is_zero_like_torch():
    z = np.array([-1.0, 0.0, 2.0])
    zt = t(z)
    torch.relu(zt).sum().backward()
    np.testing.assert_array_equal(maps.relu_grad(z), zt.grad.numpy())


def test_sigmoid_stable_for_large_inputs():
    z = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow warning fails
        s = maps.sigmoid(z)
        g = maps.sigmoid_grad(z)
    np.testing.assert_allclose(s, torch.sigmoid(torch.tensor(z)).numpy(),
                               rtol=1e-15, atol=0)
    assert np.all(np.isfinite(g)) and np.all(g >= 0)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5


@SETTINGS
@given(N=dims, K=st.integers(1, 7), seed=st.integers(0, 2**31 - 1))
def test_softmax_and_backward_match_torch(N, K, seed):
    rng = np.random.default_rng(seed)
    Z = 4 * rng.normal(size=(N, K))
    dA = rng.normal(size=(N, K))
    A, cache = maps.softmax_forward(Z)
    dZ = maps.softmax_backward(dA, cache)
    At, (gZ,) = vjp(lambda z: torch.softmax(z, dim=1), [Z], dA)
    np.testing.assert_allclose(A, At, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dZ, gZ, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-14)


def test_softmax_backward_equals_explicit_jacobian():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(1, 5))
    da = rng.normal(size=(1, 5))
    a = maps.softmax(z)[0]
    J = np.diag(a) - np.outer(a, a)
    dz = maps.softmax_backward(da, a[None, :])
    np.testing.assert_allclose(dz[0], J.T @ da[0], rtol=1e-12)


def test_softmax_stable_for_huge_logits():
    Z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = maps.softmax(Z)
    np.testing.assert_allclose(A, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]])


def test_affine_shape_errors_name_argument():
    X = np.ones((3, 4))
    with pytest.raises(ValueError, match="W must have shape"):
        maps.affine_forward(X, np.ones((4, 2)), np.ones(4))  # (in, out)
    with pytest.raises(ValueError, match="b must have shape"):
        maps.affine_forward(X, np.ones((2, 4)), np.ones(3))
    with pytest.raises(ValueError, match="X must have 2"):
        maps.affine_forward(np.ones(4), np.ones((2, 4)), np.ones(2))
    _, cache = maps.affine_forward(X, np.ones((2, 4)), np.ones(2))
    with pytest.raises(ValueError, match="dZ must have shape"):
        maps.affine_backward(np.ones((3, 3)), cache)


def test_bad_inputs_rejected_with_name():
    bad = np.ones((2, 3))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="X contains 1 non-finite"):
        maps.affine_forward(bad, np.ones((2, 3)), np.ones(2))
    with pytest.raises(TypeError, match="W is a torch tensor"):
        maps.affine_forward(np.ones((2, 3)), torch.ones(2, 3), np.ones(2))
    with pytest.raises(TypeError, match="Z must hold real numbers"):
        maps.relu_forward(np.array([["a"]]))
    A, cache = maps.tanh_forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="dA must have shape"):
        maps.tanh_backward(np.ones((3, 2)), cache)
    with pytest.raises(ValueError, match="activation must be one of"):
        maps.get_activation("swish")


def test_core_modules_do_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, dlopt.maps, dlopt.losses, dlopt.gradcheck, "
            "dlopt.mlp; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ------------------------------------------------ batch normalisation

def test_batchnorm_forward_and_backward_match_torch():
    import torch
    from dlopt.maps import batchnorm_backward, batchnorm_forward
    rng = np.random.default_rng(7)
    Z = rng.normal(size=(16, 5)) * 3 + 2
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    dout = rng.normal(size=(16, 5))
    out, cache = batchnorm_forward(Z, gamma, beta)
    dZ, dgamma, dbeta = batchnorm_backward(dout, cache)
    tZ, tg, tb = (torch.tensor(a, requires_grad=True)
                  for a in (Z, gamma, beta))
    tout = torch.nn.functional.batch_norm(tZ, None, None, tg, tb,
                                          training=True, eps=1e-5)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    for ours, ref in [(dZ, tZ), (dgamma, tg), (dbeta, tb)]:
        np.testing.assert_allclose(ours, ref.grad.numpy(), rtol=1e-10,
                                   atol=1e-12)


def test_batchnorm_gradient_check():
    from dlopt.gradcheck import numerical_gradient, rel_error
    from dlopt.maps import batchnorm_backward, batchnorm_forward
    rng = np.random.default_rng(8)
    Z, g, b = rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=3)
    W = rng.normal(size=(6, 3))                 # loss = sum(W * out)
    _, cache = batchnorm_forward(Z, g, b)
    dZ, dg, db = batchnorm_backward(W, cache)
    for x, d in [(Z, dZ), (g, dg), (b, db)]:
        num = numerical_gradient(
            lambda _: float((W * batchnorm_forward(Z, g, b)[0]).sum()), x)
        assert rel_error(d, num) < 1e-7
    # normalised columns: mean 0, variance 1 (before gamma and beta)
    out, _ = batchnorm_forward(Z, np.ones(3), np.zeros(3), eps=0.0)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(0), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="N >= 2"):
        batchnorm_forward(Z[:1], g, b)
