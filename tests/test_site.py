"""The built course, tested the way a reader sees it: in a real browser.

Every page of ``_build/html`` (whatever chapters the book has) is served
from 127.0.0.1 and loaded by the system Chromium (Playwright, never a
downloaded browser). Requests that would leave the machine are aborted
and recorded, so a CDN dependency fails the test instead of quietly
working online. The same checks run on a tiny fixture book built here
(a to_jshtml animation, an ipywidgets slider linked to a text box, a
graphviz diagram, a figure, a pre-computed slider, Chinese, maths) so the mechanisms stay tested even
before a chapter uses them. Skips only when Chromium is missing (and
conftest turns that skip into a failure in CI).
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

import sitecheck
from sitecheck import SiteServer

# One crawl per site serves every test here: under pytest-xdist keep the
# module on one worker (--dist loadfile, or loadgroup with this group).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("site")]

REPO = Path(__file__).resolve().parent.parent
BOOK_HTML = REPO / "_build" / "html"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
MAX_PAGE_BYTES = 5 * 1024 * 1024


# ------------------------------------------------------------- fixtures
FIXTURE_PAGE = '''\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Fixture interactive outputs

Inline maths $a^2 + b^2 = c^2$ and a display formula:

$$
\\int_0^1 x \\, dx = \\frac{1}{2}
$$ (eq-fixture-integral)

## A diagram

```{graphviz}
:alt: Two boxes, x and y, with an arrow from x to y

digraph { rankdir=LR; x -> y }
```

## A figure

```{code-cell} ipython3
---
mystnb:
  image:
    alt: A straight line rising from the bottom left to the top right
---
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(2, 2), dpi=60)
ax.plot([0, 1], [0, 1])
plt.show()
```

## A slider and Chinese terms

Backpropagation (反向传播) and regularization (正则化).

```{code-cell} ipython3
from IPython.display import HTML
from tools.bookhtml import html_slider

figs = {}
for slope in (1, 2, 3):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, slope])
    figs[slope] = fig
    plt.close(fig)
HTML(html_slider(figs, "slope:", alt=lambda k: f"A line of slope {k}"))
```

## An animation

```{code-cell} ipython3
from IPython.display import HTML
from matplotlib.animation import FuncAnimation

fig, ax = plt.subplots(figsize=(2, 2), dpi=40)
ax.set(xlim=(0, 5), ylim=(0, 5))
(line,) = ax.plot([], [])


def draw(i):
    line.set_data([0, i], [0, 5 - i])
    return (line,)


anim = FuncAnimation(fig, draw, frames=5, interval=100)
plt.close(fig)
HTML(anim.to_jshtml())
```

(fixture-widget)=
## A widget

```{code-cell} ipython3
import ipywidgets as w

a = w.IntSlider(value=3, min=0, max=10, description="a")
b = w.IntText(value=3, description="b")
w.jslink((a, "value"), (b, "value"))
w.VBox([a, b])
```
'''

FIXTURE_INTRO = '''\
# Fixture book

See [the interactive page](interactive.md) and its
{ref}`widget section <fixture-widget>`. The diagram is on this page, not
beside the widgets: the two scripts together weigh more than a page may.

```{mermaid}
:alt: Three boxes in a row, data, map and loss, joined by arrows
:caption: A mermaid flowchart drawn from its text source.

flowchart LR
  A[data] --> B[map] --> C[loss]
```
'''


def build_fixture_book(root: Path) -> Path:
    """A two-page book with the repository's site configuration."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    config["title"] = "Fixture"
    config["execute"] = {"execute_notebooks": "force", "timeout": 120,
                         "allow_errors": False}
    config["bibtex_bibfiles"] = ["references.bib"]
    config["sphinx"]["local_extensions"] = {"book_site": str(REPO / "tools"),
                                            "mermaid": str(REPO / "tools")}
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: interactive\n")
    (root / "intro.md").write_text(FIXTURE_INTRO)
    (root / "interactive.md").write_text(FIXTURE_PAGE)
    (root / "references.bib").write_text(
        (REPO / "book" / "references.bib").read_text())
    (root / "_assets").symlink_to(REPO / "_assets")
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)          # figures must display
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    jb = Path(sys.executable).parent / "jupyter-book"
    run = subprocess.run(
        [str(jb), "build", str(root), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, (
        f"fixture book failed to build:\n{run.stdout[-3000:]}\n"
        f"{run.stderr[-3000:]}")
    return root / "_build" / "html"


@pytest.fixture(scope="session")
def book_html() -> Path:
    if not (BOOK_HTML / "index.html").is_file():
        pytest.fail("the book is not built: run `make build` first")
    return BOOK_HTML


@pytest.fixture(scope="session")
def fixture_html(tmp_path_factory) -> Path:
    if not (REPO / "_assets" / "mathjax").is_dir():
        pytest.fail("site assets missing: run `make assets`")
    return build_fixture_book(tmp_path_factory.mktemp("fixture_book"))


@pytest.fixture(scope="session", params=["book", "fixture"])
def site(request, browser, tmp_path_factory):
    """(root, server, {page: PageReport}) for the book and the fixture."""
    root = request.getfixturevalue(f"{request.param}_html")
    # Screenshots (desktop, and the whole page on a phone) are for a
    # person to look at; they cost a third of the crawl, so only when
    # asked for: SITE_SCREENSHOTS=<folder> make test
    shots = None
    if os.environ.get("SITE_SCREENSHOTS"):
        shots = Path(os.environ["SITE_SCREENSHOTS"]) / request.param
        shots.mkdir(parents=True, exist_ok=True)
    assert AXE.is_file(), "axe-core missing: run `make assets` (npm ci)"
    with SiteServer(root) as server:
        reports = sitecheck.crawl(browser, server, shots=shots, axe=AXE)
        yield root, server, reports


def pages(reports):
    """Reports of real pages (meta-refresh redirects excluded)."""
    return [r for r in reports.values() if not r.redirect]


def fail_if(problems: dict, what: str):
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, f"{what}:\n" + json.dumps(problems, indent=1)


# ------------------------------------------------------------ the tests
def test_every_page_is_crawled(site):
    root, _, reports = site
    assert len(pages(reports)) >= 2
    for r in reports.values():
        if r.redirect:
            assert sitecheck.local_file(
                root, f"http://x/{Path(r.rel).parent}/{r.redirect}"
            ).is_file(), f"{r.rel} redirects to missing {r.redirect}"


def test_no_console_error_and_no_failed_request(site):
    _, _, reports = site
    fail_if({r.rel: r.console_errors + r.failed for r in pages(reports)},
            "console errors or failed requests")


def test_all_requests_stay_on_localhost(site):
    _, _, reports = site
    fail_if({r.rel: r.external + r.dom["externalRefs"]
             for r in pages(reports)},
            "requests (or references) leaving 127.0.0.1")
    for r in pages(reports):
        assert any("mathjax" in u for u in r.requests) or \
            not r.dom["mathElements"], f"{r.rel}: no local MathJax"


def test_every_formula_is_typeset(site):
    _, _, reports = site
    fail_if({r.rel: {k: r.dom[k] for k in
                     ("untypeset", "mathErrors", "rawMath") if r.dom[k]}
             for r in pages(reports)}, "maths not typeset")
    assert sum(r.dom["mathTypeset"] for r in pages(reports)) > 0


def test_every_diagram_renders(site, request):
    _, _, reports = site
    fail_if({r.rel: [d for d in r.dom["graphviz"] if not d["ok"]]
             for r in pages(reports)}, "diagrams not rendered")
    if "fixture" in request.node.callspec.id:
        assert sum(len(r.dom["graphviz"]) for r in pages(reports)) >= 1


def test_every_mermaid_diagram_draws_an_svg_in_light_and_dark(site,
                                                             request):
    """Each diagram is an SVG with its alt text as the accessible name,
    in light mode and again in dark mode, with mermaid's dark colours
    (and not the theme's colour-inverting filter on top of them)."""
    _, _, reports = site
    problems = {}
    for r in pages(reports):
        if not r.mermaid:
            continue
        light, dark = r.mermaid["light"], r.mermaid["dark"]
        bad = [f"diagram {i} ({mode}): {s}"
               for mode, states in (("light", light), ("dark", dark))
               for i, s in enumerate(states)
               if not (s["svg"] and s["drawn"] == mode and s["label"])]
        bad += [f"diagram {i}: same node colour {a['fill']} in both modes"
                for i, (a, b) in enumerate(zip(light, dark))
                if a["fill"] == b["fill"]]
        # drawn in mermaid's dark theme: no inverting CSS filter on top
        bad += [f"diagram {i} ({mode}): CSS filter {s['filter']}"
                for mode, states in (("light", light), ("dark", dark))
                for i, s in enumerate(states) if s["filter"] != "none"]
        problems[r.rel] = bad
    fail_if(problems, "mermaid diagrams not drawn")
    if "fixture" in request.node.callspec.id:
        assert sum(len(r.mermaid.get("light", []))
                   for r in pages(reports)) >= 1


def test_every_image_loads_and_has_alt_text(site):
    _, _, reports = site
    fail_if({r.rel: [i for i in r.dom["images"]
                     if not i["ok"] or not i["alt"]]
             for r in pages(reports)}, "images broken or without alt")


def test_every_internal_link_resolves(site):
    root, server, reports = site
    problems = {}
    for r in pages(reports):
        bad = []
        for href in set(r.dom["links"]):
            parts = urlsplit(href)
            if parts.scheme not in ("http", "https") or \
                    not href.startswith(server.origin):
                continue
            target = sitecheck.local_file(root, href)
            if not target.is_file():
                bad.append(f"{href}: no such file")
            elif parts.fragment and target.suffix == ".html" and \
                    unquote(parts.fragment) not in sitecheck.anchors(target):
                bad.append(f"{href}: no such anchor")
        problems[r.rel] = sorted(bad)
    fail_if(problems, "internal links that do not resolve")


def test_search_finds_each_page_by_a_title_word(site, browser):
    _, server, reports = site
    problems = {}
    searched = 0
    for r in pages(reports):
        if r.rel in ("search.html", "genindex.html") or not r.dom["h1"]:
            continue
        term = sitecheck.search_term(r.dom["h1"][0])
        if term is None:
            continue
        searched += 1
        found = sitecheck.search_finds(browser, server, term)
        if r.rel not in found:
            problems[r.rel] = f"search for {term!r} lists {found}"
    assert searched > 0
    fail_if(problems, "search misses pages")


def test_animations_play_and_step_by_clicking(site, request):
    _, _, reports = site
    fail_if({r.rel: [a for a in r.animations if a["problems"]]
             for r in pages(reports)}, "animations that do not work")
    if "fixture" in request.node.callspec.id:
        assert sum(len(r.animations) for r in pages(reports)) >= 1


def test_widgets_render_and_respond(site, request):
    _, _, reports = site
    fail_if({r.rel: r.widgets["problems"] +
             ([f"{r.widgets['views']} widget views, "
               f"{r.widgets['rendered']} rendered"]
              if r.widgets["rendered"] < r.widgets["views"] else [])
             for r in pages(reports)}, "embedded widgets broken")
    if "fixture" in request.node.callspec.id:
        assert sum(r.widgets["sliders"] for r in pages(reports)) >= 1


def test_phone_layout_has_no_horizontal_overflow(site):
    _, _, reports = site
    problems = {}
    for r in pages(reports):
        p = r.phone
        if p["scrollWidth"] > p["viewport"] + 1 or p["sticking"]:
            problems[r.rel] = p
    fail_if(problems, "pages wider than a 375 px phone")


def test_every_page_weighs_under_5_mb(site):
    root, _, reports = site
    weights = {r.rel: r.weight(root) for r in pages(reports)}
    heaviest = max(weights, key=weights.get)
    print(f"heaviest page {heaviest}: {weights[heaviest] / 1e6:.2f} MB")
    fail_if({k: f"{v / 1e6:.2f} MB" for k, v in weights.items()
             if v > MAX_PAGE_BYTES}, "pages over the 5 MB budget")


def test_lang_and_exactly_one_h1(site):
    _, _, reports = site
    problems = {}
    for r in pages(reports):
        bad = []
        if not r.dom["lang"]:
            bad.append("no lang attribute on <html>")
        if len(r.dom["h1"]) != 1:
            bad.append(f"{len(r.dom['h1'])} visible h1: {r.dom['h1']}")
        problems[r.rel] = bad
    fail_if(problems, "accessibility basics")


# ------------------------------------------------- what a reader reads
_SVG_BOX = re.compile(r'<svg[^>]*viewBox="0 0 ([\d.]+) ([\d.]+)"')
_SVG_TEXT = re.compile(r'scale\(([\d.]+) -[\d.]+\)')


def _svg_bytes(root: Path, src: str) -> bytes:
    if src.startswith("data:"):
        return base64.b64decode(src.split(",", 1)[1])
    return sitecheck.local_file(root, src).read_bytes()


def svg_text_px(svg: bytes, shown: float) -> float | None:
    """The smallest text of a matplotlib SVG (text drawn as glyph paths,
    each text scaled by font size / 100), in CSS px when the figure is
    shown ``shown`` px wide."""
    text = svg.decode("utf-8", errors="replace")
    box = _SVG_BOX.search(text)
    sizes = [float(m.group(1)) * 100 for m in _SVG_TEXT.finditer(text)]
    if not box or not sizes:
        return None
    return min(sizes) * shown / float(box.group(1))


def test_figure_text_is_readable(site):
    """Figure text, as shown in the 1280 px page, is at least the body's
    small size (matplotlib figures are SVG: the text is measured)."""
    root, _, reports = site
    problems, measured = {}, 0
    for r in pages(reports):
        small = r.reader["small"]
        bad = []
        for fig in r.reader["figures"]:
            px = svg_text_px(_svg_bytes(root, fig["src"]), fig["shown"])
            if px is None:
                continue
            measured += 1
            if px < small - 0.05:
                bad.append(f"{px:.1f} px < {small:.1f} px: "
                           f"{fig['src'][-40:]} ({fig['alt']})")
        problems[r.rel] = bad
    assert measured > 0, "no SVG figure text measured"
    fail_if(problems, "figure text smaller than the body's small text")


def test_figures_are_svg_or_drawn_at_twice_their_size(site, request):
    """No blurry 1x PNG figure: outputs are SVG, or PNG with at least two
    image pixels per CSS pixel, animation frames included (the book's
    go through tools.bookhtml.jshtml; the fixture's plain to_jshtml is
    1x and is not held to it)."""
    root, _, reports = site
    book = "book" in request.node.callspec.id
    fail_if({r.rel: [i["src"][-50:] for i in r.dom["images"]
                     if i["output"] and i["png"] and (book or not i["anim"])
                     and i["natural"] < 2 * i["shown"] - 1]
             for r in pages(reports)}, "1x PNG figures")


def test_display_equations_fit_at_desktop_width(site):
    _, _, reports = site
    fail_if({r.rel: r.reader["wideEquations"] for r in pages(reports)},
            "display equations wider than the text column at 1280 px")


def test_wide_equations_scroll_visibly_on_a_phone(site):
    _, _, reports = site
    fail_if({r.rel: [e for e in r.phone["equations"]
                     if e["overflowX"] not in ("auto", "scroll")
                     or e["scrollbar"] < 3]
             for r in pages(reports)},
            "equations wider than a phone without a visible scrollbar")


def test_chinese_characters_render(site, request):
    """Every Chinese character is drawn with a glyph (the site serves
    Noto Sans SC): no two render alike, none like a missing glyph."""
    _, _, reports = site
    fail_if({r.rel: r.reader["cjk"]["boxes"] for r in pages(reports)},
            "Chinese characters drawn as boxes")
    least = 10 if "book" in request.node.callspec.id else 5
    assert sum(r.reader["cjk"]["chars"] for r in pages(reports)) >= least


def test_precomputed_figures_follow_their_controls(site, request):
    """Choosers and sliders (tools/bookhtml.py) swap their figure."""
    _, _, reports = site
    fail_if({r.rel: [d for d in r.driven if d["problems"]]
             for r in pages(reports)}, "choosers/sliders that do not work")
    least = 4 if "book" in request.node.callspec.id else 1
    assert sum(len(r.driven) for r in pages(reports)) >= least


def test_animation_buttons_draw_their_icons(site, request):
    _, _, reports = site
    fail_if({r.rel: [b for b in r.reader["buttons"]
                     if not b["drawn"] or b["fontIcon"] or not b["title"]]
             for r in pages(reports)}, "animation buttons without icons")
    assert all(len(r.reader["buttons"]) == 9 * len(r.animations)
               for r in pages(reports))
    if "fixture" in request.node.callspec.id:
        assert sum(len(r.reader["buttons"]) for r in pages(reports)) >= 9


# Accessibility rules from axe-core (npm, pinned in package.json, injected
# into the page by the test, not served by the site). The theme's own
# widgets are held to the same rules as the content.
AXE_IMPACTS = {"serious", "critical"}


def test_axe_finds_no_serious_violation(site):
    """axe-core's WCAG 2 A/AA rules, run by the crawl on each page's
    desktop load (one load per page serves every check)."""
    _, _, reports = site
    problems = {}
    for r in pages(reports):
        assert r.axe is not None, r.rel
        problems[r.rel] = [
            f"{v['id']} ({v['impact']}): {v['help']} -- " +
            "; ".join(n["target"][0] if isinstance(n["target"][0], str)
                      else str(n["target"][0]) for n in v["nodes"][:3])
            for v in r.axe if v["impact"] in AXE_IMPACTS]
    fail_if(problems, "axe-core accessibility violations")


def test_axe_passes_on_diagram_pages_in_dark_mode(site, browser):
    """Mermaid redraws in its dark theme: that drawing must pass axe-core
    too (its default edge labels miss the 4.5:1 contrast)."""
    _, _, reports = site
    context = browser.new_context(viewport=sitecheck.DESKTOP)
    problems = {}
    try:
        for r in pages(reports):
            if not r.mermaid:
                continue
            page = context.new_page()
            page.route("**/*", lambda rt: rt.continue_()
                       if sitecheck.is_local(rt.request.url)
                       else rt.abort("blockedbyclient"))
            page.goto(r.url, wait_until="load")
            sitecheck.settle(page)
            page.evaluate("() => { document.documentElement.dataset.theme"
                          " = 'dark'; }")
            page.wait_for_function(sitecheck.MERMAID_DRAWN, arg="dark",
                                   timeout=20000)
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                "tags => axe.run(document, {runOnly: {type: 'tag', "
                "values: tags}})", sitecheck.AXE_TAGS)
            problems[r.rel] = [
                f"{v['id']} ({v['impact']}): {v['help']}"
                for v in result["violations"]
                if v["impact"] in AXE_IMPACTS]
            page.close()
    finally:
        context.close()
    fail_if(problems, "axe-core violations in dark mode")


# ------------------------------------------- fixture-only behaviour
def test_linked_widgets_follow_the_slider(fixture_html, browser):
    """A jslink'd IntText follows its slider in the static page."""
    with SiteServer(fixture_html) as server:
        context = browser.new_context(viewport=sitecheck.DESKTOP)
        try:
            page = context.new_page()
            page.goto(server.url("interactive.html"), wait_until="load")
            sitecheck.settle(page)
            text = page.locator(".widget-subarea .widget-text input")
            handle = page.locator(".widget-subarea .noUi-handle")
            assert text.input_value() == "3"
            handle.click()
            for _ in range(2):
                handle.press("ArrowRight")
            page.wait_for_function(
                "() => document.querySelector("
                "'.widget-subarea .widget-text input').value === '5'",
                timeout=5000)
            readout = page.locator(".widget-subarea .widget-readout")
            assert readout.inner_text().strip() == "5"
        finally:
            context.close()


# ------------------------------------- downloads and launch buttons
def _repo_url() -> str:
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def test_each_notebook_page_offers_its_ipynb_and_launch_links(book_html):
    executed = REPO / "_build" / "jupyter_execute"
    notebooks = sorted(executed.rglob("*.ipynb"))
    assert notebooks, "no executed chapter found"
    org_repo = "/".join(_repo_url().split("/")[-2:])
    for nb_path in notebooks:
        page = nb_path.relative_to(executed).with_suffix("")
        html_file = book_html / f"{page}.html"
        if not html_file.is_file():
            continue                       # stale (no longer in the TOC)
        html = html_file.read_text(encoding="utf-8")
        ipynb = book_html / "_sources" / f"{page}.ipynb"
        depth = "../" * (len(page.parts) - 1)
        assert f'href="{depth}_sources/{page}.ipynb"' in html, page
        nb = json.loads(ipynb.read_text(encoding="utf-8"))
        nbformat.validate(nbformat.from_dict(nb))
        assert nb["nbformat"] == 4 and "jupytext" not in nb["metadata"]
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and any(c.get("outputs") for c in code), \
            f"{ipynb} has no executed outputs"
        assert f"https://mybinder.org/v2/gh/{org_repo}/" in html, page
        assert (f"https://colab.research.google.com/github/{org_repo}/"
                f"blob/gh-pages/_sources/{page}.ipynb") in html, page


def _workflow_steps():
    wf = yaml.safe_load(
        (REPO / ".github" / "workflows" / "pages.yml").read_text())
    triggers = wf.get(True, wf.get("on"))      # YAML 1.1 reads on: as True
    assert "push" in triggers
    return [s for job in wf["jobs"].values() for s in job["steps"]]


def test_pages_workflow_publishes_the_site(book_html, tmp_path):
    """The workflow builds with ``make build`` and publishes with a step
    that is run here, as written, against a local bare repository: the
    branch it writes holds the site and every chapter's .ipynb where the
    Colab buttons point, converted from MyST."""
    steps = _workflow_steps()
    assert any("make build" in s.get("run", "") for s in steps)
    publish = next(s for s in steps if "publish" in s.get("name", "").lower())
    remote = tmp_path / "pages.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    env = {**os.environ, **{k: str(v) for k, v in publish["env"].items()},
           "PAGES_REMOTE": str(remote)}
    run = subprocess.run(["bash", "-c", publish["run"]], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    files = set(subprocess.run(
        ["git", "--git-dir", str(remote), "ls-tree", "-r", "--name-only",
         "gh-pages"], check=True, capture_output=True, text=True
    ).stdout.split())
    assert {"index.html", ".nojekyll"} <= files
    sys.path.insert(0, str(REPO / "tools"))
    import nbexport
    colab = 0
    for page in book_html.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for path in re.findall(r"colab\.research\.google\.com/github/[^/]+/"
                               r"[^/]+/blob/gh-pages/([^\"?#]+)", text):
            colab += 1
            assert path in files, f"Colab link to unpublished {path}"
            nb = json.loads(subprocess.run(
                ["git", "--git-dir", str(remote), "show",
                 f"gh-pages:{path}"], check=True, capture_output=True,
                text=True).stdout)
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    src = "".join(cell["source"])
                    assert nbexport.leftover_myst(src) == [], (path, src)
    assert colab > 0


def test_fixture_text_is_dedented():
    # guard for the fixture strings above: MyST needs column-0 fences
    assert textwrap.dedent(FIXTURE_PAGE) == FIXTURE_PAGE
