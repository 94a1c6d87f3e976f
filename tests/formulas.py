"""Link tests to the book's labelled formulas.

Every displayed formula in the book carries a label, ``$$ ... $$ (eq-x)``,
and at least one test declares that it checks it::

    from formulas import covers

    @covers("eq-x")
    def test_...(): ...

``covers`` is the pytest marker ``covers(*labels)``.  Two checks use it:

- ``test_formulas.py`` (static): every book formula is claimed by a test
  function that exists (read from the test files' syntax tree, so a
  commented-out line claims nothing), and every claimed label exists.
- the hooks below (dynamic): a formula counts as checked only by a test
  that ran *and passed*.  Every test report carries its labels (in
  ``user_properties``, which pytest-xdist sends from the workers to the
  controller); at the end of the session the controller fails the run
  if a label's tests ran but none of them passed (skipped or xfailed
  tests do not count).  ``tests/conftest.py`` registers the hooks.
"""
from __future__ import annotations

import pytest

_KEY = "covers"


def covers(*labels: str):
    """Mark a test as the check of the book's formulas ``labels``."""
    for label in labels:
        if not isinstance(label, str) or not label.startswith("eq-"):
            raise ValueError(f"covers() takes formula labels 'eq-...', got "
                             f"{label!r}")
    return pytest.mark.covers(*labels)


def item_labels(item) -> tuple[str, ...]:
    return tuple(label for mark in item.iter_markers(_KEY)
                 for label in mark.args)


def attach_labels(item, report) -> None:
    """Called from ``pytest_runtest_makereport``: put the item's labels
    on its report (so they reach the xdist controller)."""
    labels = item_labels(item)
    if labels and not any(k == _KEY for k, _ in report.user_properties):
        report.user_properties.append((_KEY, labels))


class CoverageTracker:
    """Collects, on the controller, which labels ran and which passed."""

    def __init__(self):
        self.ran: dict[str, list[str]] = {}
        self.passed: set[str] = set()
        self.problem: list[str] = []

    def pytest_runtest_logreport(self, report):
        labels = next((v for k, v in report.user_properties if k == _KEY),
                      ())
        for label in labels:
            self.ran.setdefault(label, [])
            if report.nodeid not in self.ran[label]:
                self.ran[label].append(report.nodeid)
            if report.when == "call" and report.passed \
                    and not hasattr(report, "wasxfail"):
                self.passed.add(label)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if hasattr(session.config, "workerinput"):   # an xdist worker
            return
        failed = sorted(set(self.ran) - self.passed)
        if failed:
            self.problem = [f"{label}: no passing test (ran: "
                            f"{', '.join(self.ran[label])})"
                            for label in failed]
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if self.problem:
            terminalreporter.section("formulas without a passing test",
                                     red=True)
            for line in self.problem:
                terminalreporter.line(line)
