"""Simulated students for each graded notebook.

Each module ``<assignment>.py`` defines ``STUDENTS``: name -> a dict with
``edit`` (answer cell grade_id -> list of ``(old, new)`` replacements
applied to the instructor's solution, or a full replacement string),
``score`` (the total the student must get) and ``messages`` (test cell
grade_id -> a phrase its failure message must contain). The perfect
student (the solution) and the untouched stub are added automatically.
"""
