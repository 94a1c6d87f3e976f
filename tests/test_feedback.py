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


# ---- what a feedback page renders of the student's own text ------------

@pytest.mark.parametrize("text", [
    '<img src="files/a.png"> <a href=\'/files/b.txt\'>b</a> src=c',
    "![plot](files/out.png) and [data](/files/d.csv) [x](y) [files/z]",
    "[ok](files/n.png) ![a](files/a b.png) [](files/)\n[b](files/c)",
    "no links at all", ""])
def test_strip_files_prefix_is_nbconverts_on_ordinary_text(text):
    from nbconvert.filters.strings import strip_files_prefix
    assert feedback.strip_files_prefix(text) == strip_files_prefix(text)


def test_strip_files_prefix_leaves_nested_captions():
    """The one difference: a caption that holds brackets (rare; the
    markdown is already HTML here, whose ``href="files/`` is rewritten)."""
    assert feedback.strip_files_prefix("[[a] b](files/c)") == \
        "[[a] b](files/c)"


def test_strip_files_prefix_is_linear():
    """nbconvert's version rescans the rest of the text from every ``[``
    (quadratic: 238 s on one line of 200,000); this one touches each
    character a bounded number of times, so doubling the input about
    doubles the regex's work, measured as matching attempts."""
    steps = []
    for n in (20_000, 40_000):
        text = "[a](" * n + "[" * n
        t0 = __import__("time").process_time()
        for _ in range(3):
            feedback.strip_files_prefix(text)
        steps.append(__import__("time").process_time() - t0)
    assert steps[1] < 4 * steps[0] + 0.05, steps


def _student_nb(*cells):
    nb = new_notebook(cells=list(cells))
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def test_cap_student_text_cuts_only_the_students_text():
    locked = nbformat.v4.new_markdown_cell("Q" * (3 * feedback.CELL_MAX))
    locked.metadata["nbgrader"] = dict(locked=True, grade=False,
                                       solution=False, grade_id="q")
    test = new_code_cell("T" * (3 * feedback.CELL_MAX))
    test.metadata["nbgrader"] = dict(grade=True, grade_id="t", locked=True,
                                     points=1, solution=False)
    test.outputs = [new_output("display_data", data={
        "text/plain": "V" * (3 * feedback.CELL_MAX)})]
    answer = new_code_cell("A" * (3 * feedback.CELL_MAX))
    answer.outputs = [new_output("stream", name="stdout",
                                 text="o" * (3 * feedback.CELL_MAX)),
                      new_output("display_data", data={
                          "image/png": "i" * (3 * feedback.CELL_MAX),
                          "text/plain": "<Figure>"}),
                      new_output("display_data", data={
                          "image/png": "j" * (feedback.IMAGES_MAX + 1),
                          "text/plain": "<Figure 2>"})]
    nb = _student_nb(locked, test, answer)
    capped = feedback.cap_student_text(nb)
    assert nb.cells[2].source == "A" * (3 * feedback.CELL_MAX)  # a copy
    q, t, a = capped.cells
    assert q.source == locked.source and t.source == test.source
    assert t.outputs == test.outputs
    assert a.source.startswith("A" * feedback.CELL_MAX)
    assert "20,000 characters) is not shown" in a.source
    assert len(a.source) < feedback.CELL_MAX + 200
    out, plot, huge = a.outputs
    assert out.text.startswith("o" * feedback.CELL_MAX)
    assert "is not shown" in out.text
    # a plot is kept (images have their own budget); one over it: a note
    assert plot.data["image/png"] == "i" * (3 * feedback.CELL_MAX)
    assert huge.output_type == "stream" and "is not shown" in huge.text


def test_cap_student_text_bounds_the_whole_notebook():
    cells = [new_code_cell("c" * feedback.CELL_MAX) for _ in range(
        3 * feedback.NOTEBOOK_MAX // feedback.CELL_MAX)]
    capped = feedback.cap_student_text(_student_nb(*cells))
    total = sum(len(c.source) for c in capped.cells)
    assert total <= feedback.NOTEBOOK_MAX + 200 * len(cells)
    assert "is not shown" in capped.cells[-1].source


def test_attachments_count_with_the_images():
    small = nbformat.v4.new_markdown_cell("![a](attachment:a.png)")
    small["attachments"] = {"a.png": {"image/png": "a" * 1000}}
    huge = nbformat.v4.new_markdown_cell("![b](attachment:b.png)")
    huge["attachments"] = {"b.png": {"image/png": "b" * feedback.IMAGES_MAX}}
    capped = feedback.cap_student_text(_student_nb(small, huge))
    assert capped.cells[0].attachments == small.attachments
    assert "attachments" not in capped.cells[1]
    assert "are not shown in the feedback" in capped.cells[1].source


def test_a_page_of_slow_text_renders_shortened(tmp_path):
    """Cells that nbconvert renders slowly (quadratic regexes, pygments
    on long operators) come out cut, with long code uncoloured; the
    grader's verdict stays whole."""
    slow = [nbformat.v4.new_markdown_cell("[" * 300_000),
            nbformat.v4.new_markdown_cell("[a](" * 100_000),
            new_code_cell("*" * (feedback.HIGHLIGHT_MAX + 1)),
            new_code_cell("x = 1")]
    html, _ = feedback.OfflineFeedbackExporter().from_notebook_node(
        _student_nb(*slow))
    assert html.count("is not shown in the feedback") == 2
    assert "[" * 300_000 not in html
    # long code: escaped, without pygments' spans; short code coloured
    assert "*" * (feedback.HIGHLIGHT_MAX + 1) in html
    assert '<span class="n">x</span>' in html



def test_cap_leaves_an_honest_notebook_whole():
    """Every assignment's solution, as a student would submit it, is far
    under the limits: its feedback shows it whole."""
    paths = sorted((Path(__file__).parents[1] / "solutions").glob(
        "*/*.ipynb"))
    assert len(paths) >= 6
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        assert feedback.cap_student_text(nb) == nb, path
