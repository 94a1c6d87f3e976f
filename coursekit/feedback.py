"""Feedback students can read offline, and that never reveals hidden tests.

nbgrader's feedback is the autograded notebook as HTML, hidden tests and
tracebacks included, with MathJax from a CDN. Here (configured in
``nbgrader_config.py``, so plain ``nbgrader generate_feedback`` does it
too):

* :class:`ScrubFeedback` runs after nbgrader's ``ClearHiddenTests`` (which
  drops the hidden code) and replaces each test cell's outputs by one
  verdict: passed, or failed with the grader's message (``Feedback``
  errors, written by the sandboxed grading: a hidden check says "Hidden
  check ..." and names its input when that input is not secret). The
  message is HTML, so its formulas (``$...$``) are typeset, and it wraps
  instead of running off the box's edge;
* :class:`OfflineFeedbackExporter` makes every page self-contained: the
  site's own MathJax 3 (``tex-svg-full.js`` from ``make assets``:
  ``_assets/mathjax`` or ``node_modules/mathjax/es5``) is inlined, SVG
  output needs no font files, and nothing is loaded from the network --
  students open the page from disk, and ``release_feedback`` copies only
  the ``.html`` file;
* :func:`generate` (``python -m coursekit feedback``) runs nbgrader's
  ``generate_feedback`` and then writes a *note* for every submission that
  could not be graded because a notebook was missing, misnamed or not
  valid JSON: it says which notebook was expected and what was found.
"""
from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import markupsafe
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor

from coursekit import nbmeta
from coursekit.config import REPO, CourseConfig

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GRADER_ERRORS = ("Feedback", "AssertionError", "NotRun", "KernelStopped",
                  "CellTimeoutError")


def _verdict_html(ok: bool, points: float, message: str,
                  got: float | None = None) -> str:
    p = f"{points:g}"
    if got is not None:
        head = f"◐ partial credit ({got:g} / {p} points)"
    elif ok:
        head = f"✔ passed ({p} / {p} points)"
    else:
        head = f"✘ failed (0 / {p} points)"
    body = f": {markupsafe.escape(message)}" if message else ""
    cls = "ck-pass" if ok else "ck-fail"
    return (f'<div class="ck-verdict {cls}"><strong>{head}</strong>'
            f'{body}</div>')


class ScrubFeedback(NbGraderPreprocessor):
    """Replace test-cell outputs with a pass/fail verdict and the message."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not nbmeta.meta(cell).get("grade"):
            return cell, resources
        points = nbmeta.points(cell)
        errors = [o for o in cell.get("outputs", [])
                  if o.get("output_type") == "error"]
        if errors:
            err = errors[-1]
            message = _ANSI.sub("", str(err.get("evalue", ""))).strip()
            if err.get("ename") in _GRADER_ERRORS and message:
                # The grader's own explanation (coursekit.execute).
                pass
            else:
                # The student's own code raised: its type and message are
                # the student's, and useful; the traceback would show
                # the test code, so it is left out.
                message = f"your code raised {err.get('ename')}: {message}"
            ok = False
        else:
            ok, message = True, ""
        # the grader's own text (a note, or why credit is partial); what
        # the kernel printed never carries this mark (coursekit.execute)
        graded = [o for o in cell.get("outputs", [])
                  if o.get("output_type") == "display_data"
                  and (o.get("metadata") or {}).get(nbmeta.GRADER_KEY)]
        extra = "\n".join(str(o["data"].get("text/plain", ""))
                          for o in graded).strip()
        if extra and not errors:
            message = extra
        got = None
        for o in cell.get("outputs", []):       # partial credit (execute)
            if o.get("output_type") == "execute_result" and not errors:
                try:
                    got = float(o["data"]["text/plain"])
                except (KeyError, TypeError, ValueError):
                    got = None
        if got is not None and got >= points:
            got = None
        message = _cut(message, MESSAGE_MAX, "message")
        text = _verdict_html(ok, points, message, got)
        plain = ("◐ partial credit" if got is not None else
                 "✔ passed" if ok else "✘ failed") + \
            (f": {message}" if message else "")
        cell.outputs = [new_output("display_data", data={
            "text/html": text, "text/plain": plain})]
        return cell, resources


# ---- self-contained HTML ---------------------------------------------------

_MATHJAX_BLOCK = re.compile(
    r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
    re.S)
_REMOTE = re.compile(
    r"<(script|link)\b[^>]*\b(src|href)=[\"']https?://[^>]*>"
    r"(\s*</script>)?", re.I)

STYLE = """<style>
/* coursekit: long messages wrap inside the output box */
div.output_area pre, div.output_subarea pre, .ck-verdict {
  white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word;
}
.ck-verdict { font-family: sans-serif; padding: .4em .6em;
  border-left: 4px solid; max-width: 100%; box-sizing: border-box; }
