"""Every displayed formula in the book is labelled and checked by a test.

A formula is a display-math block ``$$ ... $$ (label)`` in a chapter that
the table of contents builds. Tests declare what they check with
``@covers("label")`` (tests/formulas.py). This test fails when a chapter
shows an unlabelled display formula, when a label has no test, or when a
test claims a label that no chapter shows.
"""
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DISPLAY = re.compile(
    r"^[ \t]*\$\$\s*\n(.*?)\n[ \t]*\$\$[ \t]*(\((?P<label>[\w-]+)\))?",
    re.S | re.M)
COVERS = re.compile(r"@covers\(([^)]*)\)")


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


def covered_labels() -> set[str]:
    labels = set()
    for path in (REPO / "tests").glob("test_*.py"):
        if path.name == "test_formulas.py":
            continue
        for m in COVERS.finditer(path.read_text()):
            labels.update(re.findall(r"[\"']([\w-]+)[\"']", m.group(1)))
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
