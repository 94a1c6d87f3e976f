"""The floor of bench/bench_grading.py: a one-cell notebook (``x = 1``)
graded by the same pipeline, with one round trip to the kernel."""
from dlopt.grading import Feedback

KERNEL = {"forbid": []}


def test_x(S, rng):
    if S.value("x") != 1:
        raise Feedback("x should be 1")
