"""Feedback that explains a mistake without revealing the hidden tests.

nbgrader's feedback is the autograded notebook as HTML, hidden tests and
tracebacks included. Students should see, for every test cell, whether it
passed, the points, and the message explaining the mistake: never the
hidden test code or the inputs it drew. :class:`ScrubFeedback` runs after
nbgrader's ``ClearHiddenTests`` (which drops the hidden code) and replaces
each test cell's outputs by one line with the result and the message.
"""
from __future__ import annotations

import re

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _grade_meta(cell):
    return cell.metadata.get("nbgrader", {})


class ScrubFeedback(NbGraderPreprocessor):
    """Replace test-cell outputs with a pass/fail line and the message."""

    def preprocess_cell(self, cell, resources, index):
        meta = _grade_meta(cell)
        if cell.cell_type != "code" or not meta.get("grade"):
            return cell, resources
        points = meta.get("points", 0)
        errors = [o for o in cell.get("outputs", [])
                  if o.get("output_type") == "error"]
        if errors:
            err = errors[-1]
            message = _ANSI.sub("", str(err.get("evalue", ""))).strip()
            if err.get("ename") in ("NotRun", "KernelStopped",
                                    "CellTimeoutError") and message:
                # The grader's own explanation (coursekit.execute).
                text = f"✘ failed (0 / {points} points): {message}\n"
            elif err.get("ename") in ("Feedback",
                                      "AssertionError") and message:
                text = f"✘ failed (0 / {points} points): {message}\n"
            else:
                # The student's own code raised: its type and message are
                # the student's, and useful; the traceback would show
                # the test code, so it is left out.
                text = (f"✘ failed (0 / {points} points): your code raised "
                        f"{err.get('ename')}: {message}\n")
        else:
            text = f"✔ passed ({points} / {points} points)\n"
        cell.outputs = [new_output("stream", name="stdout", text=text)]
        return cell, resources
