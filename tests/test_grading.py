"""dlopt.grading's comparison and coursekit.judge's messages: what a
student reads when an answer is wrong."""
import numpy as np
import pytest

from coursekit import judge
from coursekit.remote import StudentError
from dlopt.grading import Feedback, Mistake, check_array


def message(*args, **kw) -> str:
    with pytest.raises(Feedback) as info:
        check_array(*args, **kw)
    return str(info.value)


def test_a_correct_answer_passes_within_the_tolerance():
    want = np.linspace(-1, 1, 7)
    check_array("x", want * (1 + 1e-9), want)


def test_a_list_is_not_an_array():
    got = message("dW", [[1.0, 2.0]], np.ones((1, 2)))
    assert "dW is a Python list" in got and "(1, 2)" in got


def test_float32_is_named_even_when_close():
    got = message("g", np.ones(3, dtype=np.float32), np.ones(3))
    assert "float32" in got and "compute in float64" in got


def test_every_matching_mistake_is_named():
    want = np.array([1.0, 2.0])
    wrong = np.array([-1.0, -2.0])
    got = message("g", wrong, want, mistakes=[
        Mistake(wrong, "the sign is flipped."),
        Mistake(wrong, "you subtracted."),
        Mistake(wrong * 3, "not this one.")])
    assert got == "g: the sign is flipped. Or: you subtracted."


def test_shape_message_carries_the_shape_hint():
    got = message("dW", np.ones((3, 2)), np.ones((2, 3)),
                  shape_hint="A gradient has the shape of its parameter.")
    assert got.startswith("dW has shape (3, 2); expected (2, 3).")
    assert "shape of its parameter" in got


def test_first_differing_index_and_relative_error():
    want = np.arange(6.0).reshape(2, 3) + 1
    got = want.copy()
    got[1, 0] += 0.5
    got[1, 2] += 2.0
    text = message("Z", got, want)
    assert "at index (1, 0)" in text          # the first, not the worst
    assert f"largest relative error {2.0 / 6.0:.1e}" in text
    assert "float32" not in text


def test_a_float32_sized_error_says_so():
    want = np.linspace(1, 2, 7) / 3
    got = want.astype(np.float32).astype(np.float64)   # float64 dtype
    text = message("L", got, want, rtol=1e-10, atol=0.0)
    assert "precision of float32" in text and "compute in float64" in text
    # a float64 answer that is only approximate is not told it is float32
    assert "if you already do, an approximation" in text
    # the numbers printed differ (never "got X, expected X")
    shown = text.split("got ")[1].split(" (")[0]
    g, w = shown.split(", expected ")
    assert g != w


def test_nan_is_wrong_and_reported():
    text = message("p", np.array([0.5, np.nan]), np.array([0.5, 0.5]))
    assert "at index (1,)" in text and "nan" in text
    assert "relative error inf" in text


def test_an_object_equal_to_everything_is_refused():
    class Liar:
        def __eq__(self, other):
            return True
    text = message("x", Liar(), np.ones(2))
    assert "Liar" in text


def test_a_forbidden_import_is_explained():
    for mod, phrase in (("dlopt.optim", "the course's reference"),
                        ("torch", "your own NumPy code")):
        exc = StudentError("ImportError", f"{mod} is not available in this "
                           f"assignment's grading: the question asks for "
                           f"your own code")
        text = judge.run_check(lambda S, rng, e=exc: (_ for _ in ()).throw(e),
                               None, None).message
        assert mod in text and phrase in text, text
    other = StudentError("ImportError", "No module named 'foo'")
    text = judge.run_check(lambda S, rng: (_ for _ in ()).throw(other),
                           None, None).message
    assert text.startswith("your code raised ImportError")


# -- the gradebook write: one commit per notebook --------------------------
class _DB:
    def __init__(self):
        self.log = []

    def commit(self):
        self.log.append("commit")

    def flush(self):
        self.log.append("flush")

    def rollback(self):
        self.log.append("rollback")


class _Gradebook:
    last = None
    fail = False

    def __init__(self, url):
        self.db, self.grades = _DB(), {}
        _Gradebook.last = self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def find_grade(self, gid, *where):
        if _Gradebook.fail and gid == "t2":
            raise RuntimeError("database gone")
        import types
        return self.grades.setdefault(gid, types.SimpleNamespace(
            manual_score=None, auto_score=None, needs_manual_grade=None))

    def find_comment(self, gid, *where):
        import types
        return types.SimpleNamespace(auto_comment=None)


def _graded_notebook():
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output
    cells = []
    for gid, kind in (("a1", "solution"), ("t1", "grade"), ("a2", "solution"),
                      ("t2", "grade")):
        c = new_code_cell("x = 1")
        c.metadata["nbgrader"] = dict(
            grade=kind == "grade", solution=kind == "solution", locked=False,
            grade_id=gid, points=2 if kind == "grade" else 0,
            schema_version=3, task=False)
        if gid == "t2":     # a failed test cell: 0 points
            c.outputs = [new_output("error", ename="Feedback", evalue="no",
                                    traceback=[])]
        cells.append(c)
    return nbformat.from_dict(new_notebook(cells=cells))


def test_save_auto_grades_commits_once_per_notebook(monkeypatch):
    from coursekit import execute
    monkeypatch.setattr(execute, "Gradebook", _Gradebook)
    monkeypatch.setattr(_Gradebook, "fail", False)
    res = {"nbgrader": dict(notebook="n", assignment="a", student="s",
                            db_url="sqlite://")}
    execute.SaveAutoGradesAtOnce().preprocess(_graded_notebook(), res)
    gb = _Gradebook.last
    # nbgrader commits after each of the 4 cells; here they are flushed
    # (queries still see them) and committed together
    assert gb.db.log == ["flush"] * 4 + ["commit"]
    assert gb.grades["t1"].auto_score == 2 and gb.grades["t2"].auto_score == 0
    assert "commit" not in vars(gb.db)          # its own commit again
    monkeypatch.setattr(_Gradebook, "fail", True)
    with pytest.raises(RuntimeError, match="database gone"):
        execute.SaveAutoGradesAtOnce().preprocess(_graded_notebook(), res)
    assert _Gradebook.last.db.log[-1] == "rollback"
    assert "commit" not in _Gradebook.last.db.log


def test_an_accuracy_just_below_its_threshold_is_shown_below_it():
    from coursekit.checks import a06_practice as a06

    class S:
        memo = {"a06": {"accuracy": 2839 / 4000, "n": 4000,
                         "what": "MNIST digits"}}
    with pytest.raises(Feedback) as info:
        a06.test_heldout_71(S, None)
    text = str(info.value)
    shown = float(text.split("accuracy ")[1].split(" ")[0])
    assert shown < 0.71 and "2839 of 4000" in text, text
    S.memo = {"a06": {"accuracy": 0.1, "n": 4000, "what": "MNIST digits"}}
    with pytest.raises(Feedback) as info:
        a06.test_heldout_50(S, None)
    assert "accuracy 0.100 (400 of 4000" in str(info.value)
    assert "chance level" in str(info.value)
