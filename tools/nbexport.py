"""MyST markdown cells -> markdown that Jupyter and Colab render.

The chapters are MyST notebooks; their markdown cells use MyST roles and
directives that only Sphinx understands. ``tools/book_site.py`` runs
``jupyter_markdown`` on every markdown cell of the .ipynb it offers for
download (and Colab opens), so the notebook reads as the page does:

- labelled display maths ``$$ ... $$ (eq-name)`` gets its number
  (``\\tag{n}``, numbered in page order as Sphinx does) and an anchor;
  ``{eq}`eq-name``` becomes a link ``[(n)](#eq-name)``;
- ``{cite}`key``` becomes "(Author Year)" from ``book/references.bib``;
- ``{term}``, ``{ref}``, ``{doc}``: their text (``{doc}`` a link to the
  chapter's notebook); ``(label)=`` targets become anchors;
- ``:::{admonition} Title`` blocks become block quotes with the title in
  bold; ``{note}``/``{tip}``/... likewise;
- ``{graphviz}`` diagrams are drawn (Graphviz ``dot``) into an SVG
  attachment of the cell, with their alt text and caption.

``leftover_myst(text)`` lists MyST syntax a converted cell still holds
(tests/test_site_ext.py asserts none).

``python -m tools.nbexport book/`` writes ``book/<chapter>.ipynb`` next
to each MyST chapter, converted (no jupytext needed): the launch
environment (``binder/postBuild``) runs it, so Binder opens notebooks.
"""
from __future__ import annotations

import base64
import re
import subprocess
from functools import lru_cache
from pathlib import Path

__all__ = ["jupyter_markdown", "convert_notebook", "leftover_myst",
           "citation_labels", "read_myst", "main"]

_LABELLED_MATH = re.compile(
    r"\$\$(?P<body>.+?)\$\$[ \t]*\((?P<label>[A-Za-z0-9_:.-]+)\)", re.S)
_ROLE = re.compile(r"\{(?P<role>[a-z:-]+)\}`(?P<arg>[^`]+)`")
_TARGET = re.compile(r"^\((?P<label>[A-Za-z0-9_:.-]+)\)=[ \t]*$", re.M)
_FENCE = re.compile(
    r"^(?P<fence>:{3,}|`{3,})\{(?P<name>[a-z-]+)\}[ \t]*(?P<title>.*?)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$\n?", re.M | re.S)
_OPTION = re.compile(r"^:(?P<key>[a-z-]+):[ \t]*(?P<value>.*)$")
_ADMONITIONS = {"admonition", "note", "tip", "warning", "important",
                "hint", "caution", "attention", "danger", "error", "seealso"}


def _text_and_target(arg: str) -> tuple[str | None, str]:
    m = re.match(r"(?s)(.*?)\s*<([^<>]+)>\s*$", arg)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    return None, arg.strip()


@lru_cache(maxsize=None)
def citation_labels(bib: str) -> dict[str, str]:
    """``{key: "Author Year"}`` for the entries of a BibTeX file."""
    from pybtex.database import parse_file

    labels = {}
    for key, entry in parse_file(bib).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor")
        year = entry.fields.get("year", "n.d.")
        if not people:
            labels[key] = f"{entry.fields.get('title', key)} {year}"
            continue
        last = " ".join(people[0].last_names) or str(people[0])
        last = re.sub(r"[{}]", "", last)
        if len(people) == 2:
            other = re.sub(r"[{}]", "", " ".join(people[1].last_names))
            last = f"{last} and {other}"
        elif len(people) > 2:
            last += " et al."
        labels[key] = f"{last} {year}"
    return labels


def _split_options(body: str) -> tuple[dict, str]:
    options, lines = {}, body.split("\n")
    while lines and (m := _OPTION.match(lines[0])):
        options[m.group("key")] = m.group("value").strip()
        lines.pop(0)
    return options, "\n".join(lines).strip("\n")


def _graphviz_svg(dot: str) -> bytes:
    run = subprocess.run(["dot", "-Tsvg"], input=dot.encode(),
                         capture_output=True, check=False)
    if run.returncode:
        raise RuntimeError(f"dot failed: {run.stderr.decode()[:500]}")
    return run.stdout


