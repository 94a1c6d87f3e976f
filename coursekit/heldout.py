"""Assignment 6's private held-out digits: the instructor's file.

Without it, a06 is graded on MNIST's public test digits converted to the
8x8 format of scikit-learn's digits (``coursekit/checks/a06_practice.py``):
public data, which a notebook can embed. With it, the grader measures the
student's ``predict`` on digits the student can never have.

The file is named by ``COURSE_A06_HELDOUT`` (or ``python -m coursekit
--a06-heldout FILE ...``, :class:`coursekit.config.CourseConfig`'s
``a06_heldout``). It is an ``.npz`` (``np.savez``) with two arrays:

* ``X``: ``(n, 64)`` integer block counts 0..16 (the optdigits format of
  scikit-learn's digits, before the notebook's division by 16), or
  ``(n, 28, 28)`` / ``(n, 784)`` images, ink bright on dark, floats in
  [0, 1] or ``uint8`` 0..255, which the grader converts with the same
  conversion as the public digits;
* ``y``: ``(n,)`` integer labels 0..9, at least :data:`MIN_PER_CLASS` of
  each.

It is read with ``allow_pickle=False`` and validated (:func:`read`; every
error names the file and what is wrong). Its folder is hidden from the
student's kernel like the rest of the grader's files
(:func:`coursekit.execute.default_sandbox_settings`); the digits reach the
student's ``predict`` without labels, and labels and accuracy stay in the
grader.

``python -m coursekit heldout`` (:func:`make`) writes such a file from
digits the instructor supplies (an ``.npz``, MNIST's IDX files, or a
folder of images ``<folder>/<label>/*.png``), or from the public digits
with a secret random affine jitter (``--public --jitter``): a fresh
subset, each digit rotated, shifted and scaled a little before the
conversion, so no table of the public conversion matches them exactly.
What each defends against is in docs/deployment.md.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import stat
import sys
from pathlib import Path

import numpy as np

ENV = "COURSE_A06_HELDOUT"
MIN_PER_CLASS = 100       # digits per class, at least
# The jitter of ``--jitter`` (per digit, uniform in +-): measured in
# docs/deployment.md (bench: tests/test_a06_heldout.py).
ROTATION_DEG, SHIFT_PX, SCALE = 5.0, 1.0, 0.05
# Top-level folders the kernel needs (coursekit.execute keeps them
# visible): the file's folder may not be one of them.
SYSTEM = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc",
          "dev", "proc", "sys", "var", "boot", "run", "tmp"}


class HeldoutError(ValueError):
    """The instructor's held-out file cannot be used (the message says
    which file and why)."""


# -- where the file is, and whether the kernel could reach it -----------
def configured(environ=None) -> Path | None:
    """The file ``COURSE_A06_HELDOUT`` names (absolute), or None."""
    env = os.environ if environ is None else environ
    text = env.get(ENV, "").strip()
    return Path(text).expanduser().resolve() if text else None


def kept_paths() -> list[str]:
    """What the sandbox binds back into the kernel's view (the Python
    environment): a held-out folder there would be visible."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    paths |= {p for p in sys.path if p and os.path.isdir(p)
              and "site-packages" in p}
    return sorted(os.path.realpath(p) for p in paths)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def location_problem(path: Path) -> str | None:
    """Why the file's folder cannot be hidden from the kernel (None: it
    can). The sandbox hides the folder; a system folder, the Python
    environment or the course repository would not do."""
    from coursekit import pipeline
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    parts = [p for p in folder.split("/") if p]
    if not parts or (len(parts) == 1 and parts[0] in SYSTEM
                     and parts[0] != "tmp"):
        return (f"its folder {folder} is a system folder the student's "
                f"kernel needs; put the file in a folder of its own, e.g. "
                f"/srv/coursekit-private/ (chmod 700)")
    for keep in kept_paths():
        if _under(folder, keep):
            return (f"its folder {folder} is inside {keep}, which the "
                    f"sandbox shows the student's kernel (the Python "
                    f"environment); put the file in a folder of its own, "
                    f"e.g. /srv/coursekit-private/")
    repo = os.path.realpath(pipeline.REPO)
    if _under(folder, repo):
        return (f"it is inside the course repository {repo}; keep it "
                f"outside (a file there can be committed and published "
                f"with the course), e.g. in /srv/coursekit-private/")
    return None


def hide_folder(environ=None) -> str | None:
    """The folder the sandbox must hide for the configured file (None if
    none is configured or it cannot be used: grading then refuses it)."""
    path = configured(environ)
    if path is None or location_problem(path):
        return None
    return os.path.dirname(str(path))


