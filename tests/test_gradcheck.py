"""dlopt.gradcheck: passes on right gradients, fails (and says where) on
wrong ones."""
import numpy as np
import pytest
import torch

from dlopt import losses, maps
from dlopt.gradcheck import (GradCheckResult, check_gradients,
                             elementwise_rel_error, numerical_gradient,
                             rel_error)


def test_numerical_gradient_of_quadratic_and_restores_x():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    x = rng.normal(size=(4,))
    x0 = x.copy()
    num = numerical_gradient(lambda v: 0.5 * v @ A @ v, x)
    np.testing.assert_allclose(num, 0.5 * (A + A.T) @ x0, rtol=1e-8)
    np.testing.assert_array_equal(x, x0)  # bit-for-bit restored


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.arange(3.0)
    x0 = x.copy()

    def f(v):
        if v[0] != 0.0:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, x0)


def test_numerical_gradient_with_df_matches_vjp():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(3, 4))
    dA = rng.normal(size=(3, 4))
    num = numerical_gradient(lambda z: maps.softmax(z), Z, df=dA)
    A, cache = maps.softmax_forward(Z)
    assert rel_error(num, maps.softmax_backward(dA, cache)) < 1e-7


def test_numerical_gradient_requires_float64_numpy():
    with pytest.raises(TypeError, match="x must have dtype float64"):
        numerical_gradient(np.sum, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="x is a torch tensor"):
        numerical_gradient(np.sum, torch.ones(3))
    with pytest.raises(TypeError, match="x must be a NumPy array"):
        numerical_gradient(np.sum, [1.0, 2.0])
    with pytest.raises(ValueError, match="f must return a scalar"):
        numerical_gradient(lambda v: v, np.ones(2))


def test_rel_error_definition():
    a = np.array([1.0, 0.0, 100.0])
    b = np.array([1.1, 0.0, 100.0])
    # elementwise denominator, then max: entry 0 gives 0.1 / 2.1
    assert rel_error(a, b) == pytest.approx(0.1 / 2.1, rel=1e-12)
    np.testing.assert_allclose(elementwise_rel_error(a, b),
                               [0.1 / 2.1, 0.0, 0.0], rtol=1e-12)
    # 1e-8 floor when both are ~0
    assert rel_error(np.array([1e-12]), np.array([0.0])) == \
        pytest.approx(1e-4)
    with pytest.raises(ValueError, match="equal shapes"):
        rel_error(np.ones(2), np.ones(3))


def _affine_mse_problem(seed=0, N=5, D=4, M=3):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(M, D)), "b": rng.normal(size=M)}
    X = rng.normal(size=(N, D))
    Y = rng.normal(size=(N, M))

    def f(p):
        Z, _ = maps.affine_forward(X, p["W"], p["b"])
        return losses.mse(Z, Y)[0]

    Z, cache = maps.affine_forward(X, params["W"], params["b"])
    _, dZ = losses.mse(Z, Y)
    _, dW, db = maps.affine_backward(dZ, cache)
    return f, params, {"W": dW, "b": db}, (X, Y, Z, cache)


def test_check_passes_on_correct_gradients():
    f, params, grads, _ = _affine_mse_problem()
    before = {k: v.copy() for k, v in params.items()}
    res = check_gradients(f, params, grads)
    assert isinstance(res, GradCheckResult)
    assert res.ok and res.max_rel_error < 1e-7
    assert res.assert_ok() is res
    assert set(res.errors) == {"W", "b"}
    assert "PASSED" in str(res)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_check_fails_on_sign_flip_and_names_param():
    f, params, grads, _ = _affine_mse_problem()
    wrong = {"W": grads["W"], "b": -grads["b"]}
    res = check_gradients(f, params, wrong)
    assert not res.ok
    assert res.worst_param == "b"
    assert res.max_rel_error == pytest.approx(1.0)
    assert res.errors["W"] < 1e-7
    with pytest.raises(AssertionError, match=r"'b' at index \(\d,\)"):
        res.assert_ok()


def test_check_fails_on_missing_one_over_n():
    f, params, grads, (X, Y, Z, cache) = _affine_mse_problem(N=5)
    dZ_no_mean = Z - Y  # forgot the 1/N
    _, dW, db = maps.affine_backward(dZ_no_mean, cache)
    res = check_gradients(f, params, {"W": dW, "b": db})
    assert not res.ok
    # a factor N = 5 everywhere: rel error (5 - 1) / (5 + 1)
    assert res.max_rel_error == pytest.approx(4 / 6, rel=1e-6)
    msg = str(res)
    assert "FAILED" in msg and "too large" in msg


def test_check_fails_on_missing_transpose_single_entry():
    # A square W so that the transposed gradient has the right shape.
    f, params, grads, (X, Y, Z, cache) = _affine_mse_problem(D=3, M=3)
    _, dZ = losses.mse(Z, Y)
    wrong_W = (dZ.T @ X).T
    res = check_gradients(f, params, {"W": wrong_W, "b": grads["b"]})
    assert not res.ok and res.worst_param == "W"
    i, j = res.worst_index
    assert i != j  # the diagonal of a transpose is right
    assert res.analytic_value == wrong_W[i, j]
    assert res.numeric_value == pytest.approx(grads["W"][i, j], rel=1e-6)
    with pytest.raises(AssertionError) as info:
        res.assert_ok()
    text = str(info.value)
    assert "'W'" in text and f"({i}, {j})" in text
    assert "analytic" in text and "numeric" in text


def test_check_finds_the_single_wrong_entry():
    f, params, grads, _ = _affine_mse_problem()
    wrong = {k: v.copy() for k, v in grads.items()}
    wrong["W"][2, 1] += 0.5
    res = check_gradients(f, params, wrong)
    assert not res.ok
    assert (res.worst_param, res.worst_index) == ("W", (2, 1))
    assert res.errors["b"] < 1e-7


def test_check_nan_gradient_fails():
    f, params, grads, _ = _affine_mse_problem()
    wrong = {k: v.copy() for k, v in grads.items()}
    wrong["b"][1] = np.nan
    res = check_gradients(f, params, wrong)
    assert not res.ok and res.worst_param == "b" and res.worst_index == (1,)


def test_check_input_errors():
    f, params, grads, _ = _affine_mse_problem()
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        check_gradients(f, params, {"W": grads["W"]})
    with pytest.raises(ValueError, match=r"analytic\['W'\] has shape"):
        check_gradients(f, params, {"W": grads["W"].T, "b": grads["b"]})
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    with pytest.raises(TypeError, match=r"params\['W'\] must have dtype "
                                        r"float64"):
        check_gradients(f, p32, grads)
    with pytest.raises(TypeError, match=r"analytic\['b'\] is a torch"):
        check_gradients(f, params, {"W": grads["W"],
                                    "b": torch.tensor(grads["b"])})
