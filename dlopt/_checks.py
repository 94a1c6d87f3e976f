"""Input validation shared by every dlopt module.

Bad input should fail early with a message that names the argument and
says what was expected, instead of surfacing later as a NumPy broadcast
error or a silent NaN.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np

__all__ = [
    "as_float_array",
    "check_finite",
    "check_shape",
    "check_positive",
    "check_in_range",
    "check_int",
    "is_torch",
]


def is_torch(x) -> bool:
    """Is ``x`` a torch tensor (tested without importing torch)?"""
    return type(x).__module__.startswith("torch")


_is_torch = is_torch


def as_float_array(name: str, x, ndim: int | tuple[int, ...] | None = None,
                   finite: bool = True) -> np.ndarray:
    """Return ``x`` as a floating NumPy array, or raise a clear error.

    Integer and boolean arrays are converted to float64; floating arrays
    keep their dtype. ``ndim`` restricts the number of dimensions.
    """
    if _is_torch(x):
        raise TypeError(
            f"{name} is a torch tensor; this function takes NumPy arrays "
            f"(use {name}.detach().numpy())")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: "
                        f"{exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype "
                        f"{arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimension(s), got "
                             f"shape {arr.shape}")
    if finite:
        check_finite(name, arr)
    return arr


def check_finite(name: str, arr) -> None:
    """Raise ``ValueError`` naming ``name`` if ``arr`` has NaN or inf."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        first = tuple(int(i) for i in bad[0]) if arr.ndim else ()
        raise ValueError(
            f"{name} contains {len(bad)} non-finite value(s) (NaN or inf); "
            f"the first is at index {first}: {arr[first]!r}")


def check_shape(name: str, arr, shape: tuple) -> None:
    """Check ``arr.shape`` against ``shape``; ``None`` entries match any."""
    got = tuple(arr.shape)
    ok = len(got) == len(shape) and all(
        want is None or want == g for want, g in zip(shape, got))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s)
                               for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {got}")


def check_positive(name: str, value, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got "
                        f"{type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_in_range(name: str, value, low: float, high: float,
                   include_high: bool = False) -> float:
    """Return ``value`` as a float if ``low <= value < high``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got "
                        f"{type(value).__name__} {value!r}")
    value = float(value)
    inside = low <= value <= high if include_high else low <= value < high
    if not (math.isfinite(value) and inside):
        close = "]" if include_high else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{close}, got "
                         f"{value}")
    return value


def check_int(name: str, value, low: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``low`` (bools
    are refused: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)
