"""Sphinx extension: a self-contained, downloadable course site.

Loaded by ``_config.yml`` (``sphinx.local_extensions``). For every page
it writes:

- **.ipynb download.** Each executed notebook chapter (myst-nb writes it
  to ``_build/jupyter_execute/<page>.ipynb``) is copied, with its outputs,
  to ``_sources/<page>.ipynb`` in the site, and the theme's download menu
  offers it (``ipynb_source``), next to the ``.md`` source.
- **Opens as a notebook.** Its markdown cells are converted from MyST to
  what Jupyter and Colab render (``tools/nbexport.py``: numbered
  equations, citations, admonitions, diagrams as SVG attachments).
- **Runs elsewhere.** A notebook that imports ``dlopt`` gets a first cell
  that installs it from the repository when it is missing (Colab).
- **Binder** opens ``book/<chapter>.ipynb``, which ``binder/postBuild``
  writes in the launch environment (``binder/requirements.txt``: only what
  the chapters need, CPU torch).
- **Colab** cannot open a MyST ``.md`` file, so the Colab button opens
  that ``.ipynb`` from the published branch (``book_site_pages_branch``,
  ``gh-pages`` as written by ``.github/workflows/pages.yml``).
- **No CDN.** sphinx-thebe puts a ``https://unpkg.com`` thebe URL and its
  loader on every page; live code needs a remote kernel anyway (the Binder
  button is the way to run a chapter), so both are dropped. Matplotlib's
  ``to_jshtml`` animations link Font Awesome 4 from a CDN; that link is
  removed, the player's icons are drawn as inline SVG (no icon font needed,
  ``tools/bookhtml.py``), the animation's ``<img>`` gets alt text and its
  buttons wrap on a phone.
- **Kernels.** Chapters import ``tools.bookhtml`` (the book-only HTML
  exports): the repository root is put on the kernels' ``PYTHONPATH``.
  Figures are SVG in the book's matplotlib style (``tools/matplotlibrc``).
- **Outputs read like Jupyter's.** A cell's consecutive prints are one
  output box; carriage returns and backspaces are applied (a progress bar
  redrawn shows once, as last drawn), as in Jupyter (``merge_streams``,
  in place of myst-nb's ``coalesce_streams``).
- **Lighter pages.** The theme loads Font Awesome twice: as webfonts
  (its CSS) and as a 1.5 MB script that swaps icons for SVG. The icons
  look the same from the webfonts alone, so the script tag is removed
  from the written pages (it keeps pages with widgets under 5 MB).
- **Chinese that renders.** The site serves Noto Sans SC (npm
  ``@fontsource/noto-sans-sc``, unicode-range subsets) and puts it after
  the system fonts (``tools/static/book_site.css``).
- **Quiet console.** The theme's colour mode defaults to ``auto``. The
  ipywidgets HTML manager typesets labels through MathJax 2's
  ``MathJax.Hub.Queue``; the site runs MathJax 3, so a small shim
  translates (without it every widget page throws errors).
- **Accessible names** where the generated HTML lacks them: graphviz
  ``<object>`` diagrams get ``role="img"`` and their alt text as
  ``aria-label``; animation sliders and widget slider handles get a
  label; citation entries inside ``role="list"`` become list items.
"""
from __future__ import annotations

import html
import json
import os
import shutil
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bookhtml import svg_controls  # noqa: E402
from nbexport import convert_notebook  # noqa: E402

__all__ = ["setup"]

_FA_CDN_LINK = re.compile(
    r'<link[^>]*href="https?://[^"]*font-awesome[^"]*"[^>]*>', re.S)
_ANIM_IMG = re.compile(r'<img id="(_anim_img[0-9a-fA-F]*)">')
_ANIM_SLIDER = re.compile(r'<input id="(_anim_slider[0-9a-fA-F]*)"')
_GRAPHVIZ = re.compile(
    r'<object (data="[^"]*" type="image/svg\+xml" class="graphviz")>'
    r'(\s*<p class="warning">(.*?)</p>)', re.S)
# On a phone the animation's row of nine buttons is wider than the
# screen: let it wrap instead of hiding the last buttons.
_ANIM_CSS = ("<style>.animation { max-width: 100%; } "
             ".animation .anim-buttons { display: flex; flex-wrap: wrap; "
             "justify-content: center; }</style>\n")
# Long inline code (a call with its arguments) must wrap on a phone
# instead of widening the page.
_CODE_CSS = ("<style>code.literal { overflow-wrap: anywhere; } "
             "code.literal span.pre { white-space: pre-wrap; }</style>\n")
