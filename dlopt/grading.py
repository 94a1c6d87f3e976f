"""Checks used by the graded notebooks' tests.

A failing check raises :class:`Feedback`, an ``AssertionError`` whose
message explains the mistake in a student's words ("your dW has the shape
of W transposed ...") instead of a bare assertion. Known wrong answers are
passed in as *mistakes*: candidate arrays with the message to show when the
student's answer matches one of them.

The comparison is written to resist answers that try to game it:

* the answer must be a real number or a NumPy array of real numbers (an
  object whose ``__eq__`` always returns ``True`` is rejected, because the
  value is converted to float64 before anything is compared);
* the NumPy functions used here are bound when this module is imported,
  so a notebook that later replaces ``np.allclose`` or ``np.abs`` does not
  change what the checks compute, and the final decision is made in plain
  Python arithmetic.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as _np

# Bound once, at import time (see the module docstring).
_asarray = _np.asarray
_array = _np.array
_float64 = _np.float64
_ndarray = _np.ndarray
_generic = _np.generic

__all__ = ["Feedback", "to_float_array", "check_array", "check_function",
           "Mistake", "forbid_modules"]


class Feedback(AssertionError):
    """A failed check, with a message meant for the student."""


class Mistake:
    """A known wrong answer and what to tell a student who gives it.

    ``value`` is the array the mistake produces on the test's inputs;
    ``message`` explains it.
    """

    def __init__(self, value, message: str):
        self.value = _array(value, dtype=_float64)
        self.message = message


def to_float_array(name: str, value, shape: tuple | None = None):
    """Convert a student's answer to a float64 array, or explain why not."""
    if value is None:
        raise Feedback(f"{name} is None: did your function forget to "
                       f"`return` its result?")
    if isinstance(value, tuple) and shape is not None:
        raise Feedback(f"{name} is a tuple of {len(value)} items; expected "
                       f"one array of shape {shape}")
    ok_type = (isinstance(value, (_ndarray, _generic, int, float, list))
               and not isinstance(value, bool))
    # An object the student's code returned that is not data arrives in
    # the grader as a handle naming its type (coursekit.remote.Ref).
    tname = getattr(value, "type_name", None)
    if not isinstance(tname, str):
        tname = f"{type(value).__module__}.{type(value).__name__}"
    if tname.startswith("torch"):
        raise Feedback(f"{name} is a torch tensor; return a NumPy array")
    if not ok_type:
        raise Feedback(f"{name} has type {tname.split('.')[-1]}; expected "
                       f"a NumPy array of numbers")
    try:
        arr = _array(value, dtype=_float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise Feedback(f"{name} could not be read as an array of numbers: "
                       f"{exc}") from None
    if type(arr) is not _ndarray:
        raise Feedback(f"{name} is not a plain NumPy array")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise Feedback(f"{name} has shape {tuple(arr.shape)}; expected "
                       f"{tuple(shape)}")
    return arr


def _flat(arr) -> list[float]:
    return [float(v) for v in arr.reshape(-1).tolist()]


def _worst(got, want, rtol: float, atol: float):
    """Index, got, want and excess of the worst element, in plain Python."""
    worst = (None, 0.0, 0.0, -math.inf)
    for i, (g, w) in enumerate(zip(_flat(got), _flat(want))):
        if math.isnan(g) or math.isinf(g):
            return (i, g, w, math.inf)
        excess = abs(g - w) - (atol + rtol * abs(w))
        if excess > worst[3]:
            worst = (i, g, w, excess)
    return worst


def _close(got, want, rtol: float, atol: float) -> bool:
    if tuple(got.shape) != tuple(want.shape):
        return False
    return _worst(got, want, rtol, atol)[3] <= 0.0


def _low_precision(name: str, got) -> None:
    dt = getattr(got, "dtype", None)
    if isinstance(got, (_ndarray, _generic)) and dt.kind == "f" \
            and dt.itemsize < 8:
        raise Feedback(f"{name} is {dt} (single or half precision); compute "
                       f"in float64, NumPy's default (the answer is compared "
                       f"with a float64 reference to about 1e-7)")


def check_array(name: str, got, expected, *, mistakes=(),
                rtol: float = 1e-7, atol: float = 1e-9, hint: str = "",
                shape_hint: str = ""):
    """Check a student's array against the reference ``expected``.

    Passes silently when ``got`` equals ``expected`` within
    ``atol + rtol * |expected|`` elementwise. Otherwise raises
    :class:`Feedback` with, in this order: that a Python list or a
    float32/float16 array is not the float64 NumPy array asked for; the
    message of every :class:`Mistake` the answer matches; the shape (with
    ``shape_hint``); or the first element that differs, the largest
    relative error and, when that error is float32-sized, a word about
    precision. ``hint`` is added when no named mistake explains it.
    """
    want = _array(expected, dtype=_float64)
    if isinstance(got, list):
        raise Feedback(f"{name} is a Python list; return a NumPy array "
                       f"(np.array(...)) of shape {tuple(want.shape)}")
    _low_precision(name, got)
    got = to_float_array(name, got)
    if _close(got, want, rtol, atol):
        return
    # several mistakes can give the same numbers on one input: name each
    found = []
    for mistake in mistakes:
        if _close(got, mistake.value, rtol, atol) and \
                mistake.message not in found:
            found.append(mistake.message)
    if found:
        raise Feedback(f"{name}: " + " Or: ".join(found))
    if tuple(got.shape) != tuple(want.shape):
        raise Feedback(f"{name} has shape {tuple(got.shape)}; expected "
                       f"{tuple(want.shape)}. {shape_hint} {hint}".rstrip()
                       .replace(".  ", ". "))
    i = _first_bad(got, want, rtol, atol)
    g, w = _flat(got)[i], _flat(want)[i]
    index = tuple(int(k) for k in _np.unravel_index(i, want.shape))
    where = f" at index {index}" if want.shape else ""
    scale = max(max((abs(v) for v in _flat(want)), default=0.0), 1e-300)
    diffs = [abs(a - b) for a, b in zip(_flat(got), _flat(want))]
    rel = max(diffs, default=0.0) / scale \
        if all(math.isfinite(d) for d in diffs) else math.inf
    text = (f"{name} is wrong{where}: got {g:.10g}, expected {w:.10g} "
            f"(largest relative error {rel:.1e}).")
    if math.isfinite(rel) and rel < 1e-4 and rtol < 1e-5:
        text += (" That is the precision of float32 arithmetic: compute in "
                 "float64 throughout (no np.float32 or .astype(np.float32) "
                 "anywhere); if you already do, an approximation (a finite "
                 "difference, a truncated series) is the cause.")
    raise Feedback(f"{text} {hint}".rstrip())


def _first_bad(got, want, rtol: float, atol: float) -> int:
    """The flat index of the first element outside the tolerance."""
    for i, (g, w) in enumerate(zip(_flat(got), _flat(want))):
        if not abs(g - w) <= atol + rtol * abs(w):     # NaN is bad too
            return i
    return 0


def check_function(name: str, func: Callable, inputs: Mapping, expected,
                   **kwargs):
    """Call ``func(**inputs)`` on copies of the inputs and check the result.

    The student's function gets copies, so an implementation that modifies
    its arguments in place cannot change the reference's inputs. Errors
    raised by the student's code are reported with the call that failed.
    """
    copies = {k: (_array(v, copy=True) if isinstance(v, _ndarray) else v)
              for k, v in inputs.items()}
    try:
        got = func(**copies)
    except NotImplementedError:
        raise Feedback(f"{name}: not implemented yet (the function still "
                       f"raises NotImplementedError)") from None
    except Exception as exc:
        if "is not available in this assignment" in str(exc):
            raise      # a withheld module: the grader explains it
        shapes = ", ".join(
            f"{k}{tuple(v.shape)}" if isinstance(v, _ndarray) else k
            for k, v in inputs.items())
        raise Feedback(f"{name} raised {type(exc).__name__}: {exc} "
                       f"(called with {shapes})") from None
    check_array(name, got, expected, **kwargs)
    return got


class forbid_modules:
    """Within the block, calling any function of the named modules fails.

    Hidden tests wrap the call to a student's function in this so that an
    answer which simply calls ``dlopt``'s own implementation (or another
    reference) earns a clear message instead of the points::

        with forbid_modules("dlopt.maps", "dlopt.mlp"):
            out = student_affine(X, W, b)

    The functions' code is swapped, not just the module attributes, so a
    name the student imported earlier (``from dlopt.maps import ...``) is
    caught too. Everything is restored when the block ends.
    """

    def __init__(self, *module_names: str):
        self.module_names = module_names
        self._saved: list[tuple[object, object]] = []

    def __enter__(self):
        import importlib
        import inspect

        for mod_name in self.module_names:
            try:
                mod = importlib.import_module(mod_name)
            except ImportError:
                continue
            for obj in list(vars(mod).values()):
                if (not inspect.isfunction(obj)
                        or obj.__module__ != mod.__name__
                        or obj.__code__.co_freevars):
                    continue
                label = f"{mod_name}.{obj.__name__}"
                self._saved.append((obj, obj.__code__))
                obj.__code__ = _STUB.__code__.replace(co_name=label)
        return self

    def __exit__(self, *exc):
        for obj, code in reversed(self._saved):
            obj.__code__ = code
        self._saved.clear()
        return False


def _STUB(*args, **kwargs):
    # Runs with the *original* function's globals: import what it needs.
    import sys
    from dlopt.grading import Feedback
    name = sys._getframe().f_code.co_name
    raise Feedback(f"your code calls {name}, the course's reference "
                   f"implementation; write this part yourself with NumPy")
