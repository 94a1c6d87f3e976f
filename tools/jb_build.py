"""``jupyter-book build`` with Sphinx's parallel jobs (``-j``).

jupyter-book 1.0's command line has no ``--jobs`` (jupyter-book#1735);
its ``build_sphinx`` takes one. MyST-NB executes each page's notebook
while the page is read, so with two jobs two chapters execute at once
(both cores). ``BOOK_JOBS`` sets the number (default 2; 1 is serial)::

    python tools/jb_build.py build . -W -n --keep-going

With two jobs on a fresh tree, both workers open the empty execution
cache at once and both run ``CREATE TABLE`` (jupyter-cache checks that
the database file exists, then creates it, with nothing in between):
``table settings already exists``; its folder is made the same way
(``File exists``). The folder is therefore made with ``exist_ok`` and
the database's creation serialized with a lock file next to it; the
second worker finds the database made.
"""
import fcntl
import functools
import os
from pathlib import Path

import jupyter_book.sphinx as jbs
import jupyter_cache.cache.main as jc_main

_create_db = jc_main.create_db


def _create_db_locked(path):
    Path(path).mkdir(parents=True, exist_ok=True)
    with open(Path(path) / ".create.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _create_db(path)


def _cache_path(self):
    self._path.mkdir(parents=True, exist_ok=True)
    return self._path


jc_main.create_db = _create_db_locked
jc_main.JupyterCacheBase.path = property(_cache_path)

jbs.build_sphinx = functools.partial(
    jbs.build_sphinx, jobs=int(os.environ.get("BOOK_JOBS", "2")))

from jupyter_book.cli.main import main  # noqa: E402

if __name__ == "__main__":
    main()
