"""Book-only HTML exports: figures a reader drives in the static page.

The chapters call these in cells whose output is the page's figure; no
kernel runs behind the online book, so everything is pre-computed:

- ``jshtml(anim, alt)``: a matplotlib animation as self-contained HTML +
  JavaScript (``anim.to_jshtml()``), frames drawn at 2x, with its
  player's Font Awesome 4 icons (a CDN font) replaced by inline SVG, so
  the buttons draw on any machine, with no font, offline and in Jupyter.
- ``html_choice(figures, label, alt)``: pre-computed figures behind a
  drop-down menu, pure HTML + JavaScript.
- ``html_slider(figures, label, alt)``: the same behind a range slider
  (a parameter the reader moves, e.g. a learning rate).

Figures are SVG (or, for dense images, PNG drawn at twice the size they
are shown), shown at the figure's size in CSS pixels (96 per inch),
never wider than the text column.

Chapters import them as ``from tools.bookhtml import jshtml,
html_choice``. ``svg_controls`` is also used by the Sphinx extension
(``tools/book_site.py``) on any ``to_jshtml`` output of a page.
"""
from __future__ import annotations

import base64
import html
import io
import itertools
import json
import re
from typing import Callable

__all__ = ["jshtml", "html_choice", "html_slider", "svg_controls",
           "compact_svg",
           "readable", "fit_to_column", "COLUMN_IN", "MIN_PT"]

# The text column of a 1280 px page is 676 CSS px (7.04 in at 96 px per
# inch); figures are at most 6.8 in wide, so they are shown unscaled
# (unless a legend outside the axes widens the saved figure). Their text
# is at least MIN_PT (11.5 pt = 15.3 px, above the page's small text,
# 14.4 px): tests/test_site.py measures it in the built pages.
COLUMN_IN = 6.8
MIN_PT = 11.5


def fit_to_column(fig, width: float = COLUMN_IN) -> None:
    """Narrow a figure wider than the text column to its width, keeping
    its height (side-by-side panels get narrower, not flatter: their text
    keeps its room). matplotlibrc's ``figure.hooks`` calls it on every new
    pyplot figure, before the chapter lays it out."""
    w, h = fig.get_size_inches()
    if w > width + 1e-9:
        fig.set_size_inches(width, h)


def readable(fig, width: float = COLUMN_IN, min_pt: float = MIN_PT):
    """Fit ``fig`` to the text column and raise any text smaller than
    ``min_pt`` to it (tick labels, legends, annotations, titles); re-run
    the tight layout when text grew. Returns ``fig``.

    The book's kernels call it on every figure they display
    (``tools/book_site.py``); ``html_choice``/``html_slider`` too.
    """
    import warnings

    from matplotlib.text import Text

    fit_to_column(fig, width)
    grew = False
    for ax in fig.axes:
        for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            labels = axis.get_ticklabels() + axis.get_ticklabels(minor=True)
            size = min((t.get_fontsize() for t in labels), default=min_pt)
            if size < min_pt:
                ax.tick_params(axis=which, which="both", labelsize=min_pt)
                grew = True
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < min_pt:
            text.set_fontsize(min_pt)
            grew = True
    if grew and fig.get_layout_engine() is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.tight_layout()
    return fig

# Inline SVG for the animation player's buttons (16 x 16, currentColor).
_TRI_R = "M4 2v12l9-6z"
_TRI_L = "M12 2v12L3 8z"
_PATHS = {
    "fa fa-fast-backward": ("M2 2h2v12H2z M15 2v12L9 8z M9 2v12L3 8z",
                            "First frame"),
    "fa fa-step-backward": ("M3 2h2v12H3z M13 2v12L6 8z", "Previous frame"),
    "fa fa-play fa-flip-horizontal": (_TRI_L, "Play backwards"),
    "fa fa-pause": ("M4 2h3v12H4z M9 2h3v12H9z", "Pause"),
    "fa fa-play": (_TRI_R, "Play"),
    "fa fa-step-forward": ("M11 2h2v12h-2z M3 2v12l7-6z", "Next frame"),
    "fa fa-fast-forward": ("M12 2h2v12h-2z M1 2v12l6-6z M7 2v12l6-6z",
                           "Last frame"),
    "fa fa-minus": ("M2 7h12v2H2z", "Slower"),
    "fa fa-plus": ("M7 2h2v5h5v2H9v5H7V9H2V7h5z", "Faster"),
}
_FA_LINK = re.compile(r"<link[^>]*font-awesome[^>]*>", re.S)
_FA_ICON = re.compile(r'<i class="(fa [^"]*)"></i>')
def _svg(match) -> str:
    cls = match.group(1)
    if cls not in _PATHS:
        return match.group(0)
    path, name = _PATHS[cls]
    # decorative: matplotlib's <button> carries the title and aria-label
    return (f'<svg class="anim-icon" data-icon="{name}" viewBox="0 0 16 16" '
            f'width="1em" height="1em" fill="currentColor" '
            f'aria-hidden="true" focusable="false"><path d="{path}"/></svg>')


