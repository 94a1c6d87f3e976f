"""Sphinx extension: mermaid diagrams drawn from their text source.

The source articles draw their concept flows in mermaid; the book keeps
them as text::

    ```{mermaid}
    :alt: Input data flows into a map, then a loss, ...
    :caption: The training loop as a chain of maps.
    :name: fig-sys-flow

    flowchart LR
      A[input] --> B[map] --> C[loss]
    ```

The page gets ``<pre class="mermaid" role="img" aria-label=alt>`` with
the escaped source; mermaid.js (npm ``mermaid``, copied to the site's
``_static/mermaid/`` by ``make assets``; never a CDN) replaces it with
an SVG in the browser. Only pages with a diagram load the script
(``course-mermaid.mjs``, an ES module: mermaid then fetches only the
chunks its diagram types need), and it draws again with mermaid's dark
theme when the reader switches the theme to dark (``<html
data-theme>``). A page with a diagram but no mermaid.js in the build
fails the build, naming ``make assets``.

Other builders (LaTeX, text) show the source as a literal block.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

__all__ = ["setup", "mermaid"]

# The first word of a mermaid diagram names its type (or the source starts
# with a %% directive or --- front matter).
_TYPES = re.compile(
    r"^(%%|---|flowchart|graph|sequenceDiagram|classDiagram|"
    r"stateDiagram(-v2)?|erDiagram|journey|gantt|pie|quadrantChart|"
    r"requirementDiagram|gitGraph|C4\w+|mindmap|timeline|zenuml|"
    r"sankey(-beta)?|xychart(-beta)?|block(-beta)?|packet(-beta)?|kanban|"
    r"architecture(-beta)?|radar(-beta)?|treemap(-beta)?)\b")
STATIC = Path(__file__).resolve().parent / "mermaid_static"
SCRIPT = "mermaid/course-mermaid.mjs"
STYLE = "mermaid/course-mermaid.css"
LIBRARY = "mermaid/mermaid.esm.min.mjs"


class mermaid(nodes.General, nodes.Element):   # noqa: N801 (docutils)
    """A diagram: ``code`` (mermaid source) and ``alt`` (its text)."""


class Mermaid(SphinxDirective):
    has_content = True
    required_arguments = 0
    optional_arguments = 0
    option_spec = {"alt": directives.unchanged_required,
                   "caption": directives.unchanged,
                   "name": directives.unchanged,
                   "class": directives.class_option}

    def run(self):
        code = "\n".join(self.content).strip()
        if not code:
            raise self.error("a mermaid diagram needs its source as the "
                             "directive's content")
        if not _TYPES.match(code):
            raise self.error(
                f"a mermaid diagram must start with its type (flowchart, "
                f"sequenceDiagram, ...), got {code.splitlines()[0]!r}. A "
                f"':key: value' option ends at its line break: write long "
                f"options in a '---' YAML block")
        alt = " ".join(self.options.get("alt", "").split())
        if not alt:
            raise self.error("a mermaid diagram needs :alt: text saying "
                             "what it shows (screen readers read it)")
        node = mermaid(code=code, alt=alt,
                       classes=self.options.get("class", []))
        self.set_source_info(node)
        caption = self.options.get("caption")
        if not caption:
            self.add_name(node)
            return [node]
        figure = nodes.figure("", node, classes=["mermaid-figure"])
        text, messages = self.state.inline_text(caption, self.lineno)
        figure += nodes.caption(caption, "", *text)
        self.set_source_info(figure)
        self.add_name(figure)
        return [figure, *messages]


def visit_mermaid_html(self, node):
    classes = " ".join(["mermaid", *node.get("classes", [])])
    ids = node.get("ids")
    ident = f' id="{ids[0]}"' if ids else ""
    self.body.append(
        f'<pre class="{classes}"{ident} role="img" '
        f'aria-label="{html.escape(node["alt"], quote=True)}">'
        f'{html.escape(node["code"])}</pre>\n')
    raise nodes.SkipNode


def visit_mermaid_other(self, node):
    self.visit_literal_block(nodes.literal_block(node["code"],
                                                 node["code"]))
    raise nodes.SkipNode


def _has_mermaid(doctree) -> bool:
    return doctree is not None and bool(
        list(doctree.findall(mermaid)))


def _library_found(app) -> bool:
    for entry in app.config.html_static_path:
        if (Path(app.confdir) / entry / LIBRARY).is_file():
            return True
    return False


def add_script(app, pagename, templatename, context, doctree):
    """Load mermaid only on pages that draw a diagram."""
    if app.builder.format != "html" or not _has_mermaid(doctree):
        return
    if not _library_found(app):
        raise ExtensionError(
            f"{pagename} draws mermaid diagrams but no html_static_path "
            f"folder holds {LIBRARY}: run 'make assets' (npm ci, then "
            f"copies node_modules/mermaid/dist to _assets/mermaid)")
    app.add_js_file(SCRIPT, type="module")
    app.add_css_file(STYLE)


def add_static(app, config):
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def setup(app):
    app.add_node(mermaid, html=(visit_mermaid_html, None),
                 latex=(visit_mermaid_other, None),
                 text=(visit_mermaid_other, None),
                 man=(visit_mermaid_other, None),
                 texinfo=(visit_mermaid_other, None))
    app.add_directive("mermaid", Mermaid)
    app.connect("config-inited", add_static)
    app.connect("html-page-context", add_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True,
            "version": "1"}
