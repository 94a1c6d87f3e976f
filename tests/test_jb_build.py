"""tools/jb_build.py: two Sphinx jobs open the execution cache together.

On a fresh tree both parallel workers used to create jupyter-cache's
database at once and one failed with ``table settings already exists``
(the CI failure of stop 19). The wrapper serializes the creation.
"""
import multiprocessing as mp
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _open_cache(path, barrier, errors):
    import jupyter_cache.cache.main as jc_main
    barrier.wait()
    try:
        jc_main.JupyterCacheBase(str(path)).list_cache_records()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"{type(exc).__name__}: {exc}".splitlines()[0])


def _race(tmp_path, rounds=12, workers=4):
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    for r in range(rounds):
        barrier = ctx.Barrier(workers)
        path = tmp_path / f"cache{r}"
        procs = [ctx.Process(target=_open_cache, args=(path, barrier, errors))
                 for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found


@pytest.fixture
def jb_build(monkeypatch):
    import jupyter_cache.cache.main as jc_main
    monkeypatch.setattr(jc_main, "create_db", jc_main.create_db)
    monkeypatch.setattr(jc_main.JupyterCacheBase, "path",
                        jc_main.JupyterCacheBase.path)
    monkeypatch.setattr(sys, "argv", ["jb_build.py"])
    runpy.run_path(str(ROOT / "tools" / "jb_build.py"), run_name="jb_build")
    return jc_main


# jupyter-book 1.0's command line subclasses click's BaseCommand
@pytest.mark.filterwarnings("ignore:'BaseCommand' is deprecated")
def test_jb_build_serializes_cache_creation(jb_build, tmp_path):
    assert jb_build.create_db.__name__ == "_create_db_locked"
    assert _race(tmp_path) == []
    for r in range(12):
        assert (tmp_path / f"cache{r}" / "global.db").is_file()


def test_unlocked_cache_creation_races(tmp_path):
    """The race the wrapper exists for is real with jupyter-cache's own
    create_db (so the test above can fail): with 4 processes x 12 fresh
    caches at least one ``CREATE TABLE`` collides."""
    found = _race(tmp_path)
    assert any("already exists" in e or "File exists" in e
               for e in found), found
