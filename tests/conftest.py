"""Shared test configuration.

In CI (``CI=true``) a skipped test is a failure: a test that should run
must run, so a missing system tool (Chromium, PostgreSQL) fails loudly
instead of passing quietly.  The ``covers`` marker's bookkeeping
(tests/formulas.py) is registered here.
"""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import formulas  # noqa: E402  (needs the path above)


def pytest_configure(config):
    # a formula counts as checked only by a test that ran and passed
    config.pluginmanager.register(formulas.CoverageTracker(),
                                  "formula-coverage")

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    formulas.attach_labels(item, rep)
    if IN_CI and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[-1] if isinstance(rep.longrepr, tuple) \
            else rep.longrepr
        rep.outcome = "failed"
        rep.longrepr = (f"skipped in CI, where every test must run: "
                        f"{reason}")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# Two cores: CI runs the suite with pytest-xdist, one test file per worker
# at a time (``--dist loadfile``), so each module-scoped fixture (a book
# crawl, an assignment's class run) is built once. (``loadgroup`` would
# split the nbgrader modules per assignment, but pytest-xdist 3.8 cannot
# rename pytest 9's node ids, so its groups are ignored.)


# One Chromium per test process: Playwright's sync API cannot be started
# twice in one thread, so every browser test (the site, the feedback
# page) shares this one.
@pytest.fixture(scope="session")
def browser():
    import sitecheck
    if sitecheck.chromium_path() is None:
        pytest.fail("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = sitecheck.launch(p)
        yield b
        b.close()