def terminal_text(text: str) -> str:
    """Stream text as a terminal (or Jupyter) leaves it: a carriage
    return restarts its line (a progress bar redrawn shows once, as last
    drawn), a backspace deletes the character before it."""
    while re.search("[^\n\x08]\x08", text):
        text = re.sub("[^\n\x08]\x08", "", text, count=1)
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r") if p]
            line = parts[-1] if parts else ""
        lines.append(line)
    return "\n".join(lines)


def merge_streams(outputs: list) -> list:
    """Adjacent stream outputs of the same name as one output (one box on
    the page), their texts joined as they were written, then read as a
    terminal shows them (``terminal_text``). Replaces myst-nb 1.4's
    ``coalesce_streams``, which appends a newline after every chunk (a
    progress bar's redraw became a second line) and moves later text of a
    stream before the figures between."""
    import copy

    merged, last = [], None
    for out in outputs:
        if out.get("output_type") != "stream":
            merged.append(out)
            last = None
            continue
        text = out.get("text", "")
        text = "".join(text) if isinstance(text, list) else text
        if last is not None and last["name"] == out["name"]:
            last["text"] += text
            continue
        out = copy.deepcopy(out)
        out["text"] = text
        merged.append(out)
        last = out
    for out in merged:
        if out.get("output_type") == "stream":
            out["text"] = terminal_text(out["text"])
    return [o for o in merged
            if o.get("output_type") != "stream" or o["text"].strip()]


def use_merge_streams(app, config):
    """myst-nb's renderer calls our ``merge_streams`` (nb_merge_streams)."""
    from myst_nb.core import render

    if getattr(render, "coalesce_streams", None) is not merge_streams:
        render.coalesce_streams = merge_streams


_ANIM_ALT = ("Animation frame: use the buttons or the slider below "
             "to play and step through it")


# MathJax 2 API used by @jupyter-widgets/base (html-manager 1.x) on top of
# MathJax 3; and names for the widgets' slider handles (noUiSlider).
WIDGETS_SHIM = r"""
document.addEventListener('DOMContentLoaded', () => {
  if (!document.querySelector(
      'script[type="application/vnd.jupyter.widget-view+json"]')) return;
  const mj = window.MathJax;
  if (mj && mj.typesetPromise && !mj.Hub) {
    mj.Hub = {Queue: (...jobs) => {
      for (const job of jobs) {
        if (Array.isArray(job) && job[0] === 'Typeset' && job[2]) {
          mj.startup.promise.then(() => mj.typesetPromise([job[2]]))
            .catch((e) => console.warn('MathJax in a widget:', e));
        }
      }
    }};
  }
  const name = () => {
    for (const h of document.querySelectorAll(
        '.widget-subarea .noUi-handle:not([aria-label])')) {
      const w = h.closest('.widget-inline-hbox');
      const label = w && w.querySelector('.widget-label');
      const text = label && label.textContent.trim();
      h.setAttribute('aria-label', text || 'slider');
    }
  };
  new MutationObserver(name).observe(document.body,
                                     {childList: true, subtree: true});
});
"""


def _is_thebe(asset) -> bool:
    name = getattr(asset, "filename", None) or ""
    body = getattr(asset, "attributes", {}).get("body", "") or ""
    return "thebe" in name or "THEBE_JS_URL" in body


def _executed_notebook(app, pagename: str) -> Path | None:
    path = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    return path if path.is_file() else None


def _with_outputs(app, nb: dict) -> dict:
    """The notebook with its outputs.

    On a cache hit myst-nb 1.4 writes jupyter_execute/<page>.ipynb
    *without* the cached outputs (it writes the notebook it read, not the
    merged one), so merge them from the jupyter-cache here.
    """
    code = [c for c in nb.get("cells", []) if c["cell_type"] == "code"]
    if not code or any(c.get("outputs") for c in code):
        return nb
    config = getattr(app.env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":
        return nb
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(config.execution_cache_path)
    try:
        _, merged = cache.merge_match_into_notebook(
            nbformat.from_dict(nb))
    except KeyError:
        return nb
    return merged


SETUP_TAG = "course-setup"


def _repository_url(app) -> str:
    config = getattr(app, "config", None)
    options = getattr(config, "html_theme_options", None) or {}
    return options.get("repository_url", "")


def _code(nb: dict) -> str:
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list)
                     else c["source"] for c in nb.get("cells", [])
                     if c["cell_type"] == "code")


