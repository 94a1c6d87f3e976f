"""Speed of the course site: build times and page weight.

    python bench/bench_site.py            # page weights of _build/html
    python bench/bench_site.py --build    # + clean build / cached rebuild

Page weight: every page of the built book is loaded in the system
Chromium (served from 127.0.0.1, as in tests/test_site.py) and the sizes
of the files it loads are summed: the HTML and every script, stylesheet,
font and image it requested. The heaviest page's biggest files are listed.

Build times (``--build``) are measured on a copy of the repository's
tracked files in a temporary directory (the working tree's _build is not
touched): clean build (every chapter executed, empty jupyter-cache),
rebuild with nothing changed, and rebuild after deleting the HTML but
keeping the execution cache (every page re-rendered, nothing executed).
Targets (issue 8): clean < 300 s, cached < 30 s, every page < 5 MB.
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
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    start = time.perf_counter()
    run = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build",
         str(root), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if run.returncode:
        sys.exit(f"build failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return elapsed


def bench_builds() -> dict[str, float]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="bench_site_") as tmp:
        root = Path(tmp)
        for name in files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
        (root / "_assets").symlink_to(REPO / "_assets")
        times = {"clean build (all chapters executed)": build(root),
                 "rebuild, nothing changed": build(root)}
        shutil.rmtree(root / "_build" / "html")
        times["rebuild of every page from the cache"] = build(root)
    return times


def bench_weights(html: Path) -> tuple[dict[str, int], dict]:
    from playwright.sync_api import sync_playwright

    if sitecheck.chromium_path() is None:
        sys.exit("Chromium not installed")
    with sync_playwright() as p, sitecheck.SiteServer(html) as server:
        browser = sitecheck.launch(p)
        reports = sitecheck.crawl(browser, server, phone=False)
        browser.close()
    reports = {k: r for k, r in reports.items() if not r.redirect}
    return {k: r.weight(html) for k, r in reports.items()}, reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true",
                        help="also time a clean build and cached rebuilds")
    parser.add_argument("--html", type=Path, default=REPO / "_build/html")
    args = parser.parse_args()
    if args.build:
        for what, seconds in bench_builds().items():
            print(f"{what:40s} {seconds:7.1f} s")
    weights, reports = bench_weights(args.html)
    for page, size in sorted(weights.items(), key=lambda kv: -kv[1]):
        print(f"{size / 1e6:6.2f} MB  {page}")
    heaviest = max(weights, key=weights.get)
    report = reports[heaviest]
    files = {sitecheck.local_file(args.html, u) for u in report.requests
             if sitecheck.is_local(u) and u.startswith("http")}
    print(f"heaviest page {heaviest}; its biggest files:")
    for f in sorted(files, key=lambda f: -f.stat().st_size)[:8]:
        print(f"  {f.stat().st_size / 1e6:6.2f} MB  "
              f"{f.relative_to(args.html)}")
    over = [p for p, w in weights.items() if w > TARGET_PAGE_MB * 2**20]
    if over:
        sys.exit(f"pages over {TARGET_PAGE_MB} MB: {over}")


if __name__ == "__main__":
    main()
