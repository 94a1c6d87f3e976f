"""Speed of the course site: build times and page weight.

    python bench/bench_site.py            # page weights of _build/html
    python bench/bench_site.py --build    # + clean build / cached rebuild

Page weight: every page of the built book is loaded in the system
Chromium (served from 127.0.0.1, as in tests/test_site.py) and the sizes
of the files it loads are summed: the HTML and every script, stylesheet,
font and image it requested. The heaviest page's biggest files are listed.

Build times (``--build``) are measured on a copy of the repository's
tracked files in a temporary directory, and the build runs *in* the copy,
so the configured ``_build/.jupyter_cache`` (a relative path) is the
copy's own, empty at first (run from the repository, it would be the
repository's warm cache: a "clean build" in seconds). Measured: clean
build (every chapter executed), rebuild with nothing changed, and rebuild
after deleting the HTML but keeping the execution cache (every page
re-rendered, nothing executed); the page weights are then those of the
copy's build. Targets: clean < 300 s, cached < 30 s, every page < 5 MB.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import sitecheck  # noqa: E402

TARGET_CLEAN_S, TARGET_CACHED_S, TARGET_PAGE_MB = 300, 30, 5


def build(root: Path) -> float:
    """Seconds for ``make book``'s build (``tools/jb_build.py``: two
    chapters executed at once; ``BOOK_JOBS=1`` for serial) of the copy
    at ``root``, run
    *in* the copy: the configured cache (``_build/.jupyter_cache``, a
    relative path) then resolves to the copy's own, not the repository's
    warm one."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["PYTHONPATH"] = str(root)           # the copy's dlopt and tools
    start = time.perf_counter()
    run = subprocess.run(              # as `make book` runs it
        [sys.executable, str(root / "tools" / "jb_build.py"), "build",
         ".", "-W", "-n", "--keep-going"],
        cwd=root, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if run.returncode:
        sys.exit(f"build failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return elapsed


def executed(root: Path) -> int:
    """Notebooks in the copy's own jupyter-cache."""
    cache = root / "_build" / ".jupyter_cache"
    return len(list(cache.rglob("*.ipynb"))) if cache.is_dir() else 0


def bench_builds(keep: Path | None = None) -> dict[str, float]:
    """Clean build and rebuilds in an isolated copy of the tracked files
    (its own _build and jupyter-cache); ``keep``: copy the built HTML
    there (for the page weights)."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="bench_site_") as tmp:
        root = Path(tmp) / "course"
        for name in files:
            if not (REPO / name).is_file():
                continue                    # deleted in the working tree
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
        (root / "_assets").symlink_to(REPO / "_assets")
        if (REPO / "node_modules").is_dir():
            (root / "node_modules").symlink_to(REPO / "node_modules")
        assert not (root / "_build").exists()
        times = {"clean build (all chapters executed)": build(root)}
        n = executed(root)
        if n == 0:
            sys.exit("the clean build left no jupyter-cache in the copy: "
                     "it did not execute there")
        print(f"(clean build executed {n} notebooks into the copy's "
              f"own cache)")
        times["rebuild, nothing changed"] = build(root)
        shutil.rmtree(root / "_build" / "html")
        times["rebuild of every page from the cache"] = build(root)
        if keep is not None:
            shutil.copytree(root / "_build" / "html", keep)
    return times


def bench_weights(html: Path) -> tuple[dict[str, int], dict]:
    from playwright.sync_api import sync_playwright

    if sitecheck.chromium_path() is None:
        sys.exit("Chromium not installed")
    with sync_playwright() as p, sitecheck.SiteServer(html) as server:
        browser = sitecheck.launch(p)
        # generous timeouts: the bench weighs, it does not judge speed
        reports = sitecheck.crawl(browser, server, phone=False,
                                  timeout_ms=180_000)
        browser.close()
    reports = {k: r for k, r in reports.items() if not r.redirect}
    return {k: r.weight(html) for k, r in reports.items()}, reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true",
                        help="time a clean build and cached rebuilds in an "
                             "isolated copy, and weigh its pages")
    parser.add_argument("--html", type=Path, default=REPO / "_build/html")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_site_html_") as tmp:
        if args.build:
            html = Path(tmp) / "html"
            times = bench_builds(keep=html)
            targets = {"clean": TARGET_CLEAN_S, "rebuild": TARGET_CACHED_S}
            for what, seconds in times.items():
                budget = targets["clean" if what.startswith("clean")
                                 else "rebuild"]
                print(f"{what:40s} {seconds:7.1f} s  "
                      f"({seconds / budget:.2f} of the {budget} s budget)")
        else:
            html = args.html
        weigh(html)


def weigh(html: Path) -> None:
    weights, reports = bench_weights(html)
    for page, size in sorted(weights.items(), key=lambda kv: -kv[1]):
        print(f"{size / 1e6:6.2f} MB  {page}")
    heaviest = max(weights, key=weights.get)
    report = reports[heaviest]
    files = {sitecheck.local_file(html, u) for u in report.requests
             if sitecheck.is_local(u) and u.startswith("http")}
    print(f"heaviest page {heaviest} "
          f"({weights[heaviest] / (TARGET_PAGE_MB * 2**20):.2f} of the "
          f"{TARGET_PAGE_MB} MB budget); its biggest files:")
    for f in sorted((f for f in files if f.is_file()),
                    key=lambda f: -f.stat().st_size)[:8]:
        print(f"  {f.stat().st_size / 1e6:6.2f} MB  "
              f"{f.relative_to(html)}")
    over = [p for p, w in weights.items() if w > TARGET_PAGE_MB * 2**20]
    if over:
        sys.exit(f"pages over {TARGET_PAGE_MB} MB: {over}")


if __name__ == "__main__":
    main()
