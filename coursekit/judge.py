"""The trusted verdict: each graded cell judged outside the student's kernel.

For every graded test cell of an assignment, ``coursekit/checks/<a>.py``
has a function of the same name as the cell's ``grade_id``::

    def test_affine(S, rng):
        X, W, b = rng.normal(size=(4, 3)), ...
        check_function("affine(X, W, b)", S.affine, dict(X=X, W=W, b=b),
                       torch_reference(X, W, b), mistakes=[...])

``S`` (:class:`coursekit.remote.Student`) calls the student's functions in
the sandboxed kernel and returns plain data; ``rng`` is a generator seeded
per submission from a seed the kernel never sees. The check runs in the
grader's process: its references (PyTorch in float64, dlopt), expected
values and mistakes never enter the kernel. It passes by returning,
awards partial credit by returning a fraction in [0, 1] (or a pair
``(fraction, message)``), and fails by
raising :class:`dlopt.grading.Feedback` (or any exception): the message is
what the student reads. Inside ``with hidden():`` a failure is labelled a
hidden check; ``show(X=X, ...)`` adds the inputs to a failure's message
(never use it for secret inputs). ``note(text)`` tells the student
something that no points depend on: what only the kernel can see (did
the function change an input array in place?) is reported by code the
student controls, so it may be shown but never scored.

:class:`coursekit.execute.SandboxedExecute` runs the check right after the
test cell ran in the kernel and writes the verdict into the cell's
outputs, which nbgrader's ``SaveAutoGrades`` turns into points as usual.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import secrets
import textwrap
from dataclasses import dataclass

import numpy as np

from coursekit.remote import StudentError, StudentStop

@dataclass
class Verdict:
    passed: bool
    fraction: float | None = None     # partial credit, when not all-or-none
    message: str = ""


@contextlib.contextmanager
def hidden():
    """Checks in this block are hidden ones (say so when they fail)."""
    try:
        yield
    except BaseException as exc:
        if not hasattr(exc, "_ck_hidden"):
            _mark(exc, "_ck_hidden", True)
        raise


@contextlib.contextmanager
def show(**inputs):
    """A failure in this block shows these (non-secret) inputs."""
    try:
        yield
    except BaseException as exc:
        if getattr(exc, "_ck_inputs", None) is None:
            _mark(exc, "_ck_inputs", inputs)
        raise


_NOTES: list[str] = []


def note(text: str) -> None:
    """Add ``text`` to the current check's message without changing its
    points (see the module docstring)."""
    if text not in _NOTES:
        _NOTES.append(text)


def _with_notes(message: str, notes: list[str]) -> str:
    if not notes:
        return message
    tail = "\n".join(f"Note (no points depend on it): {n}" for n in notes)
    return f"{message}\n\n{tail}" if message else tail


def _mark(exc, name, value):
    try:
        setattr(exc, name, value)
    except (AttributeError, TypeError):
        pass


def _fmt_inputs(inputs: dict) -> str:
    parts = []
    for k, v in inputs.items():
        if isinstance(v, np.ndarray):
            text = np.array2string(v, precision=4, threshold=40,
                                   suppress_small=True, separator=", ")
        else:
            text = repr(v)
        if len(text) > 600:
            text = text[:600] + " ..."
        parts.append(f"{k} = {text}")
    return "\n".join(parts)


def load(assignment: str):
    """The trusted checks of ``assignment`` (a module), or None."""
    try:
        return importlib.import_module(f"coursekit.checks.{assignment}")
    except ModuleNotFoundError as exc:
        if exc.name == f"coursekit.checks.{assignment}":
            return None
        raise


def seed_for(student: str, assignment: str) -> int:
    """Fresh per submission. ``COURSE_JUDGE_SEED`` (grader side) makes a
    class run reproducible: the seed is then derived from it, the student
    and the assignment."""
    master = os.environ.get("COURSE_JUDGE_SEED")
    if not master:
        return secrets.randbits(63)
    h = hashlib.sha256(f"{master}:{student}:{assignment}".encode())
    return int.from_bytes(h.digest()[:8], "little") >> 1


def run_check(fn, student, rng) -> Verdict:
    """Run one check; never raise (every outcome is a verdict)."""
    from dlopt.grading import Feedback
    del _NOTES[:]
    try:
        out = fn(student, rng)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and \
                not isinstance(exc, StudentStop):
            raise
        return Verdict(False, None,
                       _with_notes(_message(exc, Feedback), _NOTES)[:6000])
    finally:
        notes = list(_NOTES)
        del _NOTES[:]
    if out is None or out is True:
        return Verdict(True, None, _with_notes("", notes)[:6000])
    message = ""
    if isinstance(out, tuple) and len(out) == 2:   # (fraction, why)
        out, message = out
    try:
        frac = float(out)
    except (TypeError, ValueError):
        return Verdict(True, None, _with_notes("", notes)[:6000])
    frac = min(max(frac, 0.0), 1.0)
    return Verdict(frac >= 1.0, frac,
                   _with_notes(str(message), notes)[:6000])


# coursekit.sandbox's stub of a module the assignment forbids raises an
# ImportError with this phrase.
FORBIDDEN = "is not available in this assignment"


def _forbidden_import(msg: str) -> str:
    mod = str(msg).split(" is not available")[0].strip().strip("'\"") \
        or "a module"
    if mod.startswith("dlopt"):
        return (f"your code calls {mod}, the course's reference "
                f"implementation, which is not available while grading: "
                f"write this part yourself with NumPy")
    return (f"your code imports {mod}, which is not available while "
            f"grading: this assignment asks for your own NumPy code")


def _message(exc, Feedback) -> str:
    if isinstance(exc, Feedback) or type(exc) is AssertionError:
        text = str(exc) or "a check failed"
    elif isinstance(exc, NotImplementedError):
        text = "not implemented yet (your code raises NotImplementedError)"
    elif isinstance(exc, StudentError) and exc.ename == "ImportError" \
            and FORBIDDEN in str(exc.msg):
        text = _forbidden_import(exc.msg)
    elif isinstance(exc, StudentError):
        text = (f"your code raised {exc.ename}: {exc.msg}"
                + (f"\n{exc.tb}" if exc.tb else ""))
    elif isinstance(exc, StudentStop):
        text = str(exc)
    else:
        text = (f"the grader could not use your answer "
                f"({type(exc).__name__}: {exc})")
    if getattr(exc, "_ck_hidden", False):
        text = "Hidden check (fresh inputs the notebook does not show): " \
            + text
    inputs = getattr(exc, "_ck_inputs", None)
    if inputs:
        text += "\nInput used:\n" + textwrap.indent(_fmt_inputs(inputs),
                                                    "  ")
    return text[:6000]
