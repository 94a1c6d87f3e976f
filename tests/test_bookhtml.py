"""tools.bookhtml: the book-only HTML exports (animations, choosers)."""
import re

import pytest

from dlopt.playground import animate, trajectory
from tools.bookhtml import (compact_svg, html_choice, html_slider, jshtml,
                            svg_controls)


def test_bad_arguments_have_clear_errors():
    with pytest.raises(ValueError, match="alt"):
        jshtml(None, alt=" ")
    with pytest.raises(ValueError, match="empty"):
        html_choice({}, "pick", alt="x")
    with pytest.raises(ValueError, match="alt"):
        html_slider({"a": None}, "pick", alt="")


@pytest.mark.filterwarnings("ignore:Animation was deleted")
def test_jshtml_is_self_contained_with_drawn_buttons_and_alt_text():
    trs = {"SGD": trajectory("SGD", "quadratic", steps=20, lr=0.1)[0]}
    anim = animate("quadratic", trs, frames=5)
    page = jshtml(anim, alt="a path <down>")
    assert not re.search(r"https?://", page)
    # no icon font: every one of the nine buttons draws an SVG icon
    assert "font-awesome" not in page and 'class="fa' not in page
    assert page.count('<svg class="anim-icon"') == 9
    assert page.count("<button") == 9
    assert len(re.findall(r'<button[^>]* title="[A-Z][a-z ]+"', page)) == 9
    assert 'alt="a path &lt;down&gt;"' in page
    assert len(re.findall(r"frames\[\d+\] = ", page)) == 5
    assert len(page) < 200_000       # small enough for a static page
    # frames drawn at twice the size the <img> is shown
    import base64
    import io

    from matplotlib.image import imread
    width = int(re.search(r'<img alt="[^"]*" width="(\d+)"', page).group(1))
    assert width == round(anim._fig.get_figwidth() * 96)
    first = re.search(r'frames\[0\] = "data:image/png;base64,([^"]+)"',
                      page).group(1)
    assert imread(io.BytesIO(base64.b64decode(first))).shape[1] == 2 * width


def test_svg_controls_leaves_other_icons_alone():
    text = '<i class="fa fa-play"></i><i class="fa fa-unknown"></i>'
    out = svg_controls(text)
    assert out.count("<svg") == 1 and '<i class="fa fa-unknown"></i>' in out


def _figures(names):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figs = {}
    for i, name in enumerate(names):
        fig, ax = plt.subplots(figsize=(2, 1.5))
        ax.plot([0, 1], [0, i - 1])
        figs[name] = fig
    return figs


def test_html_choice_switches_between_precomputed_figures():
    import matplotlib.pyplot as plt
    page = html_choice(_figures(["a", "b"]), "pick",
                       alt=lambda k: f"figure {k}")
    plt.close("all")
    assert page.count("<option") == 2
    # SVG; the first figure is in the page once (shown), the second once
    assert page.count("data:image/svg+xml;charset=utf-8,") == 2
    assert 'alt="figure a"' in page
    assert 'width="192"' in page      # 2 in at 96 CSS px per inch
    assert not re.search(r"https?://", page)


def test_png_is_drawn_at_twice_its_displayed_size():
    import base64
    import io

    import matplotlib.pyplot as plt
    from matplotlib.image import imread
    page = html_choice(_figures(["a"]), "pick", alt="x", fmt="png")
    plt.close("all")
    uri = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    png = imread(io.BytesIO(base64.b64decode(uri)))
    assert png.shape[1] == 2 * 192 and png.shape[0] == 2 * 144


def test_html_slider_steps_through_values_in_order():
    import matplotlib.pyplot as plt
    page = html_slider(_figures([0.1, 0.5, 1.0]), "alpha",
                       alt=lambda k: f"alpha = {k}")
    plt.close("all")
    assert 'type="range" min="0" max="2"' in page
    assert page.count("data:image/svg+xml;charset=utf-8,") == 3
    assert '"0.1"]' in page and '"1.0"]' in page
    assert page.index('"0.1"]') < page.index('"0.5"]') < page.index('"1.0"]')
    assert 'alt="alpha = 0.1"' in page


def test_compact_svg_rounds_path_data_only():
    svg = ('<g transform="translate(1.123456 2.5) scale(0.11 -0.11)">'
           '<path d="M 10.123456 20.987654 L -3.14159 0" '
           'transform="scale(0.015625)"/></g>')
    out = compact_svg(svg)
    assert 'd="M 10.12 20.99 L -3.14 0"' in out
    assert "translate(1.123456 2.5) scale(0.11 -0.11)" in out
    assert 'transform="scale(0.015625)"' in out


def test_choice_figures_are_valid_svg_data_uris():
    from urllib.parse import unquote
    from xml.dom.minidom import parseString

    import matplotlib.pyplot as plt
    page = html_choice(_figures(["a", "b"]), "pick", alt="x")
    plt.close("all")
    uris = re.findall(r'data:image/svg\+xml;charset=utf-8,([^"\]]+)', page)
    assert len(uris) == 2
    for uri in uris:
        uri = uri.encode().decode("unicode_escape") if "\\u" in uri else uri
        parseString(unquote(uri))          # well-formed XML
