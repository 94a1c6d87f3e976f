"""Unit tests of tools/mermaid.py on a tiny Sphinx project (the browser
tests in test_site.py check that the diagrams really draw)."""
import io
import re
from pathlib import Path

import pytest
from sphinx.application import Sphinx
from sphinx.errors import SphinxError

REPO = Path(__file__).resolve().parent.parent

CONF = f"""
import sys
sys.path.insert(0, {str(REPO / 'tools')!r})
extensions = ["mermaid"]
html_static_path = ["assets"]
"""

DIAGRAM = """
Title
=====

.. mermaid::
   :alt: Two boxes, x < y & z, joined by an arrow
   :caption: A *small* diagram.
   :name: fig-small

   flowchart LR
     A["x < y & z"] --> B
"""


def build(tmp_path, index, library=True, other="Other\\n=====\\n"):
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(CONF)
    (src / "index.rst").write_text(index + "\n.. toctree::\n\n   other\n")
    (src / "other.rst").write_text(other.replace("\\n", "\n"))
    lib = src / "assets" / "mermaid"
    lib.mkdir(parents=True)
    if library:
        (lib / "mermaid.esm.min.mjs").write_text("export default {};\n")
    warnings = io.StringIO()
    app = Sphinx(str(src), str(src), str(tmp_path / "out"),
                 str(tmp_path / "doctrees"), "html", status=None,
                 warning=warnings, freshenv=True)
    app.build()
    return tmp_path / "out", warnings.getvalue()


def test_diagram_source_is_escaped_with_its_alt_text_and_caption(tmp_path):
    out, warnings = build(tmp_path, DIAGRAM)
    page = (out / "index.html").read_text()
    assert not warnings, warnings
    assert ('<pre class="mermaid" role="img" aria-label="Two boxes, '
            'x &lt; y &amp; z, joined by an arrow">') in page
    assert 'A[&quot;x &lt; y &amp; z&quot;] --&gt; B</pre>' in page
    assert "<em>small</em>" in page and 'id="fig-small"' in page
    # the script is a module, on this page only, and it is in the site
    scripts = re.findall(r"<script[^>]*course-mermaid[^>]*>", page)
    assert len(scripts) == 1 and 'type="module"' in scripts[0]
    assert "course-mermaid.css" in page
    assert "course-mermaid" not in (out / "other.html").read_text()
    assert (out / "_static" / "mermaid" / "course-mermaid.mjs").is_file()
    assert (out / "_static" / "mermaid" / "mermaid.esm.min.mjs").is_file()


def test_a_diagram_without_alt_text_is_an_error(tmp_path):
    _, warnings = build(tmp_path, DIAGRAM.replace(
        "   :alt: Two boxes, x < y & z, joined by an arrow\n", ""))
    assert "needs :alt: text" in warnings


def test_an_option_spilling_into_the_source_is_an_error(tmp_path):
    """A ':alt:' continued on the next line becomes the diagram's first
    line in MyST; the directive says so instead of drawing an error."""
    _, warnings = build(tmp_path, DIAGRAM.replace(
        "   flowchart LR", "   that spilled over\n\n   flowchart LR"))
    assert "must start with its type" in warnings
    assert "'that spilled over'" in warnings


def test_missing_mermaid_library_names_make_assets(tmp_path):
    with pytest.raises(SphinxError, match="make assets"):
        build(tmp_path, DIAGRAM, library=False)


def test_init_script_draws_in_both_themes():
    js = (REPO / "tools" / "mermaid_static" / "mermaid" /
          "course-mermaid.mjs").read_text()
    assert 'import mermaid from "./mermaid.esm.min.mjs"' in js
    assert "attributeFilter: [\"data-theme\"]" in js
    assert 'theme: want === "dark" ? "dark" : "default"' in js
    assert "http" not in js                    # nothing from a CDN
