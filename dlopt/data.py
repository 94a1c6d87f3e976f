"""Small real data sets that ship offline with scikit-learn.

Nothing here downloads: scikit-learn bundles the Iris measurements
(Fisher, 1936) and the 8x8 handwritten digits (UCI), so every chapter and
test runs without a network. ``load_idx`` reads MNIST-style IDX files
that a reader already has on disk.
"""
from __future__ import annotations

import numpy as np

__all__ = ["load_iris_2d", "load_digits", "standardize", "one_hot",
           "load_idx", "shift_images"]

_IRIS_FEATURES = ("sepal length", "sepal width", "petal length",
                  "petal width")


def standardize(X_train, *others):
    """Scale columns to zero mean and unit variance using ``X_train`` only.

    Returns the scaled ``X_train`` followed by each of ``others`` scaled
    with the *training* mean and standard deviation (so no information
    leaks from validation or test data). Constant columns are left at 0.
    """
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    out = [(X_train - mean) / std] + [(X - mean) / std for X in others]
    return out[0] if not others else tuple(out)


def one_hot(y, num_classes: int) -> np.ndarray:
    """Integer labels ``y`` of shape (N,) -> one-hot array (N, K)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"y must be a 1-D array of integer labels, got "
                         f"shape {y.shape} and dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"y has labels outside 0..{num_classes - 1}: "
                         f"min {y.min()}, max {y.max()}")
    out = np.zeros((y.shape[0], num_classes))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


def load_iris_2d(features=("petal length", "petal width"),
                 standardized: bool = True):
    """Fisher's Iris flowers measured on two features.

    Returns ``(X, y, names)``: ``X`` of shape (150, 2) in float64 (zero
    mean, unit variance if ``standardized``), integer labels ``y`` of
    shape (150,) in {0, 1, 2}, and the species names.
    """
    from sklearn.datasets import load_iris

    unknown = [f for f in features if f not in _IRIS_FEATURES]
    if unknown or len(features) != 2:
        raise ValueError(f"features must be two of {_IRIS_FEATURES}, got "
                         f"{features!r}")
    iris = load_iris()
    cols = [_IRIS_FEATURES.index(f) for f in features]
    X = iris.data[:, cols].astype(np.float64)
    if standardized:
        X = standardize(X)
    return X, iris.target.astype(np.int64), list(iris.target_names)


def load_digits(val_fraction: float = 0.2, test_fraction: float = 0.2,
                seed: int = 0):
    """The 1,797 8x8 handwritten digits, split into train/val/test.

    Pixels are scaled to [0, 1]. Returns a dict with ``X_train`` (N, 64),
    ``y_train`` (N,), and likewise ``_val`` and ``_test``; the split is
    stratified by class and fixed by ``seed``.
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    if not (0 < test_fraction < 1 and 0 <= val_fraction < 1
            and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in [0, 1) "
                         "and sum to less than 1, got "
                         f"{val_fraction} and {test_fraction}")
    digits = _load()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_fraction, stratify=y, random_state=seed)
    out = {"X_test": X_test, "y_test": y_test}
    if val_fraction > 0:
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=val_fraction / (1 - test_fraction),
            stratify=y_rest, random_state=seed)
        out.update(X_val=X_val, y_val=y_val)
    else:
        X_train, y_train = X_rest, y_rest
    out.update(X_train=X_train, y_train=y_train)
    return out


# IDX type codes (LeCun et al.'s MNIST file format) -> big-endian dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4",
              0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path) -> np.ndarray:
    """Read an IDX file (the format of the MNIST files), maybe gzipped.

    Layout: two zero bytes, a type code byte, the number of dimensions
    ``d``, then ``d`` big-endian uint32 sizes, then the data in C order.
    ``train-images-idx3-ubyte`` gives a uint8 array (60000, 28, 28),
    ``train-labels-idx1-ubyte`` a uint8 array (60000,). Files ending in
    ``.gz`` are decompressed. Nothing is downloaded.

    Returns the array in native byte order.
    """
    import gzip
    import os

    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file: it must start with "
                         f"two zero bytes")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code {code:#04x}")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{path}: truncated header ({ndim} dimensions)")
    shape = tuple(int(v) for v in
                  np.frombuffer(raw[4:head], dtype=">u4"))
    dtype = np.dtype(_IDX_TYPES[code])
    want = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - head != want:
        raise ValueError(f"{path}: header says shape {shape} "
                         f"({want} bytes of data) but the file holds "
                         f"{len(raw) - head}")
    data = np.frombuffer(raw[head:], dtype=dtype).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def shift_images(X, dx: int, dy: int, side: int = 8) -> np.ndarray:
    """Shift flattened square images by ``dx`` columns right and ``dy``
    rows down, filling the uncovered border with zeros (background).

    ``X`` has shape (N, side * side) (the digits are 8x8); the result has
    the same shape. A small shift keeps the label: data augmentation.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != side * side:
        raise ValueError(f"X must have shape (N, {side * side}) for "
                         f"{side}x{side} images, got {X.shape}")
    for name, v in (("dx", dx), ("dy", dy)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) \
                or abs(v) >= side:
            raise ValueError(f"{name} must be an int with |{name}| < "
                             f"{side}, got {v!r}")
    img = X.reshape(-1, side, side)
    out = np.zeros_like(img)
    rs = slice(max(dy, 0), side + min(dy, 0))
    rd = slice(max(-dy, 0), side + min(-dy, 0))
    cs = slice(max(dx, 0), side + min(dx, 0))
    cd = slice(max(-dx, 0), side + min(-dx, 0))
    out[:, rs, cs] = img[:, rd, cd]
    return out.reshape(X.shape)