def _setup_cell(repo: str) -> dict:
    """A first cell that installs dlopt where it is missing (Colab)."""
    return {"cell_type": "code", "execution_count": None,
            "id": "course-setup", "outputs": [],
            "metadata": {"tags": [SETUP_TAG]},
            "source": [
                "# Outside the course repository (e.g. on Colab), install\n",
                "# the course's package dlopt first.\n",
                "try:\n",
                "    import dlopt  # noqa: F401\n",
                "except ImportError:\n",
                f"    %pip install -q git+{repo}\n"]}


def _write_ipynb(app, source: Path, target: Path) -> None:
    """Copy an executed notebook with its outputs, minus the jupytext
    pairing metadata."""
    nb = _with_outputs(app, json.loads(source.read_text(encoding="utf-8")))
    nb.get("metadata", {}).pop("jupytext", None)
    nb.get("metadata", {}).pop("source_map", None)
    bibs = getattr(getattr(app, "config", None), "bibtex_bibfiles",
                   None) or []
    bib = Path(getattr(app, "srcdir", ".")) / bibs[0] if bibs else None
    convert_notebook(nb, str(bib) if bib and bib.is_file() else None)
    repo = _repository_url(app)
    code = _code(nb)
    if repo and ("import dlopt" in code or "from dlopt" in code):
        cells = nb["cells"]
        at = 1 if cells and cells[0]["cell_type"] == "markdown" else 0
        cells.insert(at, _setup_cell(repo))
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if not target.is_file() or target.read_text("utf-8") != text:
        target.write_text(text, encoding="utf-8")


def add_notebook_download(app, pagename, templatename, context, doctree):
    """Before the theme's buttons (priority 501): offer the .ipynb."""
    if app.builder.format != "html":
        return
    source = _executed_notebook(app, pagename)
    if source is None:
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    _write_ipynb(app, source, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _iter_buttons(buttons):
    for button in buttons:
        yield button
        yield from _iter_buttons(button.get("buttons", []))


def point_colab_to_ipynb(app, pagename, templatename, context, doctree):
    """After the theme's buttons: Colab opens the published .ipynb.

    The theme copies md notebooks to _sources too (when launch buttons
    are on), with jupytext metadata: rewrite ours over it.
    """
    add_notebook_download(app, pagename, templatename, context, doctree)
    ipynb = context.get("ipynb_source")
    for button in _iter_buttons(context.get("header_buttons", [])):
        if ipynb and button.get("text") == "Binder":
            # binder/postBuild writes book/<chapter>.ipynb (converted)
            button["url"] = re.sub(r"\.md$", ".ipynb", button["url"])
        if not ipynb or button.get("text") != "Colab":
            continue
        match = re.match(r"(.*/github/[^/]+/[^/]+/blob/)", button["url"])
        if match:
            branch = app.config.book_site_pages_branch
            button["url"] = (f"{match.group(1)}{branch}/_sources/"
                             f"{ipynb}")


def _label_graphviz(match) -> str:
    alt = html.unescape(re.sub(r"<[^>]+>", "", match.group(3))).strip()
    return (f'<object {match.group(1)} role="img" '
            f'aria-label="{html.escape(alt, quote=True)}">{match.group(2)}')


def drop_cdn_references(app, pagename, templatename, context, doctree):
    """Remove thebe's CDN loader and CDN links inside rendered outputs."""
    if "script_files" in context:
        context["script_files"] = [
            js for js in context["script_files"] if not _is_thebe(js)]
    if "css_files" in context:
        context["css_files"] = [
            css for css in context["css_files"] if not _is_thebe(css)]
    body = context.get("body")
    if body:
        body = _FA_CDN_LINK.sub("", body)
        if 'class="anim-buttons"' in body:
            body = svg_controls(body)
        body = _ANIM_IMG.sub(
            lambda m: f'<img id="{m.group(1)}" alt="{_ANIM_ALT}">', body)
        body = _ANIM_SLIDER.sub(
            lambda m: f'<input id="{m.group(1)}" aria-label="Frame"', body)
        body = _GRAPHVIZ.sub(_label_graphviz, body)
        if 'class="anim-buttons"' in body:
            body = _ANIM_CSS + body
        if 'class="docutils literal' in body:
            body = _CODE_CSS + body
        if 'role="list" class="citation-list"' in body:
            body = body.replace(
                'role="doc-biblioentry"', 'role="listitem"')
        context["body"] = body


def default_colour_mode(app, config):
    """pydata-sphinx-theme logs a console error ("Got invalid theme mode")
    on a reader's first visit when no default mode is configured."""
    config.html_context.setdefault("default_mode", "auto")


_FA_SCRIPT = re.compile(
    r'[ \t]*<script defer src="[^"]*_static/scripts/fontawesome\.js'
    r'[^"]*"></script>\n?')


def drop_fontawesome_script(app, exception):
    """Remove the theme's Font Awesome script from every written page."""
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        lighter = _FA_SCRIPT.sub("", text)
        if lighter != text:
            page.write_text(lighter, encoding="utf-8")


KERNEL_CONFIG = """\
# Written by tools/book_site.py: how the book's kernels draw figures.
c.InlineBackend.figure_formats = {"svg"}
"""
# Every figure a chapter displays is first made readable on the page
# (tools.bookhtml.readable: at most the column's width, no text under
# 11.5 pt), and its SVG is compacted (tools.bookhtml.compact_svg). The
# inline backend binds IPython's print_figure when it is activated, after
# this startup file has run.
KERNEL_STARTUP = """\
# Written by tools/book_site.py.
import IPython.core.pylabtools as _pylabtools

_print_figure = _pylabtools.print_figure


def _book_print_figure(fig, fmt="png", *args, **kwargs):
    from tools.bookhtml import compact_svg, readable
    readable(fig)
    out = _print_figure(fig, fmt, *args, **kwargs)
    if fmt == "svg" and isinstance(out, str):
        out = compact_svg(out)
    return out


_pylabtools.print_figure = _book_print_figure
"""


def kernel_environment(app, config):
    """The environment of the kernels the build starts (they inherit this
    process's): chapters import ``tools.bookhtml`` whether or not the
    repository is installed; matplotlib uses the book's style
    (``tools/matplotlibrc``) and inline figures are SVG (an IPython
    profile under the build directory)."""
    tools = Path(__file__).resolve().parent
    root = str(tools.parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
             if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    os.environ["MATPLOTLIBRC"] = str(tools / "matplotlibrc")
    ipython = Path(app.outdir).parent / "ipython"
    profile = ipython / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "startup").mkdir(exist_ok=True)
    for target, text in ((profile / "ipython_kernel_config.py",
                          KERNEL_CONFIG),
                         (profile / "startup" / "00-book-figures.py",
                          KERNEL_STARTUP)):
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
    os.environ["IPYTHONDIR"] = str(ipython)


STATIC = Path(__file__).resolve().parent / "static"
# Noto Sans SC (Makefile: npm @fontsource/noto-sans-sc -> _assets/).
CSS_FILES = ["noto-sans-sc/400.css", "book_site.css"]


def add_static_files(app, config):
    """tools/static/ (the site's own CSS) is copied to _static/."""
    if str(STATIC) not in map(str, config.html_static_path):
        config.html_static_path.append(str(STATIC))


def refresh_static_files(app, exc):
    """Sphinx copies static files only when some page is rewritten; a
    cached rebuild after a CSS-only change must still ship the new CSS."""
    if exc is None and app.builder.format == "html":
        out = Path(app.outdir) / "_static"
        for f in STATIC.rglob("*"):
            if f.is_file():
                dest = out / f.relative_to(STATIC)
                if not dest.is_file() or dest.read_bytes() != f.read_bytes():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, dest)


