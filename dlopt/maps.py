"""Layers as maps: each has a forward pass and a backward pass.

The style is CS231n's: ``*_forward`` returns ``(out, cache)`` and
``*_backward(dout, cache)`` returns the gradient(s) of the loss with respect
to the forward's input(s), given ``dout``, the gradient with respect to its
output. Everything works on a whole batch at once, one example per row.

Notation (see ``book/notation.md``): ``X`` is ``(N, D)``, ``W`` is
``(M, D)`` as in ``torch.nn.Linear``, ``b`` is ``(M,)`` and
``Z = X W^T + 1 b^T`` is ``(N, M)``.

Nonlinearities act elementwise, so their backward pass is the product
``dZ = dA * phi'(Z)``. The derivatives are also exposed as small named
functions (``sigmoid_grad``, ``tanh_grad``, ``relu_grad``) because the
book writes them out: ``sigma'(z) = sigma(z) (1 - sigma(z))`` and
``tanh'(z) = 1 - tanh(z)^2``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ._checks import as_float_array, check_shape

__all__ = [
    "affine_forward",
    "affine_backward",
    "sigmoid",
    "sigmoid_grad",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh",
    "tanh_grad",
    "tanh_forward",
    "tanh_backward",
    "relu",
    "relu_grad",
    "relu_forward",
    "relu_backward",
    "identity",
    "identity_grad",
    "identity_forward",
    "identity_backward",
    "softmax",
    "softmax_forward",
    "softmax_backward",
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "batchnorm_forward",
    "batchnorm_backward",
]


# ---------------------------------------------------------------------------
# affine map
# ---------------------------------------------------------------------------

def affine_forward(X, W, b):
    """Affine map of a batch: ``Z = X W^T + 1 b^T``.

    Parameters
    ----------
    X : array (N, D)
        Inputs, one example per row.
    W : array (M, D)
        Weights, *(out, in)* as in ``torch.nn.Linear``.
    b : array (M,)
        Bias.

    Returns
    -------
    Z : array (N, M)
    cache : tuple ``(X, W)`` for :func:`affine_backward`.
    """
    X = as_float_array("X", X, ndim=2)
    W = as_float_array("W", W, ndim=2)
    b = as_float_array("b", b, ndim=1)
    D = X.shape[1]
    if W.shape[1] != D:
        raise ValueError(
            f"W must have shape (M, {D}) to match X of shape {X.shape} "
            f"(W is (out, in) like torch.nn.Linear), got {W.shape}")
    check_shape("b", b, (W.shape[0],))
    Z = X @ W.T + b
    return Z, (X, W)


def affine_backward(dZ, cache):
    """Backward pass of :func:`affine_forward`.

    With ``delta = dZ = dL/dZ`` of shape ``(N, M)``:

    - ``dX = delta W``           shape ``(N, D)``
    - ``dW = delta^T X``         shape ``(M, D)``, like ``W``
    - ``db = 1^T delta``         shape ``(M,)`` (sum over the batch)

    No ``1/N`` appears here: the loss is already a batch mean, so its
    gradient ``dZ`` carries the ``1/N``.
    """
    X, W = cache
    dZ = as_float_array("dZ", dZ, ndim=2)
    check_shape("dZ", dZ, (X.shape[0], W.shape[0]))
    dX = dZ @ W
    dW = dZ.T @ X
    db = dZ.sum(axis=0)
    return dX, dW, db


# ---------------------------------------------------------------------------
# elementwise nonlinearities
# ---------------------------------------------------------------------------

def sigmoid(z):
    """Logistic function ``sigma(z) = 1 / (1 + exp(-z))``, elementwise.

    Numerically stable: it only ever evaluates ``exp(-|z|)``, which lies in
    ``(0, 1]``, so large ``|z|`` gives no overflow warning. For ``z >= 0``
    it uses ``1 / (1 + e)`` and for ``z < 0`` the equal form ``e / (1 + e)``
    with ``e = exp(-|z|)``.
    """
    z = np.asarray(z)
    if z.dtype.kind != "f":
        z = z.astype(np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(z):
    """``sigma'(z) = sigma(z) (1 - sigma(z))``, elementwise."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    """Hyperbolic tangent, elementwise (``np.tanh``; never overflows)."""
    return np.tanh(z)


