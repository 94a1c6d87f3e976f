"""Chapter 8, "Regularization": claims the prose makes about the runs it
draws, checked on the page's own data (the page runs up to the input
normalisation section, about a minute)."""
import pytest

from chapter import run_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page():
    return run_page("ch08_regularization", until="## Input normalisation")


def test_augmentation_lowers_the_validation_loss(page):
    g = page["_glued"]
    before = page["aug_runs"]["200 images"][1].val_loss[-1]
    after = page["aug_runs"]["200 images × 9 shifts"][1].val_loss[-1]
    assert (g["ch08-aug-before"], g["ch08-aug-after"]) == (before, after)
    assert after < before and g["ch08-aug-drop"] == pytest.approx(
        1 - after / before)


def test_l2_shrinks_the_weights_as_lambda_grows(page):
    import numpy as np
    norms = [np.linalg.norm(p["W1"]) for p, _ in page["l2_runs"].values()]
    assert all(a > b for a, b in zip(norms, norms[1:]))
