"""Instructor tooling for the course, over nbgrader's standard workflow.

One module per stage of the pipeline, in the order an instructor runs
them: ``coursekit.release`` (the student version, to the exchange, and
feedback back to the students), ``coursekit.collect`` (from the
file-system exchange, refusing what is not what it claims),
``coursekit.autograde`` (the class run: supervised workers, retries,
resume, shards), ``coursekit.feedback`` (self-contained pages that never
show hidden tests) and ``coursekit.export`` (grades CSV).
``coursekit.config.CourseConfig`` holds the settings, built once;
``coursekit.pipeline`` runs nbgrader commands and reads scores;
``coursekit.nbmeta`` reads nbgrader's cell metadata; ``coursekit.cli`` is
``python -m coursekit``. Grading itself runs in ``coursekit.sandbox`` /
``coursekit.execute`` / ``coursekit.judge`` (verdicts from outside the
kernel, with the checks in ``coursekit.checks``) / ``coursekit.layout``;
``coursekit.simulate`` makes submissions for tests and benchmarks.
"""
