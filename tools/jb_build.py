"""``jupyter-book build`` with Sphinx's parallel jobs (``-j``).

jupyter-book 1.0's command line has no ``--jobs`` (jupyter-book#1735);
its ``build_sphinx`` takes one. MyST-NB executes each page's notebook
while the page is read, so with two jobs two chapters execute at once
(both cores). ``BOOK_JOBS`` sets the number (default 2; 1 is serial)::

    python tools/jb_build.py build . -W -n --keep-going
"""
import functools
import os

import jupyter_book.sphinx as jbs

jbs.build_sphinx = functools.partial(
    jbs.build_sphinx, jobs=int(os.environ.get("BOOK_JOBS", "2")))

from jupyter_book.cli.main import main  # noqa: E402

if __name__ == "__main__":
    main()
