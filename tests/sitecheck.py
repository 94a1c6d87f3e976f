"""Look at a built Jupyter Book the way a reader's browser does.

Shared by tests/test_site.py and bench/bench_site.py. Pages are served
from 127.0.0.1 by a threaded ``http.server``; the system Chromium (never
a Playwright download) loads them; every request that would leave the
machine is aborted and recorded. ``crawl`` visits every page once at a
desktop width and once at a phone width and returns one ``PageReport``
per page: what the page requested, what failed, and what its DOM shows
(math, diagrams, images, links, headings, animations, widgets, layout).
"""
from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
REDIRECT = re.compile(r'http-equiv="refresh"[^>]*url=([^"]+)"', re.I)


def chromium_path() -> str | None:
    """The system Chromium, or None when it is not installed."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


# --------------------------------------------------------------- serving
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (stdlib name)
        pass


class SiteServer:
    """Serve a directory from 127.0.0.1 on a free port (context manager)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        daemon=True)

    def __enter__(self) -> "SiteServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, rel: str) -> str:
        return f"{self.origin}/{rel}"


# ------------------------------------------------------------ site files
def html_pages(root: Path) -> list[str]:
    """Every HTML page of the site (relative paths), assets excluded."""
    pages = []
    for path in sorted(Path(root).rglob("*.html")):
        rel = path.relative_to(root)
        if rel.parts[0] in SKIP_DIRS:
            continue
        pages.append(rel.as_posix())
    return pages


def redirect_target(root: Path, rel: str) -> str | None:
    """The target of a meta-refresh redirect page, else None."""
    text = (Path(root) / rel).read_text(encoding="utf-8", errors="replace")
    match = REDIRECT.search(text[:2000])
    return match.group(1) if match else None


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value or "")


@functools.lru_cache(maxsize=None)
def anchors(path: Path) -> frozenset[str]:
    """The ids (and <a name>s) of an HTML file."""
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


def local_file(root: Path, url: str) -> Path:
    """The file under ``root`` that a same-origin URL names."""
    path = unquote(urlsplit(url).path).lstrip("/")
    target = Path(root) / path
    if target.is_dir() or not path:
        target = target / "index.html"
    return target


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in LOCAL_HOSTS


# ------------------------------------------------------------ page report
@dataclass
class PageReport:
    rel: str
    url: str
    redirect: str | None = None
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dom: dict = field(default_factory=dict)
    phone: dict = field(default_factory=dict)
    animations: list[dict] = field(default_factory=list)
    reader: dict = field(default_factory=dict)
    driven: list[dict] = field(default_factory=list)
    axe: list[dict] | None = None
    widgets: dict = field(default_factory=dict)
    mermaid: dict = field(default_factory=dict)
    screenshot: Path | None = None
    desktop_screenshot: Path | None = None

    def weight(self, root: Path) -> int:
        """Bytes of the page's HTML and every local file it requested."""
        files = {local_file(root, self.url)}
        for url in self.requests:
            if urlsplit(url).scheme in ("http", "https") and is_local(url):
                files.add(local_file(root, url))
        return sum(f.stat().st_size for f in files if f.is_file())