# -- reading and validating ---------------------------------------------
def read(path) -> tuple[np.ndarray, np.ndarray]:
    """The file's digits as block counts ``(n, 64)`` uint8 and labels
    ``(n,)`` int64, or :class:`HeldoutError` naming the file and what is
    wrong. Images are converted (``to_optdigits``, as the public digits)."""
    where = f"held-out digits {path}"
    X, y = load_npz(path, where)
    counts = _counts(X, where)
    labels = _labels(y, len(counts), where)
    return counts, labels


def load_npz(path, where: str | None = None) -> tuple[np.ndarray,
                                                      np.ndarray]:
    """Arrays ``X`` and ``y`` of an .npz, read without pickle (not yet
    validated), or :class:`HeldoutError`."""
    path = Path(path)
    where = where or str(path)
    if not path.is_file():
        raise HeldoutError(f"{where}: no such file (set {ENV} to the "
                           f".npz made by `python -m coursekit heldout`)")
    with open(path, "rb") as f:
        magic = f.read(6)
    if not magic.startswith((b"PK\x03\x04", b"\x93NUMPY")):
        raise HeldoutError(f"{where}: not an .npz file (it starts with "
                           f"{magic!r}); save it with np.savez(file, X=..., "
                           f"y=...)")
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise HeldoutError(f"{where}: cannot be read without pickle "
                           f"({exc}); save plain arrays with np.savez(file, "
                           f"X=..., y=...)") from None
    except (OSError, EOFError) as exc:
        raise HeldoutError(f"{where}: not an .npz file ({exc}); save it "
                           f"with np.savez(file, X=..., y=...)") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise HeldoutError(f"{where}: holds a single array; expected an "
                           f".npz with arrays X and y (np.savez(file, "
                           f"X=..., y=...))")
    with z:
        missing = [k for k in ("X", "y") if k not in z.files]
        if missing:
            raise HeldoutError(f"{where}: no array {' or '.join(missing)} "
                               f"(it holds {sorted(z.files)}); expected X "
                               f"(digits) and y (labels)")
        try:
            return z["X"], z["y"]
        except (ValueError, OSError) as exc:
            raise HeldoutError(f"{where}: cannot be read without pickle "
                               f"({exc})") from None


def _counts(X: np.ndarray, where: str) -> np.ndarray:
    if X.dtype.kind not in "iuf":
        raise HeldoutError(f"{where}: X has dtype {X.dtype}; expected "
                           f"integer block counts 0..16 or float images")
    if X.size == 0:
        raise HeldoutError(f"{where}: X holds no digits (shape {X.shape})")
    if X.dtype.kind == "f" and not np.all(np.isfinite(X)):
        bad = int(np.sum(~np.isfinite(X)))
        raise HeldoutError(f"{where}: X holds {bad} NaN or infinite "
                           f"value(s)")
    if X.ndim == 2 and X.shape[1] == 64:
        if not np.array_equal(X, np.round(X)):
            hint = (" (it looks like counts / 16, the notebook's scaling: "
                    "save X * 16)" if X.min() >= 0 and X.max() <= 1 else "")
            raise HeldoutError(f"{where}: X (n, 64) must hold integer "
                               f"block counts 0..16{hint}")
        if X.min() < 0 or X.max() > 16:
            raise HeldoutError(f"{where}: X (n, 64) block counts must be "
                               f"in 0..16; found {X.min()}..{X.max()}")
        return X.astype(np.uint8)
    if X.ndim == 2 and X.shape[1] == 784:
        X = X.reshape(-1, 28, 28)
    if X.ndim == 3 and X.shape[1:] == (28, 28):
        if X.dtype == np.uint8:
            images = X / 255.0
        elif X.dtype.kind == "f" and X.min() >= 0 and X.max() <= 1:
            images = X.astype(np.float64)
        else:
            raise HeldoutError(f"{where}: X (n, 28, 28) images must be "
                               f"floats in [0, 1] or uint8 0..255; found "
                               f"{X.dtype} {X.min()}..{X.max()}")
        from coursekit.checks.a06_practice import to_optdigits
        return to_optdigits(images).reshape(-1, 64).astype(np.uint8)
    raise HeldoutError(f"{where}: X has shape {X.shape}; expected (n, 64) "
                       f"block counts 0..16 (scikit-learn's 8x8 digits) or "
                       f"(n, 28, 28) images in [0, 1]")


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise HeldoutError(f"{where}: y has shape {y.shape}; expected "
                           f"({n},), one label per digit of X")
    if y.dtype.kind not in "iu":
        raise HeldoutError(f"{where}: y has dtype {y.dtype}; expected "
                           f"integer labels 0..9 (y.astype(int))")
    if n and (y.min() < 0 or y.max() > 9):
        raise HeldoutError(f"{where}: labels must be 0..9; found "
                           f"{y.min()}..{y.max()}")
    per = np.bincount(y.astype(np.int64), minlength=10)
    few = {k: int(c) for k, c in enumerate(per) if c < MIN_PER_CLASS}
    if few:
        shown = ", ".join(f"{k}: {c}" for k, c in few.items())
        raise HeldoutError(f"{where}: too few digits of class(es) {shown}; "
                           f"the grader needs at least {MIN_PER_CLASS} of "
                           f"each of the 10 digits")
    return y.astype(np.int64)