.ck-pass { border-color: #2e7d32; }
.ck-fail { border-color: #c62828; }
mjx-container { max-width: 100%; overflow-x: auto; overflow-y: hidden; }
</style>
"""

MATHJAX_CONFIG = """<script>
window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']],
        displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
        processEscapes: true},
  svg: {fontCache: 'global'},
  options: {enableMenu: false}
};
</script>
"""


def mathjax_file(repo: Path = REPO) -> Path:
    for p in (repo / "_assets" / "mathjax" / "tex-svg-full.js",
              repo / "node_modules" / "mathjax" / "es5" / "tex-svg-full.js"):
        if p.is_file():
            return p
    raise FileNotFoundError(
        "MathJax for offline feedback not found (_assets/mathjax/"
        "tex-svg-full.js): run `make assets` (npm ci) first")


_MATHJAX_JS: dict[str, str] = {}


def offline_head(repo: Path = REPO) -> str:
    path = mathjax_file(repo)
    if str(path) not in _MATHJAX_JS:
        _MATHJAX_JS[str(path)] = path.read_text().replace("</script",
                                                          "<\\/script")
    return (STYLE + MATHJAX_CONFIG + "<script>\n" + _MATHJAX_JS[str(path)]
            + "\n</script>\n")


def make_offline(page: str, repo: Path = REPO) -> str:
    """The page with its CDN MathJax replaced by the inlined local copy,
    the wrapping style added, and no remote script or stylesheet."""
    page = _MATHJAX_BLOCK.sub("", page)
    page = _REMOTE.sub("", page)
    return page.replace("</head>", offline_head(repo) + "</head>", 1)


# nbconvert's strip_files_prefix (applied to every markdown cell's HTML)
# matches ``\[(.*?)\]\(/?files/(.*?)\)``: its lazy ``.*?`` rescans the
# rest of the text from every ``[``, so one line of 200,000 ``[`` took
# 238 s and stalled a class's feedback. The same rewrite, with the
# caption and location not crossing a bracket, a parenthesis or a line:
# each character is scanned a bounded number of times.
_FILES_URL = re.compile(r"""(src|href)\=(['"]?)/?files/""")
_MD_FILES_URL = re.compile(
    r"(!?)\[(?P<caption>[^\[\]\n]*)\]\(/?files/(?P<location>[^()\n]*)\)")


def strip_files_prefix(text: str) -> str:
    """``files/x`` -> ``x`` in links and sources, in linear time."""
    text = _FILES_URL.sub(r"\1=\2", text)
    return _MD_FILES_URL.sub(r"\1[\2](\3)", text)


# How much of the student's own text a feedback page renders. Markdown,
# HTML sanitizing and syntax highlighting cost up to about 50 us per
# character (and pygments is quadratic on some inputs), so an unbounded
# notebook is an unbounded stall for the whole class's feedback run. An
# honest notebook is far below these limits; the submission itself is
# kept whole, only its feedback page shortens.
CELL_MAX = 10_000          # characters of one cell's source, or outputs
NOTEBOOK_MAX = 100_000     # characters of student text in all
HIGHLIGHT_MAX = 3_000      # longer code is shown without colours
MESSAGE_MAX = 4_000        # characters of a verdict's message
IMAGES_MAX = 8_000_000     # base64 characters of images in all (a plot:
#                            20-100 KB; embedded as they are, no parsing)


def _cut(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    return (text[:limit] + f"\n\n[... the rest of this {what} "
            f"({len(text) - limit:,} characters) is not shown in the "
            f"feedback; your notebook is kept whole ...]")


_IMAGES = ("image/png", "image/jpeg", "image/gif")


def _output_text(out) -> tuple[int, int, str]:
    """An output's text size (characters), its images' size (base64
    characters: embedded as they are, cheap to render) and its plain
    text."""
    kind = out.get("output_type")
    if kind == "stream":
        text = str(out.get("text", ""))
        return len(text), 0, text
    if kind == "error":
        tb = "\n".join(map(str, out.get("traceback", [])))
        return (len(tb) + len(str(out.get("evalue", ""))), 0,
                _ANSI.sub("", tb))
    data = out.get("data") or {}
    # a figure's text/plain ("<Figure ...>") is not shown beside it
    skip = _IMAGES + (("text/plain",) if set(_IMAGES) & set(data) else ())
    return (sum(len(str(v)) for k, v in data.items() if k not in skip),
            sum(len(str(v)) for k, v in data.items() if k in _IMAGES),
            str(data.get("text/plain", "")))


def cap_student_text(nb):
    """A copy of ``nb`` whose student-written text (every cell's source
    but the instructor's locked and test cells, and every output but
    the grader's verdicts) is at most ``CELL_MAX`` characters per cell
    and ``NOTEBOOK_MAX`` in all. An output over what is left becomes
    plain text, cut; images have a budget of their own (``IMAGES_MAX``
    encoded characters: a page of plots, not a 100 MB one)."""
    nb = copy.deepcopy(nb)
    left, images = NOTEBOOK_MAX, IMAGES_MAX
    for cell in nb.cells:
        test = nbmeta.is_test(cell)
        if not (test or nbmeta.is_locked(cell)):
            src = str(cell.get("source", ""))
            keep = max(0, min(CELL_MAX, left))
            cell.source = _cut(src, keep, "cell")
            left -= min(len(src), keep)
            # a markdown cell's attached images count with the others
            size = sum(len(str(v)) for a in (cell.get("attachments") or
                                             {}).values()
                       for v in (a or {}).values())
            if size > images:
                del cell["attachments"]
                cell.source += (f"\n\n[... this cell's attachments "
                                f"({size:,} characters) are not shown in "
                                f"the feedback ...]")
            elif size:
                images -= size
        if test or cell.get("cell_type") != "code":
            continue
        budget = max(0, min(CELL_MAX, left))
        outputs = []
        for out in cell.get("outputs", []):
            size, image, text = _output_text(out)
            if size > budget or image > images:
                out = new_output("stream", name="stdout",
                                 text=_cut(text, budget, "output"))
                size, image = min(len(text), budget), 0
            budget -= size
            left -= size
            images -= image
            outputs.append(out)
        cell.outputs = outputs
    return nb


def _highlight(plain_above: int, highlight):
    """``highlight`` for code up to ``plain_above`` characters; longer
    code escaped, without colours (pygments is slow, even quadratic, on
    some long inputs)."""
    def fn(source, language=None, metadata=None):
        if len(source) > plain_above:
            return (f'<div class="highlight"><pre>'
                    f'{markupsafe.escape(source)}</pre></div>')
        return highlight(source, language=language, metadata=metadata)
    return fn


class OfflineFeedbackExporter(HTMLExporter):
    """nbgrader's feedback HTML, self-contained (see :func:`make_offline`),
    rendered in time linear in the notebook's size (see
    :func:`strip_files_prefix` and :func:`cap_student_text`)."""

    def default_filters(self):
        for name, fn in super().default_filters():
            yield name, (strip_files_prefix if name == "strip_files_prefix"
                         else fn)

    def from_notebook_node(self, nb, resources=None, **kw):
        nb = cap_student_text(nb)
        info = nb.metadata.get("language_info", {})
        base = self.filters.get("highlight_code") or Highlight2HTML(
            pygments_lexer=info.get("pygments_lexer", info.get("name")),
            parent=self)
        configured = self.filters
        self.filters = {**configured,
                        "highlight_code": _highlight(HIGHLIGHT_MAX, base)}
        try:
            output, resources = super().from_notebook_node(nb, resources,
                                                           **kw)
        finally:
            self.filters = configured
        return make_offline(output), resources


# ---- notes for submissions that could not be graded -----------------------

NOTE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>{style}</head>
<body style="font-family: sans-serif; max-width: 48em; margin: 2em auto;">
<h1>{title}</h1>
<div class="ck-verdict ck-fail"><strong>✘ not graded: 0 points</strong>
{items}</div>
<p>Resubmit the assignment with the notebook under its expected name
(<code>nbgrader submit {assignment}</code> from the assignment's folder, or
the Assignments tab), before the due date, to be graded.</p>
</body></html>
"""


def note_page(assignment: str, student: str, problems) -> str:
    items = "".join(f"<p>{markupsafe.escape(p.where)}: "
                    f"{markupsafe.escape(p.message)}</p>" for p in problems)
    title = markupsafe.escape(f"{assignment}: feedback for {student}")
    return NOTE.format(title=title, style=STYLE, items=items,
                       assignment=markupsafe.escape(assignment))


def write_notes(cfg: CourseConfig, assignment: str) -> list[Path]:
    """A feedback note for every submission with a missing, misnamed or
    invalid notebook: under the expected notebook's name and under the
    name of every notebook the student did submit (so ``fetch_feedback``,
    which looks for the student's own notebook names, finds it)."""
    from coursekit.autograde import check_submission, submissions
    written = []
    for s in submissions(cfg.grading_dir, assignment):
        if not cfg.in_shard(s):
            continue
        folder = cfg.path("submitted") / s / assignment
        problems = check_submission(folder, s, assignment, cfg)
        if not problems:
            continue
        out = cfg.path("feedback") / s / assignment
        out.mkdir(parents=True, exist_ok=True)
        for extra in ("timestamp.txt", "submission_secret.txt"):
            if (folder / extra).is_file():
                shutil.copyfile(folder / extra, out / extra)
        names = {Path(n).stem for n in cfg.expected_notebooks(assignment)}
        names |= {p.stem for p in folder.glob("*.ipynb")}
        page = note_page(assignment, s, problems)
        for stem in sorted(names):
            target = out / f"{stem}.html"
            target.write_text(page)
            written.append(target)
    return written


def generate(cfg: CourseConfig, assignment: str, student=None) -> dict:
    """nbgrader's generate_feedback (self-contained pages, no hidden
    tests), then a note for every submission that could not be graded."""
    from coursekit import pipeline
    extra = [f"--student={student}"] if student else []
    try:
        pipeline.nbgrader("generate_feedback", assignment, "--force",
                          *extra, cfg=cfg)
    except pipeline.NbgraderError as exc:
        # nbgrader stops at a student without an autograded notebook;
        # the notes below cover exactly those
        if "autograded" not in str(exc) and "No notebooks" not in str(exc):
            raise
    notes = write_notes(cfg, assignment)
    pages = sorted((cfg.path("feedback")).glob(f"*/{assignment}/*.html"))
    return dict(pages=pages, notes=notes)
