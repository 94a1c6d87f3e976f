"""The grader's reading of the kernel's answers (coursekit.remote), without
a kernel: answers a hostile kernel can send, decoded in this process."""
import base64
import json

import numpy as np
import pytest

from coursekit.remote import Student, StudentStop
from dlopt.grading import Feedback, to_float_array


def _answer(ok) -> str:
    return repr(base64.b64encode(json.dumps({"ok": ok}).encode()).decode())


def _student(reply):
    S = Student(lambda code, expr, timeout: reply, timeout=1)
    S._installed = True
    return S


def test_named_tuple_field_cannot_be_an_array_interface():
    # a named tuple whose field is __array_interface__ (a raw pointer):
    # np.asarray in a check would read the grader's memory (or crash it)
    evil = {"nt": "Evil", "ref": 1, "fields": [["__array_interface__", {
        "dict": [["shape", {"seq": "tuple", "items": [{"i": "4"}]}],
                 ["typestr", {"v": "<f8"}],
                 ["data", {"seq": "tuple", "items": [{"i": "8"},
                                                     {"v": False}]}],
                 ["version", {"i": "3"}]]}]]}
    S = _student(_answer({"seq": "list", "ref": 2, "items": [evil]}))
    with pytest.raises(StudentStop):
        S.call("f")


def test_record_answers_no_private_or_dunder_name():
    S = _student(_answer({"nt": "P", "ref": 1, "fields": [
        ["loss", {"f": "1.5"}]]}))
    rec = S.call("f")
    assert rec.loss == 1.5
    for name in ("__array_interface__", "__array__", "_values_x"):
        with pytest.raises(AttributeError):
            getattr(rec, name)
    with pytest.raises(Feedback):       # a record is not an array
        to_float_array("x", rec)
    assert np.asarray([1.0]).shape == (1,)


def test_many_tiny_items_are_refused_before_parsing():
    # 15 million empty lists in a 57 MB answer (under the shell's 64 MB
    # message cap) made the grader hold about 1 GB while JSON built them
    body = b'{"ok": {"v": [' + b"[]," * 2_000_000 + b'[]]}}'
    S = _student(repr(base64.b64encode(body).decode()))
    with pytest.raises(StudentStop, match="items"):
        S.call("f")


def test_a_long_list_of_numbers_still_reads():
    S = _student(_answer({"seq": "list", "ref": 1,
                          "items": [{"f": "0.5"}] * 100_000}))
    assert len(S.call("f")) == 100_000


def test_forged_array_header_is_refused_without_allocating():
    """An answer's .npy claiming a huge shape (np.load would allocate it
    first: MemoryError in the grader) is refused as unreadable."""
    import base64
    import io as _io

    import numpy as np
    import pytest

    from coursekit import remote
    from numpy.lib import format as npy
    buf = _io.BytesIO()
    np.save(buf, np.zeros(3), allow_pickle=False)
    forged = _io.BytesIO()
    npy.write_array_header_1_0(forged, {"descr": "<f8", "fortran_order":
                                        False, "shape": (10**12,)})
    forged.write(b"\0" * 24)
    item = {"a": base64.b64encode(forged.getvalue()).decode()}
    with pytest.raises(ValueError, match="claims"):
        remote.decode(None, item)
    ok = {"a": base64.b64encode(buf.getvalue()).decode()}
    assert remote.decode(None, ok).shape == (3,)


def test_harness_installed_once_per_submission_and_again_if_removed():
    """The checks of one submission share the harness (installed with
    the first request); a notebook that deleted or replaced it gets it
    installed again, and the request is answered."""
    from coursekit.remote import HarnessMissing
    calls, state = [], {"deleted": False}

    def execute(code, expr, timeout):
        installing = expr.startswith("[exec(")
        calls.append(installing)
        if state["deleted"] and not installing:
            raise HarnessMissing("removed")
        state["deleted"] = False
        return _answer({"i": "1"})
    memo = {}
    for _ in range(3):                       # three checks
        assert Student(execute, timeout=1, memo=memo).value("x") == 1
    assert calls == [True, False, False]
    state["deleted"] = True                  # a cell deleted it
    assert Student(execute, timeout=1, memo=memo).value("x") == 1
    assert calls[3:] == [False, True]
    assert Student(execute, timeout=1).value("x") == 1   # no memo: installs
    assert calls[5:] == [True]