def tanh_grad(z):
    """``tanh'(z) = 1 - tanh(z)^2``, elementwise."""
    t = np.tanh(z)
    return 1.0 - t * t


def relu(z):
    """``ReLU(z) = max(0, z)``, elementwise."""
    return np.maximum(z, 0.0)


def relu_grad(z):
    """ReLU derivative: 1 where ``z > 0``, else 0.

    At ``z = 0`` ReLU has no derivative; like PyTorch we use 0 there.
    """
    return (np.asarray(z) > 0).astype(np.float64)


def identity(z):
    """The identity map (a linear output layer)."""
    return np.asarray(z)


def identity_grad(z):
    """Derivative of the identity: ones like ``z``."""
    return np.ones_like(np.asarray(z, dtype=np.float64))


def _check_dout(dA, like, name="dA"):
    dA = as_float_array(name, dA)
    check_shape(name, dA, like.shape)
    return dA


def sigmoid_forward(Z):
    """``A = sigma(Z)``; returns ``(A, cache)`` with ``cache = A``."""
    Z = as_float_array("Z", Z)
    A = sigmoid(Z)
    return A, A


def sigmoid_backward(dA, cache):
    """``dZ = dA * A (1 - A)`` where ``A = sigma(Z)`` is the cache."""
    A = cache
    dA = _check_dout(dA, A)
    return dA * A * (1.0 - A)


def tanh_forward(Z):
    """``A = tanh(Z)``; returns ``(A, cache)`` with ``cache = A``."""
    Z = as_float_array("Z", Z)
    A = np.tanh(Z)
    return A, A


def tanh_backward(dA, cache):
    """``dZ = dA * (1 - A^2)`` where ``A = tanh(Z)`` is the cache."""
    A = cache
    dA = _check_dout(dA, A)
    return dA * (1.0 - A * A)


def relu_forward(Z):
    """``A = max(0, Z)``; returns ``(A, cache)`` with ``cache = Z``."""
    Z = as_float_array("Z", Z)
    return np.maximum(Z, 0.0), Z


def relu_backward(dA, cache):
    """``dZ = dA * 1[Z > 0]`` (0 at ``Z = 0``, as in PyTorch)."""
    Z = cache
    dA = _check_dout(dA, Z)
    return np.where(Z > 0, dA, 0.0)


def identity_forward(Z):
    """``A = Z``; returns ``(A, cache)`` with the shape as cache."""
    Z = as_float_array("Z", Z)
    return Z, Z


def identity_backward(dA, cache):
    """``dZ = dA``."""
    return _check_dout(dA, cache).copy()


# ---------------------------------------------------------------------------
# softmax (not elementwise: each row is mapped as a whole)
# ---------------------------------------------------------------------------

def softmax(Z, axis: int = -1):
    """Row-wise softmax ``softmax(z)_k = exp(z_k) / sum_j exp(z_j)``.

    Stable: the row maximum is subtracted first, which leaves the result
    unchanged (it cancels in the ratio) and keeps every ``exp`` <= 1.

    Parameters
    ----------
    Z : array (N, K) (or any shape; ``axis`` is normalised)
    """
    Z = as_float_array("Z", Z)
    E = np.exp(Z - Z.max(axis=axis, keepdims=True))
    return E / E.sum(axis=axis, keepdims=True)


def softmax_forward(Z):
    """``A = softmax(Z)`` row-wise, ``Z`` of shape ``(N, K)``.

    Returns ``(A, cache)`` with ``cache = A``.
    """
    Z = as_float_array("Z", Z, ndim=2)
    A = softmax(Z)
    return A, A


