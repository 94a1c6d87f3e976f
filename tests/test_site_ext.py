"""Unit tests of tools/book_site.py, the Sphinx extension that keeps the
site self-contained (the browser tests in test_site.py check the result
on real pages)."""
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import book_site  # noqa: E402
import sitecheck  # noqa: E402


class _JS(str):
    def __new__(cls, filename, body=""):
        obj = super().__new__(cls, filename or "")
        obj.filename, obj.attributes = filename, {"body": body}
        return obj


ANIM = ('<link rel="stylesheet"\nhref="https://maxcdn.bootstrapcdn.com/'
        'font-awesome/4.4.0/css/font-awesome.min.css">\n<div class='
        '"animation">\n  <img id="_anim_img0a1b">\n  <div class="anim-'
        'controls">\n    <input id="_anim_slider0a1b" type="range">\n'
        '    <div class="anim-buttons"></div></div></div>')
GRAPHVIZ = ('<div class="graphviz"><object data="../_images/g.svg" '
            'type="image/svg+xml" class="graphviz">\n<p class="warning">'
            'x &amp; y "quoted"</p></object></div>')
CITES = ('<div role="list" class="citation-list">\n<div class="citation" '
         'id="id1" role="doc-biblioentry">')


def _page(body):
    context = {"body": body, "script_files": [
        _JS("_static/doctools.js"),
        _JS(None, 'const THEBE_JS_URL = "https://unpkg.com/thebe"'),
        _JS("_static/sphinx-thebe.js")],
        "css_files": [_JS("_static/sphinx-thebe.css"),
                      _JS("_static/basic.css")]}
    book_site.drop_cdn_references(None, "p", "page.html", context, None)
    return context


def test_thebe_scripts_and_styles_are_dropped():
    context = _page("")
    assert [js.filename for js in context["script_files"]] == [
        "_static/doctools.js"]
    assert [c.filename for c in context["css_files"]] == [
        "_static/basic.css"]


def test_animation_loses_its_cdn_link_and_gains_names():
    body = _page(ANIM)["body"]
    assert "https://" not in body
    assert '<img id="_anim_img0a1b" alt="Animation frame' in body
    assert '<input id="_anim_slider0a1b" aria-label="Frame"' in body
    assert body.startswith("<style>") and "flex-wrap: wrap" in body


def test_graphviz_object_gets_role_img_and_its_alt_as_label():
    body = _page(GRAPHVIZ)["body"]
    assert 'role="img" aria-label="x &amp; y &quot;quoted&quot;"' in body
    assert '<p class="warning">' in body           # fallback kept


def test_citations_in_a_list_are_list_items():
    body = _page(CITES)["body"]
    assert 'role="listitem"' in body and "doc-biblioentry" not in body


def test_notebook_copy_drops_jupytext_metadata(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": [
        {"cell_type": "code", "source": "1", "metadata": {},
         "execution_count": 1, "outputs": [
             {"output_type": "execute_result", "execution_count": 1,
              "data": {"text/plain": "1"}, "metadata": {}}]}],
          "metadata": {"jupytext": {"a": 1}, "source_map": [1],
                       "kernelspec": {"name": "python3"}}}
    src, dst = tmp_path / "a.ipynb", tmp_path / "out" / "a.ipynb"
    src.write_text(json.dumps(nb))
    app = SimpleNamespace(env=SimpleNamespace())
    book_site._write_ipynb(app, src, dst)
    out = json.loads(dst.read_text())
    assert out["metadata"] == {"kernelspec": {"name": "python3"}}
    assert out["cells"][0]["outputs"] == nb["cells"][0]["outputs"]


def test_notebook_that_uses_dlopt_gets_an_install_cell(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("from dlopt.maps import relu_forward")])
    nb.metadata["kernelspec"] = {"name": "python3",
                                 "display_name": "Python 3"}
    src, dst = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    nbformat.write(nb, src)
    repo = "https://github.com/org/course"
    app = SimpleNamespace(env=SimpleNamespace(), config=SimpleNamespace(
        html_theme_options={"repository_url": repo}))
    book_site._write_ipynb(app, src, dst)
    out = nbformat.read(dst, as_version=4)
    nbformat.validate(out)
    assert out.cells[0].source == "# Title"
    first = out.cells[1]
    assert first.metadata["tags"] == [book_site.SETUP_TAG]
    assert f"%pip install -q git+{repo}" in first.source
    assert "except ImportError" in first.source
    assert out.cells[2].source == nb.cells[1].source


