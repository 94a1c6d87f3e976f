"""dlopt.losses: values vs torch.nn.functional, gradients vs autograd."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from dlopt import losses
from dlopt.maps import softmax, softmax_backward

SETTINGS = settings(deadline=None, max_examples=40)
dims = st.integers(min_value=1, max_value=6)
seeds = st.integers(0, 2**31 - 1)


def tt(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def autograd(fn, x, *rest):
    xt = tt(x, grad=True)
    val = fn(xt, *rest)
    val.backward()
    return val.item(), xt.grad.numpy()


def check(ours, ref_val, ref_grad):
    val, grad = ours
    assert isinstance(val, float)
    np.testing.assert_allclose(val, ref_val, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


# Our regression losses sum over the K outputs and average over the N
# examples; torch's reduction='mean' averages over all N*K elements.
@SETTINGS
@given(N=dims, K=dims, seed=seeds, vec=st.booleans())
def test_regression_losses_vs_torch(N, K, seed, vec):
    rng = np.random.default_rng(seed)
    shape = (N, K) if vec else (N,)
    k = K if vec else 1
    Yh, Y = 2 * rng.normal(size=shape), 2 * rng.normal(size=shape)
    Yt = tt(Y)
    check(losses.mse(Yh, Y),
          *autograd(lambda a: k / 2 * F.mse_loss(a, Yt), Yh))
    check(losses.mae(Yh, Y),
          *autograd(lambda a: k * F.l1_loss(a, Yt), Yh))
    for delta in (0.5, 1.0, 3.0):
        check(losses.huber(Yh, Y, delta=delta),
              *autograd(lambda a: k * F.huber_loss(a, Yt, delta=delta),
                        Yh))


def test_mse_book_formula():
    rng = np.random.default_rng(0)
    Yh, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    val, grad = losses.mse(Yh, Y)
    expect = sum(np.sum((Yh[n] - Y[n]) ** 2) for n in range(5)) / (2 * 5)
    assert val == pytest.approx(expect, rel=1e-13)
    np.testing.assert_allclose(grad, (Yh - Y) / 5, rtol=1e-13)


def test_huber_at_the_kink_vs_torch():
    # residuals exactly at +-delta and 0, where the two pieces meet
    Y = np.zeros(5)
    Yh = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    check(losses.huber(Yh, Y, delta=1.0),
          *autograd(lambda a: F.huber_loss(a, tt(Y)), Yh))


def test_mae_grad_zero_where_equal():
    val, grad = losses.mae(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    assert val == 1.0
    np.testing.assert_array_equal(grad, [0.0, 0.5])


@SETTINGS
@given(N=dims, K=dims, seed=seeds, vec=st.booleans())
def test_binary_cross_entropy_vs_torch(N, K, seed, vec):
    rng = np.random.default_rng(seed)
    shape = (N, K) if vec else (N,)
    k = K if vec else 1
    z = 3 * rng.normal(size=shape)
    y = rng.uniform(size=shape)
    y[..., 0] = 1.0  # hard and soft targets
    p = 1 / (1 + np.exp(-z))
    yt = tt(y)
    check(losses.binary_cross_entropy(p, y),
          *autograd(lambda a: k * F.binary_cross_entropy(a, yt), p))
    check(losses.binary_cross_entropy_with_logits(z, y),
          *autograd(lambda a: k * F.binary_cross_entropy_with_logits(
              a, yt), z))
    # the logits gradient is (sigma(z) - y) / N
    _, g = losses.binary_cross_entropy_with_logits(z, y)
    np.testing.assert_allclose(g, (p - y) / N, rtol=1e-12, atol=1e-15)


def test_bce_with_logits_stable_for_large_logits():
    z = np.array([1e4, -1e4, 800.0, -800.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        val, grad = losses.binary_cross_entropy_with_logits(z, y)
    ref = F.binary_cross_entropy_with_logits(tt(z), tt(y)).item()
    assert val == pytest.approx(ref, rel=1e-12)
    assert val == pytest.approx((1e4 + 1e4) / 4, rel=1e-12)
    np.testing.assert_allclose(grad, [0.25, -0.25, 0.0, 0.0])


def test_bce_rejects_probabilities_outside_open_interval():
    y = np.array([0.0, 1.0])
    for p in ([0.0, 0.5], [0.5, 1.0], [1.2, 0.5], [-0.1, 0.5]):
        with pytest.raises(ValueError, match="p must be probabilities"):
            losses.binary_cross_entropy(np.array(p), y)
    with pytest.raises(ValueError, match="y must lie in"):
        losses.binary_cross_entropy(np.array([0.5, 0.5]),
                                    np.array([0.0, 2.0]))


@SETTINGS
@given(N=dims, K=st.integers(2, 7), seed=seeds, onehot=st.booleans())
def test_softmax_cross_entropy_vs_torch(N, K, seed, onehot):
    rng = np.random.default_rng(seed)
    Z = 3 * rng.normal(size=(N, K))
    y = rng.integers(0, K, size=N)
    target = np.eye(K)[y] if onehot else y
    val, grad = losses.softmax_cross_entropy(Z, target)
    ref = autograd(lambda a: F.cross_entropy(a, torch.tensor(y)), Z)
    check((val, grad), *ref)
    np.testing.assert_allclose(grad, (softmax(Z) - np.eye(K)[y]) / N,
                               rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_soft_targets_vs_torch():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(4, 5))
    P = softmax(rng.normal(size=(4, 5)))
    check(losses.softmax_cross_entropy(Z, P),
          *autograd(lambda a: F.cross_entropy(a, tt(P)), Z))


def test_softmax_cross_entropy_stable_for_logits_1e4():
    Z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 5e3], [1e4, 1e4, 0.0]])
    y = np.array([0, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        val, grad = losses.softmax_cross_entropy(Z, y)
    assert np.isfinite(val) and np.all(np.isfinite(grad))
    ref = autograd(lambda a: F.cross_entropy(a, torch.tensor(y)), Z)
    check((val, grad), *ref)
    assert val == pytest.approx((0 + 2e4 + np.log(2)) / 3, rel=1e-12)


def test_cross_entropy_wrt_probabilities_is_not_p_minus_y():
    rng = np.random.default_rng(1)
    N, K = 4, 3
    Z = rng.normal(size=(N, K))
    y = np.array([0, 2, 1, 1])
    Y = np.eye(K)[y]
    P = softmax(Z)
    val, dP = losses.cross_entropy_from_probs(P, y)
    # vs autograd w.r.t. the probabilities themselves
    ref = autograd(lambda p: -(tt(Y) * torch.log(p)).sum() / N, P)
    check((val, dP), *ref)
    np.testing.assert_allclose(dP, -Y / P / N, rtol=1e-13)
    np.testing.assert_array_equal(
        losses.cross_entropy_grad_wrt_probs(P, y), dP)
    # The article's "yhat - y" is the gradient w.r.t. the logits: pushing
    # -Y/P/N back through softmax gives exactly (P - Y)/N ...
    dZ = softmax_backward(dP, P)
    np.testing.assert_allclose(dZ, (P - Y) / N, rtol=1e-10, atol=1e-15)
    # ... and it is not the gradient w.r.t. the probabilities.
    assert not np.allclose(dP, (P - Y) / N)
    assert val == pytest.approx(losses.softmax_cross_entropy(Z, y)[0],
                                rel=1e-12)


def test_shape_mismatch_is_an_error_not_a_broadcast():
    with pytest.raises(ValueError, match=r"Y must have the same shape"):
        losses.mse(np.ones((4, 1)), np.ones(4))
    with pytest.raises(ValueError, match=r"y must have the same shape"):
        losses.binary_cross_entropy_with_logits(np.ones(4), np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        losses.softmax_cross_entropy(np.ones((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"y must have shape \(3, 2\)"):
        losses.softmax_cross_entropy(np.ones((3, 2)), np.eye(3))


def test_bad_labels_rejected():
    Z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\]"):
        losses.softmax_cross_entropy(Z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"y must hold labels"):
        losses.softmax_cross_entropy(Z, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="y must hold integer class"):
        losses.softmax_cross_entropy(Z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="y of shape .* one-hot"):
        losses.softmax_cross_entropy(Z, np.full((3, 4), 0.5))
    with pytest.raises(TypeError, match="y must hold integer class"):
        losses.softmax_cross_entropy(Z, np.array([True, False, True]))
    with pytest.raises(TypeError, match="y is a torch tensor"):
        losses.softmax_cross_entropy(Z, torch.tensor([0, 1, 2]))


def test_non_finite_and_torch_inputs_rejected_with_name():
    nan = np.array([1.0, np.nan])
    ok = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="Y_hat contains"):
        losses.mse(nan, ok)
    with pytest.raises(ValueError, match="Y contains"):
        losses.huber(ok, np.array([np.inf, 0.0]))
    with pytest.raises(ValueError, match="z contains"):
        losses.binary_cross_entropy_with_logits(nan, ok)
    with pytest.raises(ValueError, match="Z contains"):
        losses.softmax_cross_entropy(np.array([[np.nan, 0.0]]),
                                     np.array([0]))
    with pytest.raises(TypeError, match="Y_hat is a torch tensor"):
        losses.mse(torch.ones(2), ok)
    with pytest.raises(ValueError, match="delta must be > 0"):
        losses.huber(ok, ok, delta=0.0)
