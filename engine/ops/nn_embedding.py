"""``embedding``: rows of a weight matrix picked by integer indices.

As PyTorch: ``max_norm`` first renormalises, in place and without a graph, the rows the indices
pick (PyTorch's ``embedding_renorm_``, which moves the weight's version); the lookup is one
``EmbeddingBackward0`` node whose gradient adds each picked row's gradient back into a zero
weight (``padding_idx``'s row gets none; ``scale_grad_by_freq`` divides by each index's count).
Index values are checked on the CPU; on a GPU reading them would be a sync per call (PyTorch's
CUDA kernel asserts asynchronously instead).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import dtypes as dt
from ..op_examples import C, Ex, S
from ..op_table import _mixed_devices, composite, op
from .indexing import _scatter_add_at, index_select_backward


class ArgumentAssertionError(AssertionError, ValueError):
    """PyTorch's ``assert`` on an argument (an AssertionError), which is a bad argument for a
    server too (a ValueError is INVALID_ARGUMENT there, where a bare AssertionError would be
    an internal error)."""


def _check_bounds(xp: Any, indices: Any, n: int) -> None:
    if xp is np and indices.size and ((indices < 0) | (indices >= n)).any():
        raise IndexError("index out of range in self")


def _renorm_rows(weight: Any, indices: Any, max_norm: float, norm_type: float) -> None:
    """PyTorch's ``embedding_renorm_``: scale each row that ``indices`` pick to norm at most
    ``max_norm``, in place, without a graph, moving the weight's version. A remote weight's
    mirror only moves its version: the server runs this same body on its own copy."""
    from ..memory_meter import _active, used
    from ..tensor import Tensor

    if type(weight) is Tensor:
        if used.ever and _active.meter is not None:  # |w| ** p: one weight-sized temporary
            _active.meter.check(weight._data.nbytes, op="embedding")
        dev = weight._dev
        with dev.scope():
            _scale_rows(dev.xp, weight._data, indices._data, max_norm, norm_type)
    weight._vc[0] += 1


def _scale_rows(xp: Any, w: Any, indices: Any, max_norm: float, norm_type: float) -> None:
    n = w.shape[0]
    if xp is np and indices.size:  # PyTorch's renorm selects each row: its message, for the
        bad = (indices >= n) | (indices < -n)  # smallest bad index (it visits them sorted)
        if bad.any():
            raise IndexError(
                f"select(): index {int(np.sort(indices[bad])[0])} out of range for tensor of "
                f"size {list(w.shape)} at dimension 0"
            )
    picked = xp.zeros(n, dtype=bool)
    picked[indices.reshape(-1)] = True  # a mask, not unique(): no sync on a GPU
    if norm_type == float("inf"):
        norms = xp.abs(w).max(axis=1)
    else:
        norms = (xp.abs(w) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(picked & (norms > max_norm), max_norm / (norms + 1e-7), 1.0)
    w *= scale[:, None].astype(w.dtype)


@op(
    internal=True,
    grad_fn="EmbeddingBackward0",
    arity=2,
    dtype=lambda weight, indices, **k: weight.dtype,
    saves=(1,),
    shape=lambda w, i, padding_idx, scale_grad_by_freq: (*i, w[1]),
    method=False,
    function=False,
    examples=(
        Ex(S(5, 3), C([[0, 4], [2, 2]]), -1, False),
        Ex(S(4, 2), C([1, 3, 1, 0]), 1, True),
    ),
)
def native_embedding(
    xp: Any, weight: Any, indices: Any, padding_idx: int, scale_grad_by_freq: bool
) -> Any:
    """weight[indices] for checked arguments (``padding_idx`` -1: none)."""
    _check_bounds(xp, indices, weight.shape[0])
    return xp.take(weight, indices.reshape(-1), axis=0).reshape(*indices.shape, weight.shape[1])


@native_embedding.derivative
def _(ctx: Any, g: Any) -> tuple:
    from ..tensor import wrap

    (indices,) = ctx.saved
    a = ctx.attrs
    shape = ctx.meta[0][0]
    flat = indices._data.reshape(-1).astype(np.int64, copy=False)
    rows = g.reshape(-1, shape[1])
    dev = g._dev
    xp = dev.xp
    with dev.scope():
        factor = None
        if a["padding_idx"] >= 0:  # that row's entries get no gradient
            factor = (flat != a["padding_idx"]).astype(g.dtype.np)
        if a["scale_grad_by_freq"]:  # each entry over the number of times its index appears
            counts = xp.zeros(shape[0], dtype=g.dtype.np)
            _scatter_add_at(xp, counts, (flat,), xp.ones(flat.shape, dtype=g.dtype.np))
            inv = 1.0 / counts[flat]
            factor = inv if factor is None else factor * inv
    if factor is not None:
        rows = rows * wrap(factor[:, None], dev)
    return index_select_backward.call(rows, wrap(flat, dev), shape, 0), None


@composite(
    "embedding",
    examples=(
        Ex(C([[0, 2], [4, 2]]), S(5, 3)),
        Ex(C([1, 3, 0, 3]), S(4, 2), padding_idx=3),
        Ex(C([1, 3, 1, 0]), S(4, 2), padding_idx=-1, scale_grad_by_freq=True),
        Ex(C(2), S(3, 4)),
        Ex(C([0, 2, 2]), S(3, 4, low=-2, high=2, grad=False), max_norm=1.0),
    ),
)
def embedding(
    input: arg.Tensor,  # noqa: A002
    weight: arg.Tensor,
    padding_idx: arg.Int | None = None,
    max_norm: arg.Float | None = None,
    norm_type: arg.Float = 2.0,
    scale_grad_by_freq: arg.Bool = False,
    sparse: arg.Bool = False,
) -> Any:
    """The rows of ``weight`` at the integer ``input`` indices (shape ``input.shape + (dim,)``)."""
    n = weight.shape[0] if weight.ndim else 0
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ArgumentAssertionError("Padding_idx must be within num_embeddings")
        padding_idx = padding_idx + n if padding_idx < 0 else padding_idx
    if weight.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    if input.dtype not in (dt.int64, dt.int32):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {input.dtype.tensor_type} instead (while checking "
            "arguments for embedding)"
        )
    if sparse:
        raise NotImplementedError(
            "embedding(sparse=True): gradd has no sparse tensors, so it cannot make the sparse "
            "gradient; use sparse=False (a dense gradient of the same values)"
        )
    if max_norm is not None:
        if input.device != weight.device:  # the rows are renormalised before the lookup
            raise _mixed_devices(weight.device, input.device)
        _renorm_rows(weight, input, float(max_norm), float(norm_type))
    return native_embedding.call(
        weight, input, -1 if padding_idx is None else int(padding_idx), bool(scale_grad_by_freq)
    )
