"""Trusted checks, one module per assignment (see :mod:`coursekit.judge`).

These modules run only in the grader's process; the sandboxed kernel
cannot reach ``coursekit`` at all. Each module defines

* ``KERNEL``: settings for the assignment's sandbox, above all
  ``forbid``, the modules physically absent from the kernel's view
  (``torch`` for NumPy-only work, the ``dlopt`` modules that implement the
  answers);
* one function per graded test cell, named by its ``grade_id``,
  ``check(S, rng)``.
"""
