"""Instructor tooling for the course, over nbgrader's standard workflow.

``coursekit.simulate`` makes submissions (a perfect student, an untouched
stub, a student with a named mistake) for tests and benchmarks;
``coursekit.pipeline`` runs nbgrader's release/autograde/feedback/export
steps in a course directory and reads scores from the gradebook.
"""