# jupyter-book's own extensions that do not declare whether they are
# safe for parallel reading (Sphinx would then read serially, with a
# warning that -W makes an error). Both are: sphinx_multitoc_numbering
# replaces the section numbering, which runs in the main process after
# every page is read; sphinx_jupyterbook_latex adds nodes and per-page
# transforms that keep no state.
PARALLEL_SAFE = ("sphinx_multitoc_numbering", "sphinx_jupyterbook_latex")


def declare_parallel_safe(app):
    for name in PARALLEL_SAFE:
        ext = app.extensions.get(name)
        if ext is not None and ext.parallel_read_safe is None:
            ext.parallel_read_safe = True


def setup(app):
    app.connect("builder-inited", declare_parallel_safe)
    app.connect("config-inited", kernel_environment)
    app.connect("config-inited", add_static_files)
    app.connect("build-finished", refresh_static_files)
    app.connect("config-inited", use_merge_streams)
    for css in CSS_FILES:
        app.add_css_file(css)
    app.connect("config-inited", default_colour_mode)
    app.add_js_file(None, body=WIDGETS_SHIM)
    app.connect("build-finished", drop_fontawesome_script)
    app.add_config_value("book_site_pages_branch", "gh-pages", "html")
    app.connect("html-page-context", add_notebook_download, priority=400)
    app.connect("html-page-context", point_colab_to_ipynb, priority=600)
    app.connect("html-page-context", drop_cdn_references, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True,
            "version": "1"}
