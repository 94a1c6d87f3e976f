"""A minimal reverse-mode automatic differentiation, array-valued.

In the spirit of micrograd (Karpathy), but every node holds a NumPy
array, so a whole layer ``Z = X W^T + b`` is three nodes, not thousands.

A :class:`Tensor` remembers the tensors it was computed from and a
function that maps the gradient of the loss with respect to its value,
``g = dL/d(out)``, to the gradients with respect to each input (a
vector-Jacobian product). :meth:`Tensor.backward` visits the graph in
reverse topological order, so each node's gradient is complete (summed
over every path that uses it) before it is passed on: this is the chain
rule on a computational graph,

``dL/du = sum over children v of u:  (dL/dv) (dv/du)``.

Like ``torch.autograd``, gradients **accumulate** into the ``.grad`` of
leaf tensors (the parameters): calling ``backward`` twice adds the two
gradients, which is why a training loop zeroes them before each step
(:func:`zero_grad`). Intermediate nodes never keep a gradient.

Everything is float64. Supported: ``+ - * /`` (with NumPy broadcasting),
``**`` a constant, ``@`` (2-D), ``.T``, ``sum``, ``mean``, ``tanh``,
``sigmoid``, ``relu``, ``exp``, ``log``.
"""
from __future__ import annotations

from numbers import Real

import numpy as np

from ._checks import as_float_array
from .maps import sigmoid as _sigmoid

