"""Every displayed formula in the book is labelled and checked by a test.

A formula is a display-math block ``$$ ... $$ (label)`` in a chapter that
the table of contents builds. Tests declare what they check with the
marker ``@covers("label")`` (tests/formulas.py). This test fails when a
chapter shows an unlabelled display formula, when a label is claimed by
no test function, or when a test claims a label that no chapter shows.
Claims are read from the test files' syntax tree (a commented-out
decorator claims nothing); that a claiming test also *passed* is checked
at the end of every session (tests/formulas.py, registered in conftest).
"""
import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DISPLAY = re.compile(
    r"^[ \t]*\$\$\s*\n(.*?)\n[ \t]*\$\$[ \t]*(\((?P<label>[\w-]+)\))?",
    re.S | re.M)


def toc_files() -> list[Path]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections", []))
            for part in e.get("parts", []):
                walk(part.get("chapters", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return [REPO / (f + ".md") for f in files
            if (REPO / (f + ".md")).exists()]


def book_formulas() -> dict[str, list[str]]:
    """label -> places; unlabelled formulas under the key ''."""
    found: dict[str, list[str]] = {}
    for path in toc_files():
        text = path.read_text()
        # Inside code cells "$$" is code, not maths.
        text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        for m in DISPLAY.finditer(text):
            line = text[:m.start()].count("\n") + 1
            found.setdefault(m.group("label") or "", []).append(
                f"{path.relative_to(REPO)}:{line}")
    return found


def _claims(tree) -> dict[str, set[str]]:
    """``{test name: labels}`` from ``@covers(...)`` decorators."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                 ast.ClassDef)):
            continue
        for dec in node.decorator_list:
            if not isinstance(dec, ast.Call):
                continue
            f = dec.func
            name = f.id if isinstance(f, ast.Name) else \
                f.attr if isinstance(f, ast.Attribute) else None
            if name != "covers":
                continue
            found.setdefault(node.name, set()).update(
                a.value for a in dec.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return found


def covered_labels() -> set[str]:
    labels = set()
    for path in (REPO / "tests").glob("test_*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for claimed in _claims(tree).values():
            labels |= claimed
    return labels


def test_the_book_shows_formulas():
    assert len(book_formulas()) > 3, "no labelled formulas found: parser?"


def test_every_display_formula_is_labelled():
    unlabelled = book_formulas().get("", [])
    assert not unlabelled, (
        "display formulas without a label (write `$$ ... $$ (eq-name)`) "
        f"at: {unlabelled}")


def test_every_formula_has_a_test():
    shown = set(book_formulas()) - {""}
    missing = sorted(shown - covered_labels())
    assert not missing, (
        f"formulas shown in the book that no test checks: {missing}; "
        "add a test decorated with @covers(...)")


def test_every_covered_label_exists_in_the_book():
    stale = sorted(covered_labels() - set(book_formulas()))
    assert not stale, f"tests cover labels the book no longer shows: {stale}"


def test_label_parser_finds_what_it_should(tmp_path):
    # The checker itself must be able to fail.
    text = ("$$\nx = 1\n$$ (eq-one)\n\n$$\ny = 2\n$$\n"
            "1. step\n\n   $$\n   z = 3\n   $$ (eq-three)\n")
    labels = [m.group("label") for m in DISPLAY.finditer(text)]
    assert labels == ["eq-one", None, "eq-three"]


def test_claims_are_read_from_code_not_comments():
    tree = ast.parse(textwrap.dedent("""
        # @covers("eq-commented")
        @covers("eq-a", "eq-b")
        def test_one(): pass

        class TestC:
            @pytest.mark.covers("eq-c")
            def test_two(self): pass

        @other("eq-d")
        def test_three(): pass
        """))
    assert _claims(tree) == {"test_one": {"eq-a", "eq-b"},
                             "test_two": {"eq-c"}}


def test_a_formula_counts_only_if_its_test_passes(tmp_path):
    """The session check fails a run in which every test claiming a
    label failed or was skipped, with or without pytest-xdist."""
    tests = REPO / "tests"
    (tmp_path / "formulas.py").write_text((tests / "formulas.py")
                                          .read_text())
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import sys, pathlib
        sys.path.insert(0, str(pathlib.Path(__file__).parent))
        import formulas
        import pytest

        def pytest_configure(config):
            config.pluginmanager.register(formulas.CoverageTracker())

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            formulas.attach_labels(item, outcome.get_result())
        """))
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        import pytest
        from formulas import covers

        @covers("eq-good")
        def test_good(): assert True

        @covers("eq-bad")
        def test_bad_fails(): assert False

        @covers("eq-skipped")
        def test_skipped(): pytest.skip("no")

        @covers("eq-good", "eq-half")
        @pytest.mark.parametrize("x", [0, 1])
        def test_half(x): assert x
        """))
    env = {**os.environ, "CI": ""}
    for extra in ([], ["-n", "2"]):
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-o", "markers=covers", *extra, str(tmp_path)],
            capture_output=True, text=True, cwd=tmp_path, env=env)
        text = out.stdout + out.stderr
        assert out.returncode == 1, text
        assert "formulas without a passing test" in text, text
        assert "eq-bad: no passing test" in text, text
        assert "eq-skipped: no passing test" in text, text
        assert "eq-good:" not in text and "eq-half:" not in text, text
        # labels whose tests were not selected are not judged
        ok = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-o", "markers=covers", *extra, "-k", "good", str(tmp_path)],
            capture_output=True, text=True, cwd=tmp_path, env=env)
        assert ok.returncode == 0, ok.stdout + ok.stderr