def file_key(path) -> str:
    """A digest of the file's bytes: grades depend on it (a resumed class
    run regrades everyone when the file changes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def readable_by_others(path) -> bool:
    return bool(os.stat(path).st_mode & (stat.S_IROTH | stat.S_IWOTH))


def check_configured(environ=None) -> tuple[Path, np.ndarray, np.ndarray]:
    """The configured file, read, validated and placed where the kernel
    cannot see it; :class:`HeldoutError` otherwise."""
    path = configured(environ)
    if path is None:
        raise HeldoutError(f"{ENV} is not set")
    why = location_problem(path)
    if why:
        raise HeldoutError(f"held-out digits {path}: the grader will not "
                           f"use this file: {why}")
    counts, labels = read(path)
    return path, counts, labels


# -- making a file: the instructor's own digits, or jittered public ones ---
def jitter(images: np.ndarray, rng, rotation_deg: float = ROTATION_DEG,
           shift_px: float = SHIFT_PX, scale: float = SCALE) -> np.ndarray:
    """A random affine map per image (N, 28, 28), values in [0, 1]:
    rotation by up to ``rotation_deg`` degrees, a shift of up to
    ``shift_px`` pixels along each axis and a scaling by 1 +- ``scale``
    about the centre, sampled bilinearly (zero outside)."""
    from coursekit.checks.a06_practice import _bilinear
    images = np.asarray(images, dtype=np.float64)
    n = len(images)
    th = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg, n))
    s = rng.uniform(1 - scale, 1 + scale, n)[:, None, None]
    t = rng.uniform(-shift_px, shift_px, (n, 2))
    yy, xx = np.mgrid[:28, :28].astype(np.float64)
    c = 13.5
    dy = yy[None] - c - t[:, 0, None, None]
    dx = xx[None] - c - t[:, 1, None, None]
    cos, sin = np.cos(th)[:, None, None], np.sin(th)[:, None, None]
    # The inverse map: output pixel -> the source pixel it comes from.
    sy = (cos * dy - sin * dx) / s + c
    sx = (sin * dy + cos * dx) / s + c
    return np.clip(_bilinear(images, sy, sx), 0.0, 1.0)


def read_idx(path) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format; ``.gz`` too), read
    by ``dlopt.data.load_idx``; what is wrong is a ``HeldoutError``."""
    from dlopt.data import load_idx
    try:
        data = load_idx(path)
    except (ValueError, OSError) as exc:
        raise HeldoutError(f"not an IDX file of unsigned bytes (MNIST's "
                           f"format): {exc}") from None
    if data.dtype != np.uint8:
        raise HeldoutError(f"{path}: not an IDX file of unsigned bytes "
                           f"(MNIST's format: magic 0x0000080N); it holds "
                           f"{data.dtype}")
    return data


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff",
                  ".pgm")


def read_image_folder(folder) -> tuple[np.ndarray, np.ndarray]:
    """``<folder>/<label>/<image>`` (label 0..9, any image size): images
    (n, 28, 28) in [0, 1], ink bright, as MNIST (the digit fitted into
    20x20 and centred), and labels."""
    from PIL import Image
    folder = Path(folder)
    images, labels = [], []
    for k in range(10):
        d = folder / str(k)
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(p) as im:
                    a = np.asarray(im.convert("L"), dtype=np.float64) / 255
            except OSError as exc:
                raise HeldoutError(f"{p}: not an image ({exc})") from None
            images.append(_mnist_like(a))
            labels.append(k)
    if not images:
        raise HeldoutError(f"{folder}: no images in {folder}/0/ ... "
                           f"{folder}/9/ (one folder per label)")
    return np.stack(images), np.array(labels, dtype=np.int64)


