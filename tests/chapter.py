"""Run a chapter's code cells in a namespace, so tests can check the
data a page draws and the numbers it glues into its prose.

The chapters are MyST notebooks (``book/chXX.md``); a code cell is a
```` ```{code-cell} ```` block, optionally opening with ``:tag:`` lines or
a ``---`` YAML header. ``glue`` (myst-nb) and ``display`` are replaced by
recorders, figures are drawn with the Agg backend, and each page is run
once per test session (cached).
"""
import functools
import re
from pathlib import Path

BOOK = Path(__file__).resolve().parent.parent / "book"
_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", re.S | re.M)


def code_cells(page: str, until: str | None = None) -> list[str]:
    """The source of every code cell of ``book/<page>.md``, in order;
    with ``until``, only the cells before that text (e.g. a heading)."""
    text = (BOOK / f"{page}.md").read_text(encoding="utf-8")
    end = len(text)
    if until is not None:
        end = text.index(until)
    cells = []
    for match in _CELL.finditer(text):
        if match.start() > end:
            break
        lines = match.group(1).splitlines()
        if lines and lines[0].strip() == "---":
            close = lines.index("---", 1)
            lines = lines[close + 1:]
        while lines and lines[0].startswith(":"):
            lines = lines[1:]
        # IPython magics (%matplotlib inline) mean nothing outside a kernel
        cells.append("\n".join(l for l in lines
                               if not l.lstrip().startswith("%")))
    return cells


@functools.lru_cache(maxsize=None)
def run_page(page: str, until: str | None = None) -> dict:
    """Execute the code cells of ``page`` (those before ``until``, if
    given); return its namespace, with ``ns["_glued"]`` the values the
    page glued (name -> value)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import myst_nb

    glued = {}

    def glue(name, value, display=True):
        glued[name] = value

    orig = myst_nb.glue
    myst_nb.glue = glue
    ns = {"__name__": f"book_{page}", "_glued": glued}
    try:
        for i, src in enumerate(code_cells(page, until)):
            exec(compile(src, f"{page}.md[cell {i}]", "exec"), ns)
    finally:
        myst_nb.glue = orig
        plt.close("all")
    return ns
