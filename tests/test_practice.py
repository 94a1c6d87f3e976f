"""dlopt.quantize, dlopt.distill, dlopt.data.load_idx and every formula
of chapter 9, Practice: a digit classifier end to end."""
import gzip

import numpy as np
import pytest
import torch
from formulas import covers

from dlopt.data import load_digits, load_idx
from dlopt.distill import distillation_loss
from dlopt.gradcheck import check_gradients
from dlopt.mlp import accuracy, init_mlp, mlp_forward, predict
from dlopt.quantize import (QTensor, dequantize, quantize, quantize_params,
                            quantized_mlp_forward, size_in_bytes)

F = torch.nn.functional


def t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---------------------------------------------------------------- IDX

def _write_idx(path, arr, code, compress=False):
    arr = np.asarray(arr)
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
          0x0E: ">f8"}[code]
    raw = (bytes([0, 0, code, arr.ndim])
           + np.asarray(arr.shape, dtype=">u4").tobytes()
           + arr.astype(dt).tobytes())
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(raw)


@pytest.mark.parametrize("code,dtype", [(0x08, np.uint8), (0x09, np.int8),
                                        (0x0B, np.int16), (0x0C, np.int32),
                                        (0x0D, np.float32),
                                        (0x0E, np.float64)])
@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_round_trips_every_type(tmp_path, code, dtype, compress):
    rng = np.random.default_rng(code)
    arr = (rng.integers(0, 100, size=(3, 4, 5)) - (0 if code == 8 else 40)
           ).astype(dtype)
    name = "x-idx3" + (".gz" if compress else "")
    _write_idx(tmp_path / name, arr, code, compress)
    got = load_idx(tmp_path / name)
    assert got.dtype == dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_load_idx_reads_mnist_style_images_and_labels(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28))
    labels = np.arange(7) % 10
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs, 0x08)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, 0x08)
    X = load_idx(tmp_path / "t10k-images-idx3-ubyte")
    y = load_idx(tmp_path / "t10k-labels-idx1-ubyte")
    assert X.shape == (7, 28, 28) and y.shape == (7,)
    np.testing.assert_array_equal(X, imgs)
    np.testing.assert_array_equal(y, labels)
    # the big-endian header: 0x00000803 then 7, 28, 28
    head = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()[:16]
    assert head == bytes.fromhex("00000803" "00000007" "0000001c"
                                 "0000001c")


def test_load_idx_rejects_bad_files(tmp_path):
    (tmp_path / "a").write_bytes(b"PK\x03\x04....")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(tmp_path / "a")
    (tmp_path / "b").write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 0]))
    with pytest.raises(ValueError, match="unknown IDX type"):
        load_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(ValueError, match="header says shape"):
        load_idx(tmp_path / "c")


# ------------------------------------------------ the chapter's model

