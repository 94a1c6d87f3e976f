"""The course site's tooling: the Sphinx extension (``book_site``) and
the book-only HTML exports the chapters call (``bookhtml``)."""
