"""Book-only HTML exports: figures a reader drives in the static page.

The chapters call these in cells whose output is the page's figure; no
kernel runs behind the online book, so everything is pre-computed:

- ``jshtml(anim, alt)``: a matplotlib animation as self-contained HTML +
  JavaScript (``anim.to_jshtml()``), with its player's Font Awesome 4
  icons (a CDN font) replaced by inline SVG, so the buttons draw on any
  machine, with no font, offline and in Jupyter.
- ``html_choice(figures, label, alt)``: pre-computed figures behind a
  drop-down menu, pure HTML + JavaScript.
- ``html_slider(figures, label, alt)``: the same behind a range slider
  (a parameter the reader moves, e.g. a learning rate).

Images are PNG rendered at twice the size they are shown (crisp on a
high-density screen) and shown at the figure's size in CSS pixels (96
per inch, as an SVG figure), never larger than the text column.

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

__all__ = ["jshtml", "html_choice", "html_slider", "svg_controls"]

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
_BUTTON = re.compile(r'<button( [^>]*)?>\s*(<svg class="anim-icon"[^>]*'
                     r'aria-label="([^"]*)")')


def _svg(match) -> str:
    cls = match.group(1)
    if cls not in _PATHS:
        return match.group(0)
    path, name = _PATHS[cls]
    return (f'<svg class="anim-icon" viewBox="0 0 16 16" width="1em" '
            f'height="1em" fill="currentColor" role="img" '
            f'aria-label="{name}"><path d="{path}"/></svg>')


def svg_controls(text: str) -> str:
    """``to_jshtml`` output without its Font Awesome CDN link, each
    player icon drawn as inline SVG and each button named."""
    text = _FA_LINK.sub("", text)
    text = _FA_ICON.sub(_svg, text)
    return _BUTTON.sub(
        lambda m: (f'<button{m.group(1) or ""} title="{m.group(3)}">'
                   f'{m.group(2)}'), text)


def jshtml(anim, alt: str, default_mode: str = "once") -> str:
    """The animation as self-contained HTML + JavaScript for a static page.

    Like ``anim.to_jshtml()`` (frames embedded as PNG), with the player's
    icons as inline SVG (``svg_controls``) and no link to the web.
    ``alt`` describes the animation for screen readers (the frame image
    gets it as its ``alt`` text).
    """
    if not isinstance(alt, str) or not alt.strip():
        raise ValueError("alt must be a non-empty description")
    text = svg_controls(anim.to_jshtml(default_mode=default_mode))
    text = re.sub(r'<img id="_anim_img',
                  f'<img alt="{html.escape(alt)}" id="_anim_img', text,
                  count=1)
    if re.search(r"https?://", text):
        raise RuntimeError("the animation HTML still links to the web")
    return text


_IDS = itertools.count()


def _png(fig, scale: float) -> tuple[str, int]:
    """(data URI, width in CSS pixels) of ``fig`` drawn at ``scale``x."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96 * scale)
    width = round(fig.get_figwidth() * 96)
    return ("data:image/png;base64,"
            + base64.b64encode(buf.getvalue()).decode("ascii"), width)


def _images(figures: dict, alt, scale: float):
    if not figures:
        raise ValueError("figures is empty")
    if not (callable(alt) or (isinstance(alt, str) and alt.strip())):
        raise ValueError("alt must be a non-empty string or a function of "
                         "the option")
    alts = {k: (alt(k) if callable(alt) else f"{alt} ({k})")
            for k in figures}
    pngs = {k: _png(f, scale) for k, f in figures.items()}
    return alts, pngs


def _img(uid: str, uri: str, width: int, alt: str) -> str:
    return (f'<img id="{uid}-img" src="{uri}" width="{width}" '
            f'alt="{html.escape(alt, quote=True)}" '
            f'style="max-width:100%;height:auto">')


def html_choice(figures: dict, label: str, alt: Callable | str,
                scale: float = 2) -> str:
    """Pre-computed figures behind a drop-down menu, in pure HTML + JS.

    ``figures`` maps each option's text to a matplotlib figure; the page
    shows the first and swaps the image when the reader chooses another.
    ``alt`` is the alt text (a string, or a function of the option);
    images are drawn at ``scale`` times their displayed size.
    """
    alts, pngs = _images(figures, alt, scale)
    uid = f"book-choice-{next(_IDS)}"
    opts = "".join(f'<option value="{i}">{html.escape(str(k))}</option>'
                   for i, k in enumerate(figures))
    data = json.dumps([[pngs[k][0], alts[k]] for k in figures])
    first = next(iter(figures))
    return (
        f'<div class="dlopt-choice book-choice" id="{uid}">'
        f'<label>{html.escape(label)} <select onchange="'
        f"var d=window['{uid}'][this.value];"
        f"var i=document.getElementById('{uid}-img');"
        f'i.src=d[0];i.alt=d[1];">{opts}</select></label><br>'
        f'{_img(uid, pngs[first][0], pngs[first][1], alts[first])}</div>'
        f'<script>window["{uid}"]={data};</script>')


def html_slider(figures: dict, label: str, alt: Callable | str,
                scale: float = 2) -> str:
    """Pre-computed figures behind a range slider, in pure HTML + JS.

    Like ``html_choice``, for an ordered parameter: ``figures`` maps each
    value (shown next to the slider) to its figure, in slider order.
    """
    alts, pngs = _images(figures, alt, scale)
    uid = f"book-slider-{next(_IDS)}"
    keys = list(figures)
    data = json.dumps([[pngs[k][0], alts[k], str(k)] for k in keys])
    first = keys[0]
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
        f'{_img(uid, pngs[first][0], pngs[first][1], alts[first])}</div>'
        f'<script>window["{uid}"]={data};</script>')
