"""``matmul`` beyond matrices, recorded as PyTorch records it: not one node but its
decomposition (``aten/src/ATen/native/LinearAlgebra.cpp``, ``_matmul_impl``).

Vectors and matrices (dot, mv, mm) stay the one ``matmul`` node (the hot path is untouched).
A vector times a matrix is unsqueeze -> mm -> squeeze_; a batch against a vector or matrix is
folded into one mm/mv when PyTorch folds it; any other batch is expanded, reshaped to 3-d, run
through bmm and viewed back (``_unsafe_view``). Every piece is an op of the table, so values,
gradients and strides follow from theirs; a remote client traces this body for metadata and
sends one ``matmul`` Op, which the server decomposes the same way.
"""

from __future__ import annotations

import math
from typing import Any

from .. import layout, shapes
from ..arg_kinds import is_tensor
from ..op_examples import Ex, S
from ..op_table import op
from .arithmetic import matmul
from .shape_ops import unsafe_view

record_matmul = matmul.call  # the generated caller: one node (DotBackward0, MvBackward0, ...)


def one_node(self: Any, other: Any) -> bool:
    """Whether ``self @ other`` is recorded as the one ``matmul`` node (dot, mv, mm, or an
    argument that is no tensor, whose error that node's checks give)."""
    if not (is_tensor(self) and is_tensor(other)):
        return True
    n1, n2 = self.ndim, other.ndim
    return n1 <= 2 and n2 <= 2 and (n1 != 1 or n2 != 2) or not n1 or not n2


@op(
    internal=True,
    grad_fn="SqueezeBackward4",
    shape=lambda a, dim: a[:dim] + a[dim + 1 :],
    layout=lambda a, lay, /, dim: layout.squeezed(a, lay, (dim,)),
    method=False,
    function=False,
    examples=(Ex(S(1, 3), 0),),
)
def squeeze_result(xp: Any, self: Any, dim: int) -> Any:
    """``squeeze_(dim)`` of a fresh vector-matrix product, recorded as SqueezeBackward4.

    PyTorch squeezes in place a result nothing else sees; out of place here is the same."""
    return self.reshape(self.shape[:dim] + self.shape[dim + 1 :])


@squeeze_result.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.unsqueeze(ctx.attrs["dim"]),)


def _lone(t: Any, batch: Any) -> bool:
    return t.shape[0] == 1 and batch.shape[0] != 1 and t.requires_grad


def _should_fold(t1: Any, t2: Any) -> bool:
    """PyTorch's ``should_fold``: fold a batch into one matrix product when the smaller operand
    needs a gradient (a smaller backward), or when the batch folds without a copy."""
    d1, d2 = t1.ndim, t2.ndim
    larger = d1 >= d2
    big = t1 if larger else t2
    shape = tuple(big.shape)
    strides = list(big.stride())
    if not larger:  # the batch is t2, transposed
        shape = shape[:-2] + (shape[-1], shape[-2])
        strides[-2], strides[-1] = strides[-1], strides[-2]
    if not (len(shape) >= 3 and (d2 if larger else d1) <= 2):
        return False
    if (t2 if larger else t1).requires_grad:
        return True
    if d1 == 2:
        return False
    if math.prod(shape) == 0:
        return True
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(len(shape) - 2))


def _folded(t1: Any, t2: Any) -> Any:
    transpose = t2.ndim > t1.ndim
    big = t2.mT if transpose else t1
    small = (t1.t() if t1.ndim == 2 else t1) if transpose else t2
    sizes = tuple(big.shape)
    out_shape = sizes[:-1]
    rows = math.prod(out_shape)
    flat = big.reshape(rows, sizes[-1])
    if small.ndim == 2:
        out = unsafe_view.call(flat.mm(small), out_shape + (small.shape[1],))
        return out.mT.contiguous() if transpose else out
    return unsafe_view.call(flat.mv(small), out_shape)


def _batched(t1: Any, t2: Any) -> Any:
    d1, d2 = t1.ndim, t2.ndim
    n = t1.shape[-2] if d1 > 1 else 1
    m1 = t1.shape[-1]
    m2 = t2.shape[-2] if d2 > 1 else t2.shape[0]
    p = t2.shape[-1] if d2 > 1 else 1
    batch = shapes.broadcast(tuple(t1.shape[: max(d1 - 2, 0)]), tuple(t2.shape[: max(d2 - 2, 0)]))
    count = math.prod(batch)
    e1 = t1.expand(*batch, n, m1).reshape(count, n, m1)
    if d2 == 1:
        e2 = t2.expand(*batch, m2).reshape(count, m2).unsqueeze(2)
    else:
        e2 = t2.expand(*batch, m2, p).reshape(count, m2, p)
    out_shape = batch + ((n,) if d1 > 1 else ()) + ((p,) if d2 > 1 else ())
    product = e1.bmm(e2)
    if d2 == 1:
        product = product.squeeze(-1)
    return unsafe_view.call(product, out_shape)


def decomposed(self: Any, other: Any) -> Any:
    """``self @ other`` for the ranks that are not one node, as PyTorch decomposes it."""
    shapes.matmul(tuple(self.shape), tuple(other.shape))  # PyTorch's errors, before anything
    if self.ndim == 1 and other.ndim == 2:
        return squeeze_result.call(self.unsqueeze(0).mm(other), 0)
    if self.ndim == 3 and other.ndim == 3:
        # A batch of one that needs a gradient, against a real batch, is squeezed to a matrix
        # (its gradient is then one mm, not a bmm summed over the batch).
        if _lone(self, other):
            self = self.squeeze(0)
        elif _lone(other, self):
            other = other.squeeze(0)
    if _should_fold(self, other):
        return _folded(self, other)
    return _batched(self, other)


def _matmul_call(self: Any, other: Any) -> Any:
    if one_node(self, other):
        return record_matmul(self, other)
    return decomposed(self, other)


_matmul_call._gradd_checked = True  # type: ignore[attr-defined]  # its two paths check
_matmul_call.__doc__ = matmul.doc
matmul.call = _matmul_call
