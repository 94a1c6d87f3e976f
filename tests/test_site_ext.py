"""Unit tests of tools/book_site.py, the Sphinx extension that keeps the
site self-contained (the browser tests in test_site.py check the result
on real pages)."""
import json
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
