"""dlopt: the vectorized NumPy core of "Everything is a Mapping".

One concept per module:

- ``dlopt.maps``       layers as maps with forward and backward passes
- ``dlopt.losses``     loss functions returning ``(loss, grad)``
- ``dlopt.gradcheck``  numerical gradient checking in float64
- ``dlopt.mlp``        a small multilayer perceptron composed of maps
- ``dlopt.optim``      optimizers as gradient transformations
- ``dlopt.schedules``  learning-rate schedules (functions of the step)
- ``dlopt.landscapes`` test functions with exact gradients, and a runner
- ``dlopt.second_order`` Newton's direction and Armijo's line search
- ``dlopt.train``      a training loop: mini-batches, early stopping
- ``dlopt.autodiff``   a minimal reverse-mode automatic differentiation
- ``dlopt.regularization``, ``dlopt.distill``, ``dlopt.quantize``,
  ``dlopt.prune``
- ``dlopt.plotting``, ``dlopt.playground`` figures and ipywidgets
- ``dlopt.grading``    checks used by the graded notebooks
- ``dlopt.data``       small real data sets that ship offline

Notation follows the book (book/notation.md): a batch ``X`` has shape
``(N, D)``; a layer ``Z = X W^T + b`` has ``W`` of shape ``(M, D)``, (out,
in) as in ``torch.nn.Linear``, and ``b`` of shape ``(M,)``.
"""
__version__ = "0.1.0"