MATHJAX_READY = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
    return true;
  }
  return false;
}"""

# One pass over the DOM: everything the tests assert on.
DOM_PROBE = r"""() => {
  const shown = (e) => e.getClientRects().length > 0;
  const skipText = 'pre, code, script, style, textarea, mjx-container, ' +
                   '.highlight, .cell_input, .output';
  const raw = [];
  const walker = document.createTreeWalker(document.body,
                                           NodeFilter.SHOW_TEXT);
  const delims = ['$$', '\\(', '\\)', '\\[', '\\]', '\\begin{'];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.nodeValue;
    if (!delims.some((d) => text.includes(d))) continue;
    if (n.parentElement && n.parentElement.closest(skipText)) continue;
    raw.push(text.trim().slice(0, 80));
  }
  const graphviz = [...document.querySelectorAll('div.graphviz')].map(
    (div) => {
      const obj = div.querySelector('object');
      const img = div.querySelector('img');
      const svg = div.querySelector('svg');
      let ok = false, what = 'nothing';
      if (obj) {
        const doc = obj.contentDocument;
        const s = doc && doc.querySelector('svg');
        ok = !!s && s.getBoundingClientRect().width > 0 &&
             obj.getBoundingClientRect().width > 0;
        what = 'object ' + obj.getAttribute('data');
      } else if (img) {
        ok = img.complete && img.naturalWidth > 0;
        what = 'img ' + img.getAttribute('src');
      } else if (svg) {
        ok = svg.getBoundingClientRect().width > 0;
        what = 'inline svg';
      }
      return {ok, what};
    });
  const externalRefs = [...document.querySelectorAll(
      'link[href], script[src], img[src], iframe[src], source[src], ' +
      'object[data], video[src], audio[src], embed[src]')].map(
    (e) => e.href || e.src || e.data || '').filter(
    (u) => /^https?:/.test(u) && !/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/
                                   .test(u));
  return {
    title: document.title,
    lang: document.documentElement.getAttribute('lang') || '',
    h1: [...document.querySelectorAll('h1')].filter(shown).map(
      (h) => h.textContent.replace('#', '').trim()),
    images: [...document.images].map((i) => ({
      src: i.currentSrc || i.src || '', alt: (i.getAttribute('alt') || '')
        .trim(), ok: i.complete && i.naturalWidth > 0,
      anim: (i.id || '').startsWith('_anim_img'),
      output: !!i.closest('.cell_output, .output'),
      png: /\.png($|\?)|^data:image\/png/.test(i.currentSrc || i.src),
      natural: i.naturalWidth, shown: i.getBoundingClientRect().width})),
    links: [...document.querySelectorAll('a[href]')].map((a) => a.href),
    mathElements: document.querySelectorAll('.math').length,
    mathTypeset: document.querySelectorAll('mjx-container').length,
    untypeset: [...document.querySelectorAll('.math')].filter(
      (e) => !e.querySelector('mjx-container')).map(
      (e) => e.textContent.trim().slice(0, 80)),
    mathErrors: [...document.querySelectorAll(
      'mjx-merror, [data-mjx-error]')].map(
      (e) => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80)),
    rawMath: raw,
    graphviz,
    externalRefs,
    widgetViews: document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]').length,
  };
}"""

# Elements that stick out to the right of the viewport without a
# scrolling (or clipping) ancestor: what makes a phone scroll sideways.
OVERFLOW_PROBE = r"""() => {
  const vw = document.documentElement.clientWidth;
  const clipped = (e) => {
    for (let p = e.parentElement; p && p !== document.body;
         p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if (ox === 'auto' || ox === 'scroll' || ox === 'hidden' ||
          ox === 'clip') return true;
    }
    return false;
  };
  const bad = [];
  for (const e of document.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.right <= vw + 1) continue;
    if (getComputedStyle(e).position === 'fixed') continue;
    if (clipped(e)) continue;
    bad.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
             (e.className && typeof e.className === 'string' ?
              '.' + e.className.trim().split(/\s+/).join('.') : '') +
             ' right=' + Math.round(r.right));
    if (bad.length >= 5) break;
  }
  return {viewport: vw,
          scrollWidth: document.documentElement.scrollWidth,
          bodyScrollWidth: document.body.scrollWidth, sticking: bad};
}"""


# What a reader sees, measured (desktop): display equations wider than
# their container; figures (size shown, to compare with their text);
# whether the page's Chinese characters are drawn (not as boxes); and the
# animation buttons' icons.
READER_PROBE = r"""async () => {
  const small = (() => {
    const p = document.querySelector('article p') || document.body;
    const s = document.createElement('small');
    s.textContent = 'x';
    p.appendChild(s);
    const v = parseFloat(getComputedStyle(s).fontSize);
    s.remove();
    return v;
  })();
  const label = (c) => {
    const div = c.closest('div.math, .math');
    const id = div && (div.id || (div.previousElementSibling &&
                                  div.previousElementSibling.id));
    return id || c.textContent.slice(0, 60);
  };
  const wide = [];
  for (const c of document.querySelectorAll(
      'mjx-container[display="true"]')) {
    const box = c.parentElement.getBoundingClientRect().width;
    const math = c.querySelector('mjx-math');
    const w = math ? math.getBoundingClientRect().width : 0;
    const scrolls = c.scrollWidth > c.clientWidth + 1;
    // (Sphinx floats the equation number beside it: the room left is the
    // container's own width, not its parent's)
    if (w > box + 1 || scrolls) wide.push({eq: label(c),
      width: Math.round(w), container: Math.round(Math.min(box,
                                                  c.clientWidth))});
  }
  const figures = [...document.querySelectorAll('img')].filter(
    (i) => /\.svg($|\?)|^data:image\/svg/.test(i.currentSrc || i.src) &&
           !i.closest('div.graphviz'))
    .map((i) => ({src: i.currentSrc || i.src,
                  shown: i.getBoundingClientRect().width,
                  alt: (i.getAttribute('alt') || '').slice(0, 60)}));
  // Chinese characters: each distinct one drawn with its element's font
  // must differ from the others and from a character no font has.
  const chars = new Map();
  const walker = document.createTreeWalker(document.body,
                                           NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement || n.parentElement.closest('script, style'))
      continue;
    for (const ch of n.nodeValue.match(/[\u3400-\u9fff]/g) || [])
      if (!chars.has(ch)) chars.set(ch, n.parentElement);
  }
  await document.fonts.ready;
  const canvas = document.createElement('canvas');
  canvas.width = 40; canvas.height = 40;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (ch, family) => {
    ctx.clearRect(0, 0, 40, 40);
    ctx.font = '32px ' + family;
    ctx.fillText(ch, 2, 32);
    const d = ctx.getImageData(0, 0, 40, 40).data;
    let h = 0;
    for (let i = 3; i < d.length; i += 4) h = (h * 31 + d[i]) >>> 0;
    return h;
  };
  const cjk = {chars: chars.size, boxes: [], families: []};
  const seen = new Map();
  for (const [ch, el] of [...chars].slice(0, 40)) {
    const family = getComputedStyle(el).fontFamily;
    if (!cjk.families.includes(family)) cjk.families.push(family);
    // what the browser does for text it shows (this one may be hidden)
    await document.fonts.load('32px ' + family, ch);
    const tofu = draw('\ue000', family);
    const h = draw(ch, family);
    if (h === tofu || seen.has(h)) cjk.boxes.push(ch);
    seen.set(h, ch);
  }
  const buttons = [...document.querySelectorAll('.anim-buttons button')]
    .map((b) => {
      const icon = b.querySelector('svg');
      const r = icon ? icon.getBoundingClientRect() : {width: 0};
      return {title: b.getAttribute('title') || '',
              drawn: !!icon && r.width > 4 &&
                     !!icon.querySelector('path[d]'),
              fontIcon: !!b.querySelector('i.fa')};
    });
  return {small, wideEquations: wide, figures, cjk, buttons};
}"""

# On a phone, a display equation wider than the screen scrolls, with a
# scrollbar that shows (it takes room: offsetHeight > clientHeight).
PHONE_EQUATIONS = r"""() => [...document.querySelectorAll(
    'mjx-container[display="true"]')]
  .filter((c) => c.scrollWidth > c.clientWidth + 1)
  .map((c) => {
    const st = getComputedStyle(c);
    return {eq: (c.closest('.math') || c).id || c.textContent.slice(0, 40),
            overflowX: st.overflowX,
            scrollbar: c.offsetHeight - c.clientHeight -
                       parseFloat(st.borderTopWidth) -
                       parseFloat(st.borderBottomWidth)};
  })"""


# The pre-computed figures a reader drives (tools/bookhtml.py): choose the
# last option / move the slider to the end; the image must change to a
# loaded picture with its own alt text (and the slider's readout follow).
DRIVE_FIGURES = r"""async () => {
  const out = [];
  const loaded = (img) => new Promise((ok) => {
    if (img.complete && img.naturalWidth > 0) return ok(true);
    img.onload = () => ok(true); img.onerror = () => ok(false);
    setTimeout(() => ok(img.complete && img.naturalWidth > 0), 5000);
  });
  for (const div of document.querySelectorAll('.book-choice, .book-slider')) {
    const img = div.querySelector('img');
    const control = div.querySelector('select, input[type="range"]');
    const before = {src: img.src, alt: img.alt};
    const problems = [];
    if (!control) { out.push({id: div.id, problems: ['no control']});
                    continue; }
    const last = control.tagName === 'SELECT' ?
      control.options.length - 1 : parseInt(control.max);
    if (last < 1) problems.push('only one figure');
    if (control.tagName === 'SELECT') {
      control.selectedIndex = last;
      control.dispatchEvent(new Event('change'));
    } else {
      control.value = String(last);
      control.dispatchEvent(new Event('input'));
      const shown = div.querySelector('output');
      if (!shown || shown.textContent === '' ||
          control.getAttribute('aria-valuetext') !== shown.textContent)
        problems.push('slider readout does not follow');
    }
    if (!(await loaded(img))) problems.push('new image does not load');
    if (img.src === before.src) problems.push('image did not change');
    if (img.alt === before.alt || !img.alt) problems.push('alt unchanged');
    // and back to the first: the first image is restored
    if (control.tagName === 'SELECT') {
      control.selectedIndex = 0;
      control.dispatchEvent(new Event('change'));
    } else {
      control.value = '0';
      control.dispatchEvent(new Event('input'));
    }
    if (img.src !== before.src) problems.push('first image not restored');
    out.push({id: div.id, options: last + 1, problems});
  }
  return out;
}"""


def _watch(page, report: PageReport) -> None:
    def on_console(msg):
        if msg.type == "error":
            report.console_errors.append(msg.text)

    def on_response(response):
        if response.status >= 400:
            report.failed.append(f"HTTP {response.status} {response.url}")

    def route(route):
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            report.external.append(url)
            route.abort("blockedbyclient")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: report.console_errors.append(
        f"uncaught: {exc}"))
    page.on("requestfailed", lambda req: report.failed.append(
        f"{req.failure} {req.url}"))
    page.on("response", on_response)
    page.on("request", lambda req: report.requests.append(req.url))
    page.route("**/*", route)


def settle(page) -> None:
    """Wait for load, MathJax typesetting and widget rendering."""
    page.wait_for_load_state("load")
    page.evaluate(MATHJAX_READY)
    page.wait_for_load_state("networkidle")
    views = page.locator(
        'script[type="application/vnd.jupyter.widget-view+json"]').count()
    if views:
        # The HTML manager renders each view into a div before its script.
        page.wait_for_function(
            "n => document.querySelectorAll('.widget-subarea > *').length"
            " >= n", arg=views, timeout=15000)


AXE_TAGS = ["wcag2a", "wcag2aa"]


def visit(context, server: SiteServer, rel: str, shots: Path | None,
          phone_context=None, axe: Path | None = None) -> PageReport:
    """Load one page (desktop, then phone) and report what it shows;
    with ``axe`` (axe-core's script), its WCAG 2 A/AA violations, found on
    the desktop load before anything is clicked (no second load)."""
    report = PageReport(rel=rel, url=server.url(rel),
                        redirect=redirect_target(server.root, rel))
    if report.redirect:
        return report
    page = context.new_page()
    _watch(page, report)
    try:
        page.goto(report.url, wait_until="load")
        settle(page)
        report.dom = page.evaluate(DOM_PROBE)
        if axe is not None:
            page.add_script_tag(path=str(axe))
            report.axe = page.evaluate(
                "tags => axe.run(document, {runOnly: {type: 'tag', "
                "values: tags}}).then(r => r.violations)", AXE_TAGS)
        report.reader = page.evaluate(READER_PROBE)
        report.driven = page.evaluate(DRIVE_FIGURES)
        report.animations = exercise_animations(page)
        report.widgets = exercise_widgets(page)
        report.mermaid = exercise_mermaid(page)
        if shots is not None:
            report.desktop_screenshot = shots / (
                "desktop-" + rel.replace("/", "__") + ".png")
            page.screenshot(path=str(report.desktop_screenshot))
    finally:
        page.close()
    if phone_context is not None:
        page = phone_context.new_page()
        _watch(page, report)
        try:
            page.goto(report.url, wait_until="load")
            settle(page)
            report.phone = page.evaluate(OVERFLOW_PROBE)
            report.phone["equations"] = page.evaluate(PHONE_EQUATIONS)
            if shots is not None:
                report.screenshot = shots / (
                    "phone-" + rel.replace("/", "__") + ".png")
                page.screenshot(path=str(report.screenshot), full_page=True)
        finally:
            page.close()
    return report


# ------------------------------------------------------ interactive bits
ANIMATIONS = r"""() => [...document.querySelectorAll('div.animation')]
  .filter((d) => d.querySelector('img[id^="_anim_img"]'))
  .map((d) => d.querySelector('img[id^="_anim_img"]').id
                .slice('_anim_img'.length))"""

ANIM_STATE = r"""(id) => {
  const a = window['anim' + id];
  const img = document.getElementById('_anim_img' + id);
  const slider = document.getElementById('_anim_slider' + id);
  if (!a) return {ready: false};
  return {ready: true, frame: a.current_frame, frames: a.frames.length,
          slider: parseInt(slider.value), max: parseInt(slider.max),
          shows: img.src === a.frames[a.current_frame].src,
          loaded: img.complete && img.naturalWidth > 0};
}"""


def exercise_animations(page) -> list[dict]:
    """Click through every matplotlib ``to_jshtml`` animation on a page.

    For each: 'Next frame' moves one frame, 'Last frame' jumps to the
    end, 'First frame' back to 0, 'Play' advances it, 'Pause' stops it;
    the image always shows the current frame. Returns one dict per
    animation with ``problems`` (empty when it works).
    """
    results = []
    for anim_id in page.evaluate(ANIMATIONS):
        problems = []
        page.wait_for_function(f"() => !!window['anim{anim_id}']",
                               timeout=10000)
        box = page.locator(f"#_anim_img{anim_id}").locator(
            "xpath=ancestor::div[contains(@class,'animation')][1]")

        def state():
            return page.evaluate(ANIM_STATE, anim_id)

        def click(title):
            box.locator(f'button[title="{title}"]').click()

        s = state()
        n = s["frames"]
        if n < 2:
            problems.append(f"only {n} frame(s)")
        click("First frame")
        s = state()
        if s["frame"] != 0 or s["slider"] != 0 or not s["shows"]:
            problems.append(f"'First frame' gave {s}")
        click("Next frame")
        s = state()
        if s["frame"] != min(1, n - 1) or s["slider"] != s["frame"] \
                or not s["shows"]:
            problems.append(f"'Next frame' gave {s}")
        click("Last frame")
        s = state()
        if s["frame"] != n - 1 or s["slider"] != n - 1 or not s["shows"]:
            problems.append(f"'Last frame' gave {s}")
        click("First frame")
        click("Play")
        try:
            page.wait_for_function(
                f"() => window['anim{anim_id}'].current_frame > 0",
                timeout=10000)
        except Exception:  # noqa: BLE001 (reported, not raised)
            problems.append("'Play' did not advance within 10 s")
        click("Pause")
        before = state()["frame"]
        page.wait_for_timeout(400)
        after = state()
        if after["frame"] != before:
            problems.append("'Pause' did not stop the animation")
        if not after["shows"] or not after["loaded"]:
            problems.append(f"image does not show the frame: {after}")
        results.append({"id": anim_id, "frames": n, "problems": problems})
    return results


WIDGET_SLIDERS = r"""() => [...document.querySelectorAll(
  '.widget-subarea .widget-hslider, .widget-subarea .widget-slider')]
  .filter((w) => w.querySelector('.noUi-handle') &&
                 w.querySelector('.widget-readout'))
  .map((w, i) => { w.dataset.siteTest = String(i); return i; })"""


def exercise_widgets(page) -> dict:
    """Embedded ipywidgets render, and their sliders answer the keyboard
    and the mouse (the readout changes; with ``jslink`` so do partners).
    """
    views = page.locator(
        'script[type="application/vnd.jupyter.widget-view+json"]').count()
    rendered = page.locator(".widget-subarea > *").count()
    problems = []
    sliders = page.evaluate(WIDGET_SLIDERS)
    for i in sliders:
        slider = page.locator(f'[data-site-test="{i}"]')
        readout = slider.locator(".widget-readout")
        before = readout.inner_text().strip()
        handle = slider.locator(".noUi-handle")
        handle.click()
        handle.press("ArrowRight")
        page.wait_for_timeout(100)
        after = readout.inner_text().strip()
        if after == before:
            handle.press("ArrowLeft")
            handle.press("ArrowLeft")
            page.wait_for_timeout(100)
            after = readout.inner_text().strip()
        if after == before:
            problems.append(f"slider {i} readout stayed {before!r}")
    return {"views": views, "rendered": rendered, "sliders": len(sliders),
            "problems": problems}


MERMAID_STATE = r"""() => [...document.querySelectorAll('pre.mermaid')]
  .map((d) => {
    const svg = d.querySelector('svg');
    const r = svg ? svg.getBoundingClientRect() : null;
    const shape = svg && svg.querySelector(
      '.node rect, .node polygon, .node circle, .node path');
    return {drawn: d.dataset.drawnTheme || '',
            svg: !!svg && r.width > 0 && r.height > 0,
            filter: svg ? getComputedStyle(svg).filter : '',
            fill: shape ? getComputedStyle(shape).fill : '',
            label: d.getAttribute('aria-label') || ''};
  })"""

# Done when every diagram has been drawn in the wanted mode (or it failed:
# then the state shows no SVG and the test names the diagram).
MERMAID_DRAWN = r"""(mode) => [...document.querySelectorAll('pre.mermaid')]
  .every((d) => d.dataset.drawnTheme === mode)"""


def exercise_mermaid(page) -> dict:
    """Every mermaid diagram drew an SVG, in the page's colour mode and
    again after switching the theme (``<html data-theme>``, what the
    theme's light/dark button sets): ``{'light': [...], 'dark': [...]}``,
    one state per diagram, or ``{}`` on a page without diagrams."""
    if not page.locator("pre.mermaid").count():
        return {}
    out = {}
    first = page.evaluate("() => document.documentElement.dataset.theme")
    first = "dark" if first == "dark" else "light"
    for mode in (first, "light" if first == "dark" else "dark"):
        page.evaluate("m => { document.documentElement.dataset.theme = m; }",
                      mode)
        try:
            page.wait_for_function(MERMAID_DRAWN, arg=mode, timeout=20000)
        except Exception:       # reported below as diagrams without SVG
            pass
        out[mode] = page.evaluate(MERMAID_STATE)
    page.evaluate("m => { document.documentElement.dataset.theme = m; }",
                  first)
    return out


# ------------------------------------------------------------ the crawl
def launch(playwright):
    """The system Chromium, headless, with scrollbars drawn as a reader's
    browser draws them (Playwright's headless default hides them)."""
    return playwright.chromium.launch(executable_path=chromium_path(),
                                      args=CHROMIUM_ARGS, headless=True,
                                      ignore_default_args=["--hide-scrollbars"])


def crawl(browser, server: SiteServer, shots: Path | None = None,
          phone: bool = True, axe: Path | None = None,
          timeout_ms: float | None = None) -> dict[str, PageReport]:
    """Visit every page of the served site; one report per page
    (``timeout_ms``: Playwright's per-action timeout, 30 s by default)."""
    context = browser.new_context(viewport=DESKTOP,
                                  service_workers="block")
    if timeout_ms is not None:
        context.set_default_timeout(timeout_ms)
    phone_context = None
    if phone:
        phone_context = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True,
            has_touch=True, service_workers="block")
    try:
        return {rel: visit(context, server, rel, shots, phone_context, axe)
                for rel in html_pages(server.root)}
    finally:
        context.close()
        if phone_context is not None:
            phone_context.close()


def search_finds(browser, server: SiteServer, term: str) -> list[str]:
    """The pages (relative paths) the site's search lists for ``term``."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.route("**/*", lambda r: r.continue_() if is_local(r.request.url)
               else r.abort("blockedbyclient"))
    try:
        page.goto(server.url(f"search.html?q={term}"), wait_until="load")
        page.wait_for_selector("#search-results .search-summary",
                               timeout=20000)
        hrefs = page.eval_on_selector_all(
            "#search-results ul.search a", "as => as.map(a => a.href)")
    finally:
        context.close()
    found = []
    for href in hrefs:
        path = urlsplit(href).path.lstrip("/")
        found.append(path)
    return found


# Sphinx's English stop words of five letters or more (never indexed).
STOP_WORDS = {"their", "there", "these", "where", "which", "while",
              "would", "about", "other"}


def search_term(title: str) -> str | None:
    """A distinctive word of a page title to search for."""
    words = [w for w in re.findall(r"[A-Za-z]{5,}", title)
             if w.lower() not in STOP_WORDS]
    return max(words, key=len) if words else None
