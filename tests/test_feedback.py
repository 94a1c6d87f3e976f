"""Feedback pages a student can read offline.

A test cell of an autograded notebook ends, as the sandboxed grading
writes it, with a ``Feedback`` error: a hidden check's long message with
a formula and the (non-secret) input it used. Through the course's
feedback chain (ScrubFeedback, then nbgrader's feedback template exported
by OfflineFeedbackExporter) the page must be self-contained, and in
Chromium with every network request refused the formula must be typeset
and the long message must wrap inside the page on a phone.
"""
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from traitlets.config import Config

from coursekit import feedback

sys.path.insert(0, str(Path(__file__).parent))
import sitecheck  # noqa: E402

MESSAGE = ("Hidden check: sigmoid_prime(z) should be $\\sigma(z)\\,(1 - "
           "\\sigma(z))$, the derivative of $\\sigma(z) = 1/(1+e^{-z})$; "
           "yours is wrong at index 3: got 0.25, expected 0.104994. "
           + "A long explanation that goes on and on " * 8
           + "Input used: z = np.array([" + ", ".join(
               f"{0.5 * i - 2:.6f}" for i in range(40)) + "])")


def feedback_page(tmp_path: Path) -> Path:
    cell = new_code_cell("# hidden tests were here")
    cell.metadata["nbgrader"] = dict(grade=True, grade_id="test_sp",
                                     locked=True, points=2, solution=False,
                                     schema_version=3, score=0)
    cell.outputs = [new_output("error", ename="Feedback", evalue=MESSAGE,
                               traceback=["secret traceback"])]
    ok = new_code_cell("assert True")
    ok.metadata["nbgrader"] = dict(grade=True, grade_id="test_ok",
                                   locked=True, points=1, solution=False,
                                   schema_version=3, score=1)
    nb = new_notebook(cells=[cell, ok], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3",
        "language": "python"}})
    nb, _ = feedback.ScrubFeedback().preprocess(nb, {})
    import nbgrader
    c = Config()
    c.HTMLExporter.template_name = "feedback"
    c.HTMLExporter.extra_template_basedirs = [str(
        Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
        / "templates")]
    c.HTMLExporter.extra_template_paths = [str(
        Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
        / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    exp = feedback.OfflineFeedbackExporter(config=c)
    html, _ = exp.from_notebook_node(nb, resources=dict(nbgrader=dict(
        notebook="a01_mapping", score=1, max_score=3, late_penalty=0)))
    page = tmp_path / "a01_mapping.html"
    page.write_text(html)
    return page


def test_page_is_self_contained(tmp_path):
    html = feedback_page(tmp_path).read_text()
    assert "cdnjs" not in html and "<script src=" not in html
    assert "window.MathJax" in html and "MathJax" in html
    assert "secret traceback" not in html
    assert "✘ failed (0 / 2 points)" in html and "Hidden check" in html
    assert "✔ passed (1 / 1 points)" in html


@pytest.mark.slow
def test_formulas_typeset_offline_and_messages_wrap(tmp_path, browser):
    page_path = feedback_page(tmp_path)
    requests = []

    def route(r):
        url = r.request.url
        if url.startswith("file://"):
            r.continue_()
        else:
            requests.append(url)
            r.abort("blockedbyclient")

    ctx = browser.new_context(viewport=sitecheck.PHONE)
    try:
        page = ctx.new_page()
        page.route("**/*", route)
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_selector(".ck-verdict mjx-container svg",
                               timeout=30000)
        n = page.eval_on_selector_all(".ck-verdict mjx-container",
                                      "els => els.length")
        errors = page.eval_on_selector_all(
            "mjx-merror", "els => els.map(e => e.textContent)")
        box = page.eval_on_selector(".ck-fail", """e => ({
            scroll: e.scrollWidth, client: e.clientWidth,
            right: e.getBoundingClientRect().right})""")
        width = page.evaluate("window.innerWidth")
    finally:
        ctx.close()
    assert not requests, requests
    assert n == 2 and not errors
    assert box["scroll"] <= box["client"] + 1, box     # wraps, no overflow
    assert box["right"] <= width + 1, (box, width)


def test_note_for_a_misnamed_notebook(tmp_path):
    from coursekit.config import CourseConfig
    g = tmp_path / "grading"
    folder = g / "submitted" / "ben" / "a01_mapping"
    folder.mkdir(parents=True)
    (folder / "A01 (1).ipynb").write_text(nbformat.writes(new_notebook()))
    (folder / "timestamp.txt").write_text("2026-01-01 00:00:00 UTC")
    (folder / "submission_secret.txt").write_text("s3cret")
    cfg = CourseConfig.from_env(grading_dir=g, db_url=None)
    written = feedback.write_notes(cfg, "a01_mapping")
    out = g / "feedback" / "ben" / "a01_mapping"
    assert sorted(p.name for p in written) == ["A01 (1).html",
                                               "a01_mapping.html"]
    note = (out / "a01_mapping.html").read_text()
    assert "missing notebook; found &#39;A01 (1).ipynb&#39;: rename it to " \
        "&#39;a01_mapping.ipynb&#39;" in note
    assert (out / "submission_secret.txt").read_text() == "s3cret"
    assert os.path.getsize(out / "a01_mapping.html") < 10_000


def _graded_cell(points=2):
    cell = new_code_cell("# the test cell")
    cell.metadata["nbgrader"] = dict(grade=True, grade_id="test_x",
                                     locked=True, points=points,
                                     solution=False, schema_version=3)
    return cell


def test_a_note_and_partial_credit_reach_the_feedback_not_the_kernels_mark():
    """The grader's note on a passing check and its partial-credit reason
    are shown; a kernel output that imitates the grader's mark is not."""
    from coursekit import execute, judge

    forged = new_output("display_data", data={"text/plain": "FORGED"},
                        metadata={"coursekit": {"message": True}})
    printed = new_output("stream", name="stdout", text="student print\n")

    cell = _graded_cell()
    cell.outputs = [printed, forged]
    execute.apply_verdict(cell, judge.Verdict(
        True, None, "Note (no points depend on it): W changed in place"))
    marked = [o for o in cell.outputs if o.get("metadata", {}).get(
        "coursekit")]
    assert [o["data"]["text/plain"] for o in marked] == [
        "Note (no points depend on it): W changed in place"]
    nb = new_notebook(cells=[cell])
    nb, _ = feedback.ScrubFeedback().preprocess(nb, {})
    (out,) = nb.cells[0].outputs
    assert "✔ passed (2 / 2 points)" in out["data"]["text/html"]
    assert "W changed in place" in out["data"]["text/html"]
    assert "FORGED" not in out["data"]["text/html"]
    assert "student print" not in out["data"]["text/html"]

    cell = _graded_cell()
    cell.outputs = [forged]
    execute.apply_verdict(cell, judge.Verdict(False, 0.25, "one of four"))
    assert [o["data"]["text/plain"] for o in cell.outputs
            if o["output_type"] == "execute_result"] == ["0.5"]
    nb, _ = feedback.ScrubFeedback().preprocess(new_notebook(cells=[cell]),
                                                {})
    html = nb.cells[0].outputs[0]["data"]["text/html"]
    assert "partial credit (0.5 / 2 points)" in html and "one of four" in html
    assert "FORGED" not in html


def test_run_check_keeps_notes_apart_from_points():
    from coursekit import judge
    from dlopt.grading import Feedback

    def passes(S, rng):
        judge.note("changed in place")
        judge.note("changed in place")        # said once

    def fails(S, rng):
        judge.note("changed in place")
        raise Feedback("wrong value")

    v = judge.run_check(passes, None, None)
    assert v.passed and v.message == \
        "Note (no points depend on it): changed in place"
    v = judge.run_check(fails, None, None)
    assert not v.passed and v.message.startswith("wrong value") and \
        v.message.endswith("Note (no points depend on it): changed in place")
    v = judge.run_check(lambda S, rng: None, None, None)   # notes reset
    assert v.passed and v.message == ""