__all__ = ["Tensor", "tensor", "zero_grad"]


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the adjoint of NumPy broadcasting.

    A value broadcast along an axis was *used* once per entry of that
    axis, so its gradient is the sum over that axis (this is why the bias
    gradient is the sum of the rows of ``delta``).
    """
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


class Tensor:
    """A node of a computational graph holding a float64 array.

    Parameters
    ----------
    data : array-like of real numbers (any shape; a scalar is shape ``()``).
    requires_grad : if True, ``backward`` stores ``dL/d(self)`` in
        ``self.grad`` (accumulating). Use it for parameters.

    Attributes
    ----------
    data : float64 ndarray, the value.
    grad : float64 ndarray shaped like ``data``, or ``None`` before the
        first ``backward``.
    op : name of the operation that made this tensor ("" for a leaf).
    """

    def __init__(self, data, requires_grad: bool = False):
        self.data = as_float_array("data", data).astype(np.float64)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._parents = ()
        self._vjp = None
        self.op = ""

    # -- bookkeeping -------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def is_leaf(self) -> bool:
        return not self._parents

    def __repr__(self) -> str:
        kind = f"op={self.op!r}" if self.op else \
            f"requires_grad={self.requires_grad}"
        return f"Tensor(shape={self.shape}, {kind})"

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``self.grad = None``)."""
        self.grad = None

    @staticmethod
    def _lift(x) -> "Tensor":
        if isinstance(x, Tensor):
            return x
        if isinstance(x, Real) or isinstance(x, np.ndarray):
            return Tensor(x)
        raise TypeError(f"cannot combine a Tensor with "
                        f"{type(x).__name__}; use a number, a NumPy "
                        f"array or a Tensor")

    def _make(self, data, parents, vjp, op) -> "Tensor":
        """A new node; it needs a gradient if any parent does."""
        out = object.__new__(Tensor)  # skip input checks: data is ours
        out.data = np.asarray(data, dtype=np.float64)
        out.requires_grad = any(p.requires_grad for p in parents)
        out.grad = None
        # Keep the graph only where a gradient will flow through it.
        out._parents = tuple(parents) if out.requires_grad else ()
        out._vjp = vjp if out.requires_grad else None
        out.op = op
        return out

    # -- arithmetic (elementwise, with broadcasting) -----------------------
    def __add__(self, other):
        other = self._lift(other)
        a, b = self.shape, other.shape
        return self._make(self.data + other.data, (self, other),
                          lambda g: (_unbroadcast(g, a),
                                     _unbroadcast(g, b)), "+")

    __radd__ = __add__

    def __neg__(self):
        return self._make(-self.data, (self,), lambda g: (-g,), "neg")

    def __sub__(self, other):
        return self + (-self._lift(other))

    def __rsub__(self, other):
        return self._lift(other) + (-self)

    def __mul__(self, other):
        other = self._lift(other)
        x, y = self.data, other.data
        return self._make(x * y, (self, other),
                          lambda g: (_unbroadcast(g * y, x.shape),
                                     _unbroadcast(g * x, y.shape)), "*")

    __rmul__ = __mul__

    def __pow__(self, p):
        if isinstance(p, bool) or not isinstance(p, Real):
            raise TypeError(f"the exponent must be a number, got "
                            f"{type(p).__name__}")
        x = self.data
        return self._make(x ** p, (self,),
                          lambda g: (g * p * x ** (p - 1),), f"**{p}")

    def __truediv__(self, other):
        return self * self._lift(other) ** -1

    def __rtruediv__(self, other):
        return self._lift(other) * self ** -1

    # -- linear algebra ----------------------------------------------------
    def __matmul__(self, other):
        other = self._lift(other)
        A, B = self.data, other.data
        if A.ndim != 2 or B.ndim != 2:
            raise ValueError(f"@ needs two 2-D tensors, got shapes "
                             f"{A.shape} and {B.shape}")
        if A.shape[1] != B.shape[0]:
            raise ValueError(f"shapes {A.shape} and {B.shape} cannot be "
                             f"multiplied: {A.shape[1]} != {B.shape[0]}")
        # C = A B:  dL/dA = G B^T,  dL/dB = A^T G.
        return self._make(A @ B, (self, other),
                          lambda g: (g @ B.T, A.T @ g), "@")

    @property
    def T(self):
        """Transpose (2-D): ``dL/dX = (dL/dX^T)^T``."""
        if self.data.ndim != 2:
            raise ValueError(f".T needs a 2-D tensor, got shape "
                             f"{self.shape}")
        return self._make(self.data.T, (self,), lambda g: (g.T,), "T")

    # -- reductions --------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        """Sum over ``axis`` (all axes if None); its gradient is ``g``
        copied back over the summed axes."""
        shape = self.shape

        def vjp(g):
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape).copy(),)

        return self._make(self.data.sum(axis=axis, keepdims=keepdims),
                          (self,), vjp, "sum")

    def mean(self, axis=None, keepdims: bool = False):
        """Mean over ``axis``: the sum divided by the number of terms."""
        n = self.data.size if axis is None else int(
            np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / n)

    # -- elementwise maps --------------------------------------------------
    def tanh(self):
        """``tanh``; ``d tanh(z)/dz = 1 - tanh(z)^2``."""
        a = np.tanh(self.data)
        return self._make(a, (self,), lambda g: (g * (1 - a * a),), "tanh")

    def sigmoid(self):
        """``sigma``; ``d sigma(z)/dz = sigma(z)(1 - sigma(z))``."""
        s = _sigmoid(self.data)
        return self._make(s, (self,), lambda g: (g * s * (1 - s),),
                          "sigmoid")

    def relu(self):
        """``max(0, z)``; derivative 1 where ``z > 0``, else 0 (torch)."""
        x = self.data
        return self._make(np.maximum(x, 0.0), (self,),
                          lambda g: (g * (x > 0),), "relu")

    def exp(self):
        """``exp``; its derivative is itself."""
        e = np.exp(self.data)
        return self._make(e, (self,), lambda g: (g * e,), "exp")

    def log(self):
        """Natural log; ``d log(x)/dx = 1/x``."""
        x = self.data
        return self._make(np.log(x), (self,), lambda g: (g / x,), "log")

    # -- reverse mode ------------------------------------------------------
    def _topological_order(self) -> list["Tensor"]:
        order, seen = [], set()
        stack = [(self, False)]
        while stack:  # iterative DFS: deep graphs must not hit recursion
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents
                         if id(p) not in seen)
        return order  # every node after all of its parents

    def backward(self, grad=None) -> None:
        """Accumulate ``dL/d(leaf)`` into every leaf that requires grad.

        Parameters
        ----------
        grad : ``dL/d(self)``, shaped like ``self``. May be omitted when
            ``self`` is a scalar (then it is 1: ``self`` is the loss).
        """
        if not self.requires_grad:
            raise RuntimeError("this tensor does not depend on any tensor "
                               "with requires_grad=True: nothing to "
                               "differentiate")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() without grad needs a scalar, got shape "
                    f"{self.shape}; pass grad=dL/d(self)")
            grad = np.ones_like(self.data)
        grad = as_float_array("grad", grad).astype(np.float64)
        if grad.shape != self.shape:
            raise ValueError(f"grad must have shape {self.shape}, got "
                             f"{grad.shape}")
        # Pending gradients of the nodes not yet visited.
        pending = {id(self): grad}
        for node in reversed(self._topological_order()):
            g = pending.pop(id(node), None)
            if g is None:
                continue
            if node.is_leaf:
                # Leaves accumulate, exactly like torch's .grad.
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            for parent, pg in zip(node._parents, node._vjp(g)):
                if parent.requires_grad:
                    key = id(parent)
                    pending[key] = pending[key] + pg if key in pending \
                        else pg


def tensor(data, requires_grad: bool = False) -> Tensor:
    """Shorthand for :class:`Tensor` (like ``torch.tensor``)."""
    return Tensor(data, requires_grad=requires_grad)


def zero_grad(params) -> None:
    """Set ``.grad = None`` on every tensor of a dict or iterable."""
    values = params.values() if isinstance(params, dict) else params
    for p in values:
        if not isinstance(p, Tensor):
            raise TypeError(f"zero_grad expects Tensors, got "
                            f"{type(p).__name__}")
        p.zero_grad()