def _mnist_like(a: np.ndarray) -> np.ndarray:
    """A grey image (H, W) in [0, 1] -> 28x28, ink bright on dark: dark
    ink on a bright page is inverted, the ink's box fitted into 20x20."""
    from PIL import Image
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 0.5:
        a, border = 1.0 - a, 1.0 - border
    a = np.clip(a - np.median(border), 0, None)
    if a.max() > 0:
        a = a / a.max()
    ink = a > 0.1
    out = np.zeros((28, 28))
    if not ink.any():
        return out
    r = np.flatnonzero(ink.any(axis=1))
    c = np.flatnonzero(ink.any(axis=0))
    box = a[r[0]:r[-1] + 1, c[0]:c[-1] + 1]
    h, w = box.shape
    f = 20.0 / max(h, w)
    H, W = max(1, round(h * f)), max(1, round(w * f))
    small = np.asarray(Image.fromarray((box * 255).astype(np.uint8))
                       .resize((W, H), Image.BILINEAR), dtype=np.float64)
    y0, x0 = (28 - H) // 2, (28 - W) // 2
    out[y0:y0 + H, x0:x0 + W] = small / 255.0
    return out


def load_source(src, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """The instructor's digits: ``(X, y)`` with X block counts (n, 64) or
    images (n, 28, 28), from an .npz (X, y), IDX files (``src`` images,
    ``labels`` labels) or a folder of images."""
    src = Path(src)
    if src.is_dir():
        return read_image_folder(src)
    if labels is not None:
        X, y = read_idx(src), read_idx(labels)
        if X.ndim != 3 or y.ndim != 1:
            raise HeldoutError(f"{src}, {labels}: expected IDX images "
                               f"(n, rows, cols) and labels (n,)")
        if X.shape[1:] != (28, 28):
            X = np.stack([_mnist_like(a / 255.0) for a in X])
            return X, y.astype(np.int64)
        return X, y.astype(np.int64)
    return load_npz(src)


def to_counts(X, y, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert, as the grader will (see :func:`read`)."""
    counts = _counts(np.asarray(X), where)
    return counts, _labels(np.asarray(y), len(counts), where)


def reference_accuracy(counts, labels, seed: int = 0) -> dict:
    """What the thresholds were calibrated on, measured on these digits:
    the reference solution (the notebook's, on its training digits) and
    the named mistake "small learning rate" (``MISTAKE_OPTIMIZER`` in its
    place, tests/assignment_cases/a06_practice.py)."""
    from coursekit.checks import a06_practice as ck
    X, y = counts / 16.0, labels
    Xd, yd = ck.dev_digits()
    out = {}
    for name, text in (("solution", SOLUTION_OPTIMIZER),
                       ("small_learning_rate", MISTAKE_OPTIMIZER)):
        predict = reference_classifier(Xd, yd, make_optimizer(text),
                                       seed=seed)
        out[name] = float(np.mean(predict(X) == y))
    return out


# The solution's optimizer, as its answer cell writes it (10 epochs of
# Adam): replaced by the optimizer under test. The named mistake "small
# learning rate" is plain SGD with a step too small for those 10 epochs:
# tests/assignment_cases/a06_practice.py edits SOLUTION_OPTIMIZER into
# MISTAKE_OPTIMIZER in the same text (tests/test_a06_heldout.py checks
# that they agree).
SOLUTION_OPTIMIZER = "optim.adam(5e-3)"
MISTAKE_OPTIMIZER = "optim.sgd(0.03)"


def make_optimizer(text: str):
    """``"optim.sgd(0.03)"`` (a dlopt optimizer and its learning rate, as
    the answer cell writes it) -> that optimizer."""
    import re

    from dlopt import optim
    m = re.fullmatch(r"optim\.(\w+)\(([0-9.e+-]+)\)", text)
    if m is None:
        raise ValueError(f"not optim.<name>(<learning rate>): {text!r}")
    return getattr(optim, m[1])(float(m[2]))


def reference_classifier(X, y, optimizer, seed: int = 0):
    """The notebook's solution (its ``train_classifier`` cell, read from
    solutions/) with ``optimizer`` in place of its own: predict(X)."""
    from coursekit import pipeline, simulate
    nb = pipeline.REPO / "solutions" / "a06_practice" / "a06_practice.ipynb"
    src = simulate.solution_answers(nb)["train_classifier"]
    if SOLUTION_OPTIMIZER not in src:
        raise RuntimeError(f"{nb}: train_classifier no longer uses "
                           f"{SOLUTION_OPTIMIZER}: update coursekit/heldout.py")
    ns = {"np": np, "__optimizer": optimizer}
    exec(compile(src.replace(SOLUTION_OPTIMIZER, "__optimizer"),
                 str(nb), "exec"), ns)
    return ns["train_classifier"](X, y, seed=seed)


def save(path, counts, labels) -> None:
    """Write ``X`` (counts, uint8) and ``y`` atomically, readable by the
    owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        np.savez_compressed(f, X=counts.astype(np.uint8),
                            y=labels.astype(np.int64))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def make(out, src=None, labels=None, public=False, jitter_digits=False,
         n=None, seed=None, calibrate=True, log=print) -> int:
    """``python -m coursekit heldout``: write a private held-out file.

    ``src`` (and ``labels`` for IDX images) or ``public=True`` (MNIST's
    test digits, which needs ``jitter_digits``); ``n``: a random subset
    of that many digits; ``seed``: the secret seed of the subset and the
    jitter (fresh from ``secrets`` when not given; never stored). Returns
    the exit status: 1 when the thresholds do not fit these digits."""
    from coursekit.checks import a06_practice as ck
    if public == (src is not None):
        raise HeldoutError("give either --from PATH (your own digits) or "
                           "--public --jitter (MNIST's test digits, "
                           "jittered)")
    if public and not jitter_digits:
        raise HeldoutError("--public needs --jitter: the public digits "
                           "unchanged are what the grader uses without a "
                           "file, and a notebook can embed them")
    why = location_problem(Path(out))
    if why:
        raise HeldoutError(f"--out {out}: {why}")
    rng = np.random.default_rng(secrets.randbits(128) if seed is None
                                else seed)
    if public:
        X, y = ck.load_mnist_28()
        where = f"MNIST's test digits ({ck._mnist_dir()})"
    else:
        X, y = load_source(src, labels)
        where = f"{src}"
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise HeldoutError(f"{where}: {len(X)} digits but {len(y)} labels")
    if n is not None:
        if not 0 < n <= len(y):
            raise HeldoutError(f"--n {n}: {where} holds {len(y)} digits")
        pick = np.sort(rng.choice(len(y), size=n, replace=False))
        X, y = X[pick], y[pick]
    if jitter_digits:
        if X.ndim == 2 and X.shape[1] == 784:
            X = X.reshape(-1, 28, 28)
        if X.ndim != 3 or X.shape[1:] != (28, 28):
            raise HeldoutError(f"--jitter needs 28x28 images; {where} "
                               f"holds X of shape {X.shape}")
        X = X / 255.0 if X.dtype == np.uint8 else X
        X = jitter(X, rng)
    counts, labels_ = to_counts(X, y, where)
    save(out, counts, labels_)
    again, _ = read(out)          # read back as the grader will
    if not np.array_equal(again, counts):
        raise RuntimeError(f"{out}: read back differently; disk full?")
    per = np.bincount(labels_, minlength=10)
    log(f"wrote {out}: {len(labels_)} digits ({', '.join(map(str, per))} "
        f"of 0..9), mode 600; set {ENV}={Path(out).resolve()} for grading")
    if not calibrate:
        return 0
    acc = reference_accuracy(counts, labels_)
    th = ck.THRESHOLDS
    top, mid = th["test_heldout_71"], th["test_heldout_62"]
    sd = float(np.sqrt(0.25 / min(ck.N_HELD, len(labels_))))
    log(f"reference solution: accuracy {acc['solution']:.3f}; the named "
        f"mistake {MISTAKE_OPTIMIZER} (plain SGD, learning rate too "
        f"small): {acc['small_learning_rate']:.3f} "
        f"(thresholds {', '.join(f'{v:.2f}' for v in th.values())}; "
        f"sampling noise +-{sd:.3f})")
    if acc["solution"] - top < 3 * sd:
        log(f"WARNING: the reference solution scores {acc['solution']:.3f}"
            f" on these digits, within {3 * sd:.3f} of the top threshold "
            f"{top:.2f} or below it: honest submissions would lose points. "
            f"These digits are harder than the ones the thresholds were "
            f"calibrated on (docs/deployment.md)")
        return 1
    if not mid < acc["small_learning_rate"] < top:
        log(f"note: the named mistake (plain SGD) scores "
            f"{acc['small_learning_rate']:.3f}, outside [{mid:.2f}, "
            f"{top:.2f}]: the thresholds separate it differently on "
            f"these digits")
    return 0