def test_fontawesome_script_tag_is_removed(tmp_path):
    page = tmp_path / "p.html"
    page.write_text('<head>\n  <script defer src="../_static/scripts/'
                    'fontawesome.js?digest=55c2"></script>\n<x></head>')
    app = SimpleNamespace(outdir=str(tmp_path),
                          builder=SimpleNamespace(format="html"))
    book_site.drop_fontawesome_script(app, None)
    assert page.read_text() == "<head>\n<x></head>"


def test_search_term_and_local_urls():
    assert sitecheck.search_term("Everything is a mapping") == "Everything"
    assert sitecheck.search_term("Where there are maps") is None
    assert sitecheck.is_local("http://127.0.0.1:8000/a.js")
    assert sitecheck.is_local("data:image/png;base64,AA")
    assert not sitecheck.is_local("https://unpkg.com/thebe")
    root = Path("/site")
    assert sitecheck.local_file(root, "http://127.0.0.1:1/b/c%20d.html#x") \
        == root / "b" / "c d.html"


# ------------------------------------------ MyST -> Jupyter markdown
import nbexport  # noqa: E402

MYST = '''\
(sec-x)=
## A section

$$
a = b
$$ (eq-first)

By {eq}`eq-first` and {eq}`eq-second`, see {cite}`fisher1936use`,
{term}`gradient <gradient descent>`, {doc}`notation` and
{ref}`the section <sec-x>`.

:::{admonition} Common mistake
:class: warning
Do not forget $x$ {eq}`eq-first`.
:::

$$
c = d
$$ (eq-second)

```{graphviz}
:alt: x to y
:caption: A graph.

digraph { x -> y }
```
'''


def test_myst_becomes_markdown_jupyter_renders():
    bib = str(REPO / "book" / "references.bib")
    nb = {"cells": [{"cell_type": "markdown", "metadata": {},
                     "source": MYST}]}
    nbexport.convert_notebook(nb, bib)
    cell = nb["cells"][0]
    out = cell["source"]
    assert nbexport.leftover_myst(out) == [], out
    assert nbexport.leftover_myst(MYST) != []
    assert "a = b \\tag{1}" in out and "c = d \\tag{2}" in out
    assert "[(1)](#eq-first)" in out and "[(2)](#eq-second)" in out
    assert '<a id="eq-first"></a>' in out and '<a id="sec-x"></a>' in out
    assert "(Fisher 1936)" in out
    assert "gradient," in out and "[notation](notation.ipynb)" in out
    assert "the section." in out
    assert "> **Common mistake**" in out and "> Do not forget $x$" in out
    assert "![x to y](attachment:graphviz-1.svg)" in out
    svg = cell["attachments"]["graphviz-1.svg"]["image/svg+xml"]
    import base64
    assert b"<svg" in base64.b64decode(svg)


def test_every_chapter_converts_without_leftover_myst():
    bib = str(REPO / "book" / "references.bib")
    for md in sorted((REPO / "book").glob("ch*.md")):
        body = md.read_text(encoding="utf-8").split("\n---\n", 1)[-1]
        cells = [{"cell_type": "markdown", "metadata": {}, "source": part}
                 for part in re.split(r"```\{code-cell\}.*?\n```\n", body,
                                      flags=re.S)]
        nbexport.convert_notebook({"cells": cells}, bib)
        for cell in cells:
            assert nbexport.leftover_myst(cell["source"]) == [], \
                (md.name, nbexport.leftover_myst(cell["source"]))