@covers("eq-prac-softmax-model", "eq-prac-ce")
def test_softmax_classifier_matches_torch_linear_and_cross_entropy():
    d = load_digits(seed=0)
    X, y = d["X_train"][:32], d["y_train"][:32]
    p = init_mlp([64, 10], seed=0)
    Z, _ = mlp_forward(p, X)
    tW, tb = t(p["W1"], True), t(p["b1"], True)
    tZ = F.linear(t(X), tW, tb)
    np.testing.assert_allclose(Z, tZ.detach().numpy(), rtol=1e-12)
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    np.testing.assert_allclose(P, F.softmax(tZ, 1).detach().numpy(),
                               rtol=1e-12)
    from dlopt.mlp import mlp_loss_and_grads
    loss, grads = mlp_loss_and_grads(p, X, y)
    ref = F.cross_entropy(tZ, torch.from_numpy(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grads["W1"], tW.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grads["b1"], tb.grad.numpy(), rtol=1e-10)


@covers("eq-prac-ce-grad")
def test_cross_entropy_gradient_is_p_minus_y_over_n():
    from dlopt.losses import softmax_cross_entropy
    rng = np.random.default_rng(1)
    Z, y = rng.normal(size=(9, 10)), rng.integers(0, 10, size=9)
    _, dZ = softmax_cross_entropy(Z, y)
    tZ = t(Z, True)
    F.cross_entropy(tZ, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(dZ, tZ.grad.numpy(), rtol=1e-10)
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    Y = np.eye(10)[y]
    np.testing.assert_allclose(dZ, (P - Y) / 9, rtol=1e-10)


@covers("eq-prac-accuracy")
def test_accuracy_compares_integer_labels():
    rng = np.random.default_rng(2)
    Z, y = rng.normal(size=(50, 10)), rng.integers(0, 10, size=50)
    want = float((torch.from_numpy(Z).argmax(1)
                  == torch.from_numpy(y)).double().mean())
    assert accuracy(Z, y) == want
    assert accuracy(np.argmax(Z, 1), y) == want
    with pytest.raises(TypeError, match="integer class labels"):
        accuracy(np.argmax(Z, 1).astype(float), y)


# --------------------------------------------------------- distillation

def _torch_distill(Z, Zt, y, T, a):
    tZ = t(Z, True)
    hard = F.cross_entropy(tZ, torch.from_numpy(y))
    soft = F.kl_div(F.log_softmax(tZ / T, 1), F.log_softmax(t(Zt) / T, 1),
                    log_target=True, reduction="batchmean")
    loss = (1 - a) * hard + a * T * T * soft
    loss.backward()
    return loss.item(), tZ.grad.numpy()


@covers("eq-prac-distill", "eq-prac-distill-grad")
@pytest.mark.parametrize("T,a", [(1.0, 0.0), (1.0, 1.0), (4.0, 0.5),
                                 (10.0, 0.9)])
def test_distillation_loss_and_gradient_match_torch(T, a):
    rng = np.random.default_rng(int(T * 10 + a * 100))
    Z, Zt = rng.normal(size=(7, 10)), 3 * rng.normal(size=(7, 10))
    y = rng.integers(0, 10, size=7)
    loss, dZ = distillation_loss(Z, Zt, y, T=T, a=a)
    ref, g = _torch_distill(Z, Zt, y, T, a)
    assert loss == pytest.approx(ref, rel=1e-10)
    np.testing.assert_allclose(dZ, g, rtol=1e-9, atol=1e-15)
    check_gradients(lambda q: distillation_loss(q["Z"], Zt, y, T, a)[0],
                    {"Z": Z}, {"Z": dZ}, tol=1e-5).assert_ok()


def test_distillation_with_the_teacher_as_student_has_only_the_hard_term():
    rng = np.random.default_rng(3)
    Z, y = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)
    from dlopt.losses import softmax_cross_entropy
    loss, _ = distillation_loss(Z, Z, y, T=3.0, a=0.4)
    assert loss == pytest.approx(0.6 * softmax_cross_entropy(Z, y)[0])


def test_distillation_errors_name_the_argument():
    Z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="Z_teacher"):
        distillation_loss(Z, np.zeros((2, 4)), [0, 1])
    with pytest.raises(ValueError, match="T must be"):
        distillation_loss(Z, Z, [0, 1], T=0)
    with pytest.raises(ValueError, match="a must be in"):
        distillation_loss(Z, Z, [0, 1], a=1.5)


# --------------------------------------------------------- quantization

@covers("eq-prac-quant", "eq-prac-quant-error")
@pytest.mark.parametrize("shape", [(5,), (4, 7), (10, 64)])
def test_quantize_matches_torch_per_tensor_and_bounds_the_error(shape):
    x = np.random.default_rng(len(shape)).normal(size=shape)
    qt = quantize(x)
    s = float(np.max(np.abs(x))) / 127
    assert float(qt.scale) == pytest.approx(s, rel=1e-15)
    # torch's rounding (half to even) in float64, clamped to int8 range
    ref = torch.clamp(torch.round(t(x) / s), -127, 127).numpy()
    np.testing.assert_array_equal(qt.q, ref)
    assert qt.q.dtype == np.int8 and qt.q.min() >= -127
    assert np.max(np.abs(dequantize(qt) - x)) <= s / 2 + 1e-12
    assert np.max(np.abs(qt.q)) == 127


