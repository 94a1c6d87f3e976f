"""Chapter 7, "Choosing an optimizer": the claims its prose and alt text
make about the landscape table and the saddle plot, checked on the data
the page draws (the digits experiment is not re-run here)."""
import numpy as np
import pytest

from chapter import run_page


@pytest.fixture(scope="module")
def page():
    return run_page("ch07_choosing", until="## A real data set")


def test_turned_quadratic_is_the_same_for_gd_but_not_for_adaptive(page):
    best, g = page["best"], page["_glued"]
    for name in ("SGD", "momentum", "Nesterov"):     # rotation invariant
        assert best["turned quadratic", name][0] == pytest.approx(
            best["quadratic", name][0], rel=1e-6, abs=1e-30)
    # "AdaGrad ... no better than gradient descent" on the turned valley
    assert best["turned quadratic", "AdaGrad"][0] >= \
        best["turned quadratic", "SGD"][0]
    assert best["quadratic", "AdaGrad"][0] < 1e-40
    # "RMSprop to exactly 0", then not on the turned valley
    assert best["quadratic", "RMSprop"][0] == 0.0
    assert best["turned quadratic", "RMSprop"][0] > 0.0
    for land in ("quadratic", "turned quadratic"):
        for name in ("SGD", "AdaGrad", "RMSprop"):
            key = f"ch07-{name}-{land.replace(' ', '-')}"
            assert g[key] == best[land, name][0]


def test_landscape_bullets(page):
    best = page["best"]
    ros = {n: best["rosenbrock", n][0] for n in page["BUILTIN"]}
    assert min(ros, key=ros.get) == "Nesterov"       # follows the bend
    beale = {n: best["beale", n][0] for n in page["BUILTIN"]}
    assert set(sorted(beale, key=beale.get)[:3]) == {"Adam", "NAdam",
                                                     "momentum"}
    himmel = [best["himmelblau", n][0] for n in page["BUILTIN"]]
    assert sum(v < 1e-20 for v in himmel) > len(himmel) / 2
    # AdamW's decay keeps it off f = 0 where the minimum is off 0
    assert best["rosenbrock", "AdamW"][0] > 1e-3
    assert best["himmelblau", "AdamW"][0] > 1e-4


def test_saddle_escape_order_and_rmsprop_first_steps(page):
    leave, g = page["leave"], page["_glued"]
    assert leave["SGD"] is None and leave["AdaGrad"] is None
    assert leave["RMSprop"] <= 10                    # "within a few steps"
    for n in ("Adam", "NAdam", "AdamW"):              # "about 80 steps"
        assert 60 <= leave[n] <= 100, (n, leave[n])
    for n in ("momentum", "Nesterov"):                # "about 220"
        assert 200 <= leave[n] <= 240, (n, leave[n])
    # RMSprop's first step is alpha / sqrt(1 - rho) where eps is negligible
    rho, eps, alpha = 0.999, 1e-8, 0.01
    assert g["ch07-rms-first-x"] == pytest.approx(
        1 / (np.sqrt(1 - rho) + eps), rel=1e-6)
    gy = 1e-6
    assert g["ch07-rms-first-y"] == pytest.approx(
        gy / (np.sqrt(1 - rho) * gy + eps), rel=1e-6)
    tr = page["saddle_runs"]["Adam"]
    first_adam = np.abs(np.diff(tr.params[:2], axis=0))[0] / alpha
    np.testing.assert_allclose(first_adam, 1.0, rtol=0.02)