def svg_controls(text: str) -> str:
    """``to_jshtml`` output without its Font Awesome CDN link, each
    player icon drawn as inline SVG (no icon font needed)."""
    text = _FA_LINK.sub("", text)
    return _FA_ICON.sub(_svg, text)


_FRAME = re.compile(r'(frames\[\d+\] = ")data:image/png;base64,([^"]+)"')


def _quantized(match, colors: int) -> str:
    """One animation frame as a PNG with an adaptive palette."""
    from PIL import Image

    img = Image.open(io.BytesIO(base64.b64decode(match.group(2))))
    img = img.convert("RGB").quantize(colors=colors,
                                      method=Image.Quantize.FASTOCTREE,
                                      dither=Image.Dither.NONE)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return (match.group(1) + "data:image/png;base64,"
            + base64.b64encode(buf.getvalue()).decode("ascii") + '"')


def jshtml(anim, alt: str, default_mode: str = "once", scale: float = 2,
           colors: int = 64) -> str:
    """The animation as self-contained HTML + JavaScript for a static page.

    Like ``anim.to_jshtml()``, with the player's icons as inline SVG
    (``svg_controls``) and no link to the web. The figure is made
    ``readable`` and shown at its size in CSS pixels (96 per inch); its
    frames are PNG drawn at ``scale`` times that size, each with an
    adaptive palette of ``colors`` colours (flat contours and a few
    lines: crisp, and lighter than 1x full-colour frames). ``alt``
    describes the animation for screen readers (the frame image gets it
    as its ``alt`` text).
    """
    if not isinstance(alt, str) or not alt.strip():
        raise ValueError("alt must be a non-empty description")
    fig = anim._fig
    readable(fig)
    dpi = fig.get_dpi()
    width = round(fig.get_figwidth() * 96)
    fig.set_dpi(96 * scale)
    try:
        text = anim.to_jshtml(default_mode=default_mode)
    finally:
        fig.set_dpi(dpi)
    if colors:
        text = _FRAME.sub(lambda m: _quantized(m, colors), text)
    text = svg_controls(text)
    text = re.sub(r'<img id="_anim_img',
                  f'<img alt="{html.escape(alt)}" width="{width}" '
                  f'style="max-width:100%;height:auto" id="_anim_img', text,
                  count=1)
    if re.search(r"https?://", text):
        raise RuntimeError("the animation HTML still links to the web")
    return text


_IDS = itertools.count()


_PATH_DATA = re.compile(r'( d="|points=")([^"]*)"')
_LONG_NUMBER = re.compile(r"(-?\d+\.\d\d)\d+")


def compact_svg(text: str) -> str:
    """A matplotlib SVG with its path coordinates rounded to 0.01 pt
    (1/75 of a CSS pixel; matplotlib writes six decimals): about a third
    lighter, the same picture. Only path data is touched (not transforms:
    text sizes and glyph scales stay exact)."""
    return _PATH_DATA.sub(
        lambda m: m.group(1) + _LONG_NUMBER.sub(
            lambda n: f"{float(n.group(0)):.2f}", m.group(2)) + '"', text)


def _svg_uri(svg: bytes) -> str:
    """A UTF-8 data URI (lighter than base64 for SVG's ASCII)."""
    from urllib.parse import quote

    text = compact_svg(svg.decode("utf-8"))
    return "data:image/svg+xml;charset=utf-8," + quote(
        text, safe=" /=;,.-_()!*'+?@$&")