def test_myst_chapters_read_like_myst_nb_reads_them(tmp_path):
    """The launch environment's converter (no jupytext, no myst-nb) reads
    each chapter into the same cells as myst-nb does, and writes valid
    notebooks whose markdown has no MyST left."""
    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook

    chapters = sorted((REPO / "book").glob("ch*.md"))
    for md in chapters:
        text = md.read_text(encoding="utf-8")
        ours = nbexport.read_myst(text)
        ref = read_myst_markdown_notebook(text)
        assert [(c["cell_type"], c["source"].strip()) for c in ours["cells"]] \
            == [(c.cell_type, c.source.strip()) for c in ref.cells], md.name
        assert [c["metadata"].get("tags") for c in ours["cells"]] == \
            [c.metadata.get("tags") for c in ref.cells], md.name
        (tmp_path / md.name).write_text(text, encoding="utf-8")
    assert nbexport.main([str(tmp_path)]) == 0
    for md in chapters:
        nb = nbformat.read(tmp_path / f"{md.stem}.ipynb", as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                assert nbexport.leftover_myst(cell.source) == [], md.name


# ------------------------------------------------- launch environment
DEV_ONLY = {"jupyter-book", "nbgrader", "pytest", "pytest-xdist",
            "hypothesis", "playwright", "psycopg2-binary", "nbclient"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    return pins


def test_launch_environment_holds_what_the_chapters_import_and_cpu_torch():
    import importlib.metadata as md
    import sys as _sys

    binder = REPO / "binder" / "requirements.txt"
    pins = _pins(binder)
    assert pins["torch"].endswith("+cpu")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in \
        binder.read_text()
    assert not DEV_ONLY & set(pins), DEV_ONLY & set(pins)
    # same versions as the course's pins
    course = {**_pins(REPO / "constraints.txt"),
              **_pins(REPO / "requirements.txt")}
    for name, version in pins.items():
        assert course.get(name) == version.split("+")[0], name
    # every module the chapters (and dlopt, tools.bookhtml) import
    sources = [p.read_text() for p in (REPO / "book").glob("*.md")]
    sources += [p.read_text() for p in (REPO / "dlopt").glob("*.py")]
    sources += [(REPO / "tools" / n).read_text()
                for n in ("bookhtml.py", "nbexport.py")]
    modules = set()
    for text in sources:
        modules |= set(re.findall(r"^\s*(?:import|from) ([A-Za-z_]\w*)",
                                  text, re.M))
    dists = md.packages_distributions()
    local = {"dlopt", "tools", "coursekit", "gradients", "the", "a"}
    needed = set()
    for mod in modules - local - set(_sys.stdlib_module_names):
        names = dists.get(mod)
        assert names, f"chapters import {mod}: no distribution provides it"
        needed.add(names[0].lower())
    have = set(pins) | {"ipython"}      # IPython comes with jupyterlab
    missing = {n for n in needed if n not in have
               and n.replace("_", "-") not in have}
    assert not missing, f"binder/requirements.txt lacks {missing}"
    post = (REPO / "binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post
    assert "python -m tools.nbexport book" in post


def test_adjacent_prints_merge_and_a_redrawn_progress_line_shows_once():
    outputs = [
        {"output_type": "stream", "name": "stdout",
         "text": "grid:   0%| | 0/24"},
        {"output_type": "stream", "name": "stdout",
         "text": ["\r", "grid: 100%|#| 24/24"]},
        {"output_type": "stream", "name": "stdout", "text": "\nbest: 0.9\n"},
        {"output_type": "display_data", "data": {}, "metadata": {}},
        {"output_type": "stream", "name": "stdout", "text": "after"},
        {"output_type": "stream", "name": "stderr", "text": "ab\bc\n"},
    ]
    out = book_site.merge_streams(outputs)
    assert [o["output_type"] for o in out] == [
        "stream", "display_data", "stream", "stream"]
    assert out[0]["text"] == "grid: 100%|#| 24/24\nbest: 0.9\n"
    assert out[2]["text"] == "after"          # after the figure, as run
    assert out[3]["text"] == "ac\n"
    assert outputs[0]["text"] == "grid:   0%| | 0/24"   # inputs untouched


def test_myst_nb_renders_with_our_merge():
    from myst_nb.core import render
    book_site.use_merge_streams(None, None)
    assert render.coalesce_streams is book_site.merge_streams