@covers("eq-prac-quant")
def test_per_channel_scales_each_row():
    W = np.random.default_rng(4).normal(size=(6, 9)) * np.arange(1, 7)[:,
                                                                        None]
    qt = quantize(W, per_channel=True)
    np.testing.assert_allclose(qt.scale[:, 0],
                               np.abs(W).max(1) / 127, rtol=1e-15)
    sc = t(np.abs(W).max(1) / 127)[:, None]
    ref = torch.clamp(torch.round(t(W) / sc), -127, 127).numpy()
    np.testing.assert_array_equal(qt.q, ref)
    assert np.all(np.abs(dequantize(qt) - W) <= qt.scale / 2 + 1e-12)


@covers("eq-prac-int-matmul")
def test_integer_forward_equals_float_forward_on_dequantized_values():
    rng = np.random.default_rng(5)
    p = init_mlp([8, 6, 3], seed=5)
    X = rng.normal(size=(4, 8))
    qp = quantize_params(p)
    got = quantized_mlp_forward(qp, X)
    # Same computation in floating point, layer by layer.
    A = X
    for l in (1, 2):
        qa = quantize(A)
        Z = dequantize(qa) @ dequantize(qp[f"W{l}"]).T + p[f"b{l}"]
        A = np.maximum(Z, 0) if l == 1 else Z
    np.testing.assert_allclose(got, A, rtol=1e-10, atol=1e-12)
    # and close to the float network
    ref, _ = mlp_forward(p, X)
    assert np.max(np.abs(got - ref)) < 0.05 * np.max(np.abs(ref))


def test_quantized_digit_classifier_keeps_its_accuracy_and_shrinks():
    from dlopt import optim
    from dlopt.mlp import mlp_loss_and_grads
    from dlopt.train import fit
    d = load_digits(seed=0)
    p0 = init_mlp([64, 32, 10], seed=0)
    p, _ = fit(p0, mlp_loss_and_grads, (d["X_train"], d["y_train"]),
               optim.adam(1e-2), epochs=15, batch_size=64, progress=False)
    acc = accuracy(predict(p, d["X_test"]), d["y_test"])
    qp = quantize_params(p)
    qacc = accuracy(quantized_mlp_forward(qp, d["X_test"]), d["y_test"])
    assert acc > 0.9 and abs(acc - qacc) < 0.02
    assert size_in_bytes(qp) < 0.3 * size_in_bytes(p)


def test_quantize_handles_zeros_and_bad_input():
    qt = quantize(np.zeros((2, 3)), per_channel=True)
    assert np.all(dequantize(qt) == 0)
    with pytest.raises(ValueError, match="per_channel"):
        quantize(np.zeros(3), per_channel=True)
    with pytest.raises(TypeError, match="QTensor"):
        quantized_mlp_forward({"W1": np.ones((2, 2)), "b1": np.zeros(2)},
                              np.ones((1, 2)))
    assert isinstance(quantize_params(init_mlp([2, 2], seed=0))["W1"],
                      QTensor)


# --------------------------------------------------------- augmentation

def test_shift_images_moves_pixels_and_fills_zeros():
    from dlopt.data import shift_images
    X = np.arange(1, 65, dtype=float).reshape(1, 64)
    img = X.reshape(8, 8)
    right = shift_images(X, 1, 0).reshape(8, 8)
    np.testing.assert_array_equal(right[:, 1:], img[:, :-1])
    assert np.all(right[:, 0] == 0)
    up = shift_images(X, 0, -2).reshape(8, 8)
    np.testing.assert_array_equal(up[:-2], img[2:])
    assert np.all(up[-2:] == 0)
    # torch.roll then zero the wrapped border gives the same image
    ref = torch.roll(torch.from_numpy(img), shifts=(1, -1), dims=(0, 1))
    ref[0, :] = 0
    ref[:, -1] = 0
    np.testing.assert_array_equal(shift_images(X, -1, 1).reshape(8, 8),
                                  ref.numpy())
    np.testing.assert_array_equal(shift_images(X, 0, 0), X)
    with pytest.raises(ValueError, match="dx"):
        shift_images(X, 8, 0)
    with pytest.raises(ValueError, match="X must have shape"):
        shift_images(np.zeros((2, 10)), 1, 0)
