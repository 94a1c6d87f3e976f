"""The built Optimization chapters: small pages, animations, choosers and
sliders that work offline (no CDN), with alt text; each chapter has a
figure the reader drives in the static page (tests/test_site.py drives
them in the browser)."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = ["ch04_gradient_descent", "ch05_optimizers", "ch06_schedules",
         "ch07_choosing"]
pytestmark = pytest.mark.slow
# a chooser (tools.bookhtml.html_choice) or a slider (html_slider)
DRIVEN = r'<div class="(?:dlopt-choice book-choice|book-slider)"'


@pytest.fixture(scope="module", params=PAGES)
def page(request):
    path = REPO / "_build" / "html" / "book" / f"{request.param}.html"
    if not path.exists():
        pytest.fail(f"{path} is not built: run `make build`")
    return request.param, path.read_text()


def test_page_is_small_enough(page):
    name, text = page
    assert len(text.encode()) < 5_000_000, f"{name} is over 5 MB"


def test_no_animation_or_choice_fetches_from_the_web(page):
    name, text = page
    assert "font-awesome" not in text and "maxcdn" not in text, name
    for block in re.findall(r'<div class="animation">.*?</script>', text,
                            re.S):
        assert not re.search(r"https?://", block), name
    for block in re.findall(DRIVEN + r'.*?</script>', text, re.S):
        assert not re.search(r"https?://", block), name


def test_animations_and_choices_have_alt_text(page):
    name, text = page
    imgs = re.findall(r'<img alt="([^"]+)"[^>]* id="_anim_img', text)
    assert len(imgs) == text.count('id="_anim_img'), name
    choices = re.findall(r'<img id="book-(?:choice|slider)-\d+-img" '
                         r'src="[^"]+" width="\d+" alt="([^"]+)"', text)
    assert len(choices) == len(re.findall(DRIVEN, text)), name
    assert all(len(a) > 40 for a in imgs + choices), name


def test_the_static_book_shows_motion_and_choice():
    texts = {p: (REPO / "_build" / "html" / "book" / f"{p}.html")
             .read_text() for p in PAGES}
    assert sum(t.count('<div class="animation">') for t in
               texts.values()) >= 2
    assert sum(len(re.findall(DRIVEN, t)) for t in texts.values()) >= 4
    # No live widget was left in the static pages.
    for p, t in texts.items():
        # (the site's widget shim names this type in its JavaScript; a
        # live widget is a <script> of that type)
        assert ('<script type="application/vnd.jupyter.widget-view+json"'
                not in t), p


def test_each_chapter_has_a_figure_the_reader_drives(page):
    name, text = page
    assert re.search(DRIVEN, text), f"{name}: no chooser or slider"
