"""Link tests to the book's labelled formulas.

Every displayed formula in the book carries a label, ``$$ ... $$ (eq-x)``,
and at least one test declares that it checks it with ``@covers("eq-x")``.
``test_formulas.py`` reads both and fails on a formula no test covers.
"""


def covers(*labels: str):
    """Mark a test as the check of the book's formulas ``labels``."""
    def mark(func):
        func.formula_labels = labels
        return func
    return mark