def _image(fig, fmt: str, scale: float) -> tuple[str, int]:
    """(data URI, width in CSS pixels) of ``fig``: SVG, or PNG drawn at
    ``scale`` times its displayed size (for dense images)."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"fmt must be 'svg' or 'png', got {fmt!r}")
    readable(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=96 * scale)
    width = round(fig.get_figwidth() * 96)
    if fmt == "svg":
        return _svg_uri(buf.getvalue()), width
    return ("data:image/png;base64,"
            + base64.b64encode(buf.getvalue()).decode("ascii"), width)


def _images(figures: dict, alt, fmt: str, scale: float):
    if not figures:
        raise ValueError("figures is empty")
    if not (callable(alt) or (isinstance(alt, str) and alt.strip())):
        raise ValueError("alt must be a non-empty string or a function of "
                         "the option")
    alts = {k: (alt(k) if callable(alt) else f"{alt} ({k})")
            for k in figures}
    images = {k: _image(f, fmt, scale) for k, f in figures.items()}
    return alts, images


def _img(uid: str, uri: str, width: int, alt: str) -> str:
    return (f'<img id="{uid}-img" src="{uri}" width="{width}" '
            f'alt="{html.escape(alt, quote=True)}" '
            f'style="max-width:100%;height:auto">')


def html_choice(figures: dict, label: str, alt: Callable | str,
                fmt: str = "svg", scale: float = 2) -> str:
    """Pre-computed figures behind a drop-down menu, in pure HTML + JS.

    ``figures`` maps each option's text to a matplotlib figure; the page
    shows the first and swaps the image when the reader chooses another.
    ``alt`` is the alt text (a string, or a function of the option).
    Figures are SVG (``fmt="svg"``), or PNG drawn at ``scale`` times
    their displayed size (``fmt="png"``, for dense images).
    """
    alts, images = _images(figures, alt, fmt, scale)
    uid = f"book-choice-{next(_IDS)}"
    first = next(iter(figures))
    opts = "".join(f'<option value="{i}">{html.escape(str(k))}</option>'
                   for i, k in enumerate(figures))
    # the first image is in the page once: the script takes it from <img>
    data = json.dumps([["" if k == first else images[k][0], alts[k]]
                       for k in figures])
    return (
        f'<div class="dlopt-choice book-choice" id="{uid}">'
        f'<label>{html.escape(label)} <select onchange="'
        f"var d=window['{uid}'][this.value];"
        f"var i=document.getElementById('{uid}-img');"
        f'i.src=d[0];i.alt=d[1];">{opts}</select></label><br>'
        f'{_img(uid, images[first][0], images[first][1], alts[first])}</div>'
        f'<script>window["{uid}"]={data};window["{uid}"][0][0]='
        f'document.getElementById("{uid}-img").src;</script>')


def html_slider(figures: dict, label: str, alt: Callable | str,
                fmt: str = "svg", scale: float = 2) -> str:
    """Pre-computed figures behind a range slider, in pure HTML + JS.

    Like ``html_choice``, for an ordered parameter: ``figures`` maps each
    value (shown next to the slider) to its figure, in slider order.
    """
    alts, images = _images(figures, alt, fmt, scale)
    uid = f"book-slider-{next(_IDS)}"
    keys = list(figures)
    first = keys[0]
    data = json.dumps([["" if k == first else images[k][0], alts[k], str(k)]
                       for k in keys])
    return (
        f'<div class="book-slider" id="{uid}">'
        f'<label>{html.escape(label)} <input type="range" min="0" '
        f'max="{len(keys) - 1}" step="1" value="0" '
        f'aria-valuetext="{html.escape(str(first), quote=True)}" oninput="'
        f"var d=window['{uid}'][this.value];"
        f"var i=document.getElementById('{uid}-img');"
        f"i.src=d[0];i.alt=d[1];this.setAttribute('aria-valuetext',d[2]);"
        f"document.getElementById('{uid}-value').textContent=d[2];\">"
        f'</label> <output id="{uid}-value">'
        f'{html.escape(str(first))}</output><br>'
        f'{_img(uid, images[first][0], images[first][1], alts[first])}</div>'
        f'<script>window["{uid}"]={data};window["{uid}"][0][0]='
        f'document.getElementById("{uid}-img").src;</script>')