def softmax_backward(dA, cache):
    """Vector-Jacobian product of the row-wise softmax.

    For one row, ``J = diag(a) - a a^T``, so ``dz = J^T da =
    a * (da - (da . a))``. For the batch, with ``A`` the cache:

    ``dZ = A * (dA - sum_k(dA * A) 1^T)``, shape ``(N, K)``.

    ``J`` is symmetric, so this is also the Jacobian-vector product
    ``J da``. No ``K x K`` Jacobian is ever formed.
    """
    A = cache
    dA = _check_dout(dA, A)
    return A * (dA - np.sum(dA * A, axis=-1, keepdims=True))


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------

class Activation(NamedTuple):
    """A nonlinearity by name: the plain map, its derivative, and the
    forward/backward pair used when composing layers."""

    name: str
    fn: Callable
    grad: Callable | None
    forward: Callable
    backward: Callable


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_grad,
                          sigmoid_forward, sigmoid_backward),
    "tanh": Activation("tanh", tanh, tanh_grad,
                       tanh_forward, tanh_backward),
    "relu": Activation("relu", relu, relu_grad,
                       relu_forward, relu_backward),
    "identity": Activation("identity", identity, identity_grad,
                           identity_forward, identity_backward),
    # softmax has a Jacobian, not an elementwise derivative.
    "softmax": Activation("softmax", softmax, None,
                          softmax_forward, softmax_backward),
}


def get_activation(name) -> Activation:
    """Look up an activation by name (``None`` means ``"identity"``).

    Known names: ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"identity"``,
    ``"softmax"``. An :class:`Activation` is returned unchanged.
    """
    if name is None:
        return ACTIVATIONS["identity"]
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got "
            f"{name!r}")
    return ACTIVATIONS[name.lower()]


# ---------------------------------------------------------------------------
# batch normalisation (training mode)
# ---------------------------------------------------------------------------

def batchnorm_forward(Z, gamma, beta, eps: float = 1e-5):
    """Batch normalisation of ``Z`` ``(N, M)`` with the batch's statistics.

    ``Z_hat = (Z - mu) / sqrt(s2 + eps)`` with ``mu``, ``s2`` the mean and
    the biased variance of each column over the ``N`` rows, then ``out =
    gamma * Z_hat + beta`` (``gamma``, ``beta`` of shape ``(M,)``). This is
    ``torch.nn.functional.batch_norm(..., training=True)``; the running
    averages used at evaluation time are left to the caller. Returns
    ``(out, cache)``, ``out`` of shape ``(N, M)``.
    """
    Z = as_float_array("Z", Z, ndim=2)
    N, M = Z.shape
    if N < 2:
        raise ValueError(f"batch normalisation needs N >= 2 rows, got {N}")
    gamma = as_float_array("gamma", gamma)
    beta = as_float_array("beta", beta)
    check_shape("gamma", gamma, (M,))
    check_shape("beta", beta, (M,))
    mu = Z.mean(axis=0)
    inv_std = 1.0 / np.sqrt(Z.var(axis=0) + eps)
    Z_hat = (Z - mu) * inv_std
    return gamma * Z_hat + beta, (Z_hat, inv_std, gamma)


def batchnorm_backward(dout, cache):
    """Gradients ``(dZ, dgamma, dbeta)`` of :func:`batchnorm_forward`.

    ``dout`` is ``(N, M)``; ``dZ`` is ``(N, M)``, ``dgamma`` and ``dbeta``
    ``(M,)``. With ``G = dout * gamma`` (the gradient w.r.t. ``Z_hat``),
    ``dZ = inv_std / N * (N G - sum_n G - Z_hat * sum_n (G * Z_hat))``:
    the mean and the variance depend on every row, hence the two sums.
    """
    Z_hat, inv_std, gamma = cache
    dout = as_float_array("dout", dout)
    check_shape("dout", dout, Z_hat.shape)
    N = Z_hat.shape[0]
    G = dout * gamma
    dZ = inv_std / N * (N * G - G.sum(axis=0)
                        - Z_hat * (G * Z_hat).sum(axis=0))
    return dZ, (dout * Z_hat).sum(axis=0), dout.sum(axis=0)