def jupyter_markdown(text: str, equations: dict[str, int],
                     bib: str | None = None,
                     attachments: dict | None = None) -> str:
    """One markdown cell's MyST as Jupyter markdown (see the module doc).

    ``equations`` maps equation labels to numbers and is extended with the
    cell's labelled equations (pass the same dict for a whole notebook);
    graphviz diagrams are added to ``attachments`` (the cell's).
    """
    def math(m):
        label = m.group("label")
        n = equations.setdefault(label, len(equations) + 1)
        return (f'<a id="{label}"></a>\n\n$$'
                f'{m.group("body").rstrip()} \\tag{{{n}}}\n$$')

    def fence(m):
        name, title = m.group("name"), m.group("title").strip()
        options, body = _split_options(m.group("body"))
        body = jupyter_markdown(body, equations, bib, attachments)
        if name in _ADMONITIONS:
            head = title if name == "admonition" else (
                name.capitalize() + (f": {title}" if title else ""))
            quoted = "\n".join(f"> {line}".rstrip()
                               for line in body.split("\n"))
            return f"> **{head}**\n>\n{quoted}\n"
        if name == "graphviz":
            key = f"graphviz-{len(attachments or {}) + 1}.svg"
            if attachments is not None:
                svg = _graphviz_svg(body)
                attachments[key] = {"image/svg+xml":
                                    base64.b64encode(svg).decode("ascii")}
            alt = options.get("alt", "diagram").replace("]", ")")
            caption = options.get("caption", "")
            return (f"![{alt}](attachment:{key})\n\n"
                    + (f"*{caption}*\n" if caption else ""))
        if name == "math":
            return f"$$\n{body}\n$$\n"
        return body + "\n"

    def role(m):
        name, arg = m.group("role"), m.group("arg")
        text_, target = _text_and_target(arg)
        if name == "eq":
            n = equations.get(target)
            return f"[({n})](#{target})" if n else f"({target})"
        if name == "cite" or name.startswith("cite:"):
            labels = citation_labels(bib) if bib else {}
            keys = [k.strip() for k in target.split(",")]
            return "(" + "; ".join(labels.get(k, k) for k in keys) + ")"
        if name == "doc":
            page = target.rsplit("/", 1)[-1]
            return f"[{text_ or page}]({page}.ipynb)"
        if name in ("term", "ref", "numref", "any"):
            return text_ or target
        if name == "math":
            return f"${target}$"
        return text_ or target

    # Equations first (their labels number the {eq} references).
    text = _LABELLED_MATH.sub(math, text)
    text = _FENCE.sub(fence, text)
    text = _TARGET.sub(lambda m: f'<a id="{m.group("label")}"></a>', text)
    return _ROLE.sub(role, text)


def convert_notebook(nb: dict, bib: str | None = None) -> dict:
    """Every markdown cell of ``nb`` (a dict, changed in place)."""
    equations: dict[str, int] = {}
    cells = [c for c in nb.get("cells", []) if c["cell_type"] == "markdown"]
    # number every labelled equation first: a reference may come first
    for cell in cells:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) \
            else cell["source"]
        for m in _LABELLED_MATH.finditer(src):
            equations.setdefault(m.group("label"), len(equations) + 1)
    for cell in cells:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) \
            else cell["source"]
        attachments = dict(cell.get("attachments", {}))
        cell["source"] = jupyter_markdown(src, equations, bib, attachments)
        if attachments:
            cell["attachments"] = attachments
    return nb


_LEFTOVER = [
    (re.compile(r"\{[a-z:-]+\}`"), "role"),
    (re.compile(r"^(:{3,}|`{3,})\{", re.M), "directive"),
    (re.compile(r"\$\$[ \t]*\([A-Za-z0-9_:.-]+\)"), "equation label"),
    (re.compile(r"^\([A-Za-z0-9_:.-]+\)=[ \t]*$", re.M), "target"),
    (re.compile(r"^:[a-z-]+:[ \t]", re.M), "directive option"),
]


def leftover_myst(text: str) -> list[str]:
    """The kinds of MyST syntax still in ``text`` (empty: none)."""
    return [what for rx, what in _LEFTOVER if rx.search(text)]


def bib_file() -> str | None:
    bib = Path(__file__).resolve().parent.parent / "book" / "references.bib"
    return str(bib) if bib.is_file() else None


_CODE_CELL = re.compile(
    r"^```\{code-cell\}[^\n]*\n(?P<body>.*?)^```[ \t]*$\n?", re.M | re.S)


def _code_cell(body: str) -> dict:
    import yaml

    meta: dict = {}
    lines = body.split("\n")
    if lines and lines[0].strip() == "---":
        end = lines.index("---", 1)
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
        lines = lines[end + 1:]
    else:
        while lines and (m := _OPTION.match(lines[0])):
            meta[m.group("key")] = yaml.safe_load(m.group("value"))
            lines.pop(0)
    return {"cell_type": "code", "execution_count": None, "metadata": meta,
            "outputs": [], "source": "\n".join(lines).strip("\n")}


def read_myst(text: str) -> dict:
    """A MyST markdown notebook (front matter, ``{code-cell}`` fences,
    ``+++`` breaks) as an nbformat 4 notebook dict, without outputs."""
    import yaml

    meta: dict = {}
    if text.startswith("---\n"):
        end = text.index("\n---\n", 4)
        meta = yaml.safe_load(text[4:end]) or {}
        text = text[end + 5:]
    cells, at = [], 0

    def markdown(chunk: str):
        for part in re.split(r"^\+\+\+.*$", chunk, flags=re.M):
            if part.strip():
                cells.append({"cell_type": "markdown", "metadata": {},
                              "source": part.strip("\n")})
    for m in _CODE_CELL.finditer(text):
        markdown(text[at:m.start()])
        cells.append(_code_cell(m.group("body")))
        at = m.end()
    markdown(text[at:])
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    meta.pop("jupytext", None)
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": meta,
            "cells": cells}


def main(argv: list[str] | None = None) -> int:
    """Write a converted .ipynb next to each MyST chapter given (files or
    folders of .md files with a ``{code-cell}``)."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m tools.nbexport DIR_OR_MD...",
              file=sys.stderr)
        return 2
    bib = bib_file()
    for arg in args:
        path = Path(arg)
        files = sorted(path.glob("*.md")) if path.is_dir() else [path]
        for md in files:
            text = md.read_text(encoding="utf-8")
            if "{code-cell}" not in text:
                continue
            nb = convert_notebook(read_myst(text), bib)
            out = md.with_suffix(".ipynb")
            out.write_text(json.dumps(nb, indent=1, ensure_ascii=False)
                           + "\n", encoding="utf-8")
            print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
