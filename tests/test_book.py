"""The built book: every TOC page exists, executed, with its figures.

`make test` builds the book first (with warnings and execution errors
failing the build); these tests check what the build produced.
"""
import re
from pathlib import Path

import pytest
import yaml

from test_formulas import toc_files

REPO = Path(__file__).resolve().parent.parent
HTML = REPO / "_build" / "html"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built():
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make build` (make test "
                    "builds it first)")
    return HTML


def html_of(md: Path) -> Path:
    return HTML / md.relative_to(REPO).with_suffix(".html")


def test_every_toc_page_is_built(built):
    pages = toc_files()
    assert len(pages) >= 3
    missing = [str(p) for p in pages if not html_of(p).exists()]
    assert not missing, f"TOC pages not built: {missing}"


def test_nothing_outside_the_toc_is_published(built):
    for folder in ("solutions", "exercises", ".venv", "tests", "bench"):
        assert not (built / folder).exists(), f"{folder}/ was published"


def test_no_executed_cell_shows_an_error(built):
    for md in toc_files():
        page = html_of(md).read_text()
        for bad in ("Traceback (most recent call last)",
                    'class="output traceback', "ipythontb"):
            assert bad not in page, f"{md.name}: an executed cell failed"


def _alt_texts(md: Path) -> list[str]:
    """Alt texts declared in code-cell metadata (mystnb: image: alt:)."""
    alts = []
    for block in re.findall(r"```\{code-cell\}[^\n]*\n---\n(.*?)\n---\n",
                            md.read_text(), re.S):
        meta = yaml.safe_load(block) or {}
        alt = meta.get("mystnb", {}).get("image", {}).get("alt")
        if alt:
            alts.append(" ".join(alt.split()))
    return alts


def test_every_declared_figure_is_rendered(built):
    """A figure cell with alt text must produce that image in the page
    (a kernel with a non-inline matplotlib backend silently shows none)."""
    checked = 0
    for md in toc_files():
        page = html_of(md).read_text()
        imgs = re.findall(r'<img[^>]*alt="([^"]*)"', page)
        imgs = [" ".join(a.replace("&#39;", "'").replace("&quot;", '"')
                         .split()) for a in imgs]
        for alt in _alt_texts(md):
            checked += 1
            assert alt in imgs, (f"{md.name}: the figure with alt text "
                                 f"{alt[:60]!r}... is not in the page")
    assert checked > 0


def test_bibliography_labels_are_author_initials_and_year(built):
    """Alpha labels (pybtex) are built from the authors' last names: a
    LaTeX accent in a name (Doll{\\'a}r) or an entry without author and
    year once gave labels such as "GDollarG+17" and "Anonymousd.a"."""
    page = (built / "book" / "bibliography.html").read_text()
    labels = re.findall(r'class="label"><span class="fn-bracket">\[</span>'
                        r'([^<]*)<', page)
    assert len(labels) >= 20
    bad = [lb for lb in labels
           if not re.fullmatch(r"[A-Z][A-Za-z]{0,3}(\+)?\d\d[a-z]?", lb)]
    assert not bad, f"malformed bibliography labels: {bad}"
    # and no raw TeX in the rendered entries
    entries = re.sub(r"<[^>]+>", "", page.split('id="works-cited"')[-1])
    assert not re.search(r"\$[^$\n]{1,40}\$|\\[a-z]+\{", entries), \
        re.findall(r"\$[^$\n]{1,40}\$|\\[a-z]+\{", entries)[:5]
