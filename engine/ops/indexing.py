"""Gathering and scattering: gather, scatter, index_select, masked ops, take_along_dim.

Index tensors are inputs of these ops (saved for backward, never differentiated); ``dim`` sits
among them as PyTorch orders the parameters (``gather(input, dim, index)``), so the ops take
their leading parameters as inputs and wrap ``dim`` themselves.

Index values are checked on the CPU (PyTorch's "index 5 is out of bounds for dimension 0 with
size 3"). On a GPU they are not: reading them would be a device sync on every call, and
PyTorch's CUDA kernels do not raise either (a device-side assert).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import shapes
from ..op_examples import C, Ex, S
from ..op_table import composite, op

# PyTorch's names of gradd's dtypes in "expected ... but got mask with dtype <name>".
_C_TYPE = {"float32": "float", "float64": "double", "int64": "long int", "bool": "bool"}


def _np_dtype(x: Any) -> Any:
    """The NumPy dtype of an array or of a tensor (engine or remote)."""
    d = x.dtype
    return getattr(d, "np", d)


def _check_long(name: str, index: Any) -> None:
    if _np_dtype(index) != np.int64:
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index")


def _check_bounds(xp: Any, index: Any, size: int, dim: int) -> None:
    """PyTorch's error for an index outside ``[0, size)`` (on the CPU; see the module doc)."""
    if xp is not np or index.size == 0:
        return
    bad = (index < 0) | (index >= size)
    if bad.any():
        raise RuntimeError(
            f"index {index[bad][0]} is out of bounds for dimension {dim} with size {size}"
        )


def _key(xp: Any, index: Any, dim: int) -> tuple:
    """The advanced-indexing key of ``index``'s positions: ``index`` along ``dim``, and the
    position itself along every other dim (``out[i][j] = self[index[i][j]][j]`` for dim 0)."""
    nd = index.ndim
    key = []
    for d, n in enumerate(index.shape):
        if d == dim:
            key.append(index)
        else:
            shape = [1] * nd
            shape[d] = n
            key.append(xp.arange(n).reshape(shape))
    return tuple(key)


def _scatter_add_at(xp: Any, out: Any, key: tuple, values: Any) -> None:
    """``out[key] += values`` with repeats accumulating. CuPy's add.at takes only CUDA's
    atomicAdd dtypes: int64 adds as uint64 (the same bits, two's complement), bool as int32."""
    if out.dtype == np.int64:
        xp.add.at(out.view(np.uint64), key, values.astype(np.int64).view(np.uint64))
    elif out.dtype == np.bool_:
        acc = out.astype(np.int32)
        xp.add.at(acc, key, values.astype(np.int32))
        out[...] = acc != 0
    else:
        xp.add.at(out, key, values)


def _prefix(x: Any, shape: tuple) -> Any:
    """The leading ``shape`` block of ``x`` (PyTorch reads src only where index has entries)."""
    if x.shape == shape:
        return x
    return x[tuple(slice(0, n) for n in shape)]


# --- gather --------------------------------------------------------------------------------


def _same_ndim(a: tuple, index: tuple, what: str = "input") -> None:
    if len(index) != len(a) and (len(index) > 1 or len(a) > 1):  # 0-d and 1-d mix, as torch
        raise RuntimeError(f"Index tensor must have the same number of dimensions as {what} tensor")


def _numel(shape: tuple) -> int:
    n = 1
    for k in shape:
        n *= k
    return n


def _gather_shape(a: tuple, dim: int, index: tuple) -> tuple:
    """gather's checks (PyTorch's words); the result has the index's shape."""
    d = shapes.wrap_dim(dim, len(a))
    if _numel(index) == 0:  # as PyTorch: an empty index is not checked
        return index
    _same_ndim(a, index)
    for k, (n, m) in enumerate(zip(index, a)):
        if k != d and n > m:
            raise RuntimeError(
                f"Size does not match at dimension {k} expected index {list(index)} to be no "
                f"larger than self {list(a)} apart from dimension {d}"
            )
    return index


def _gather(xp: Any, self: Any, index: Any, dim: int) -> Any:
    if index.size == 0:
        return xp.empty(index.shape, dtype=self.dtype)
    if self.ndim == 0 or index.ndim == 0:  # scalars gather as one-element vectors
        return _gather(xp, self.reshape(-1), index.reshape(-1), 0).reshape(index.shape)
    _check_bounds(xp, index, self.shape[dim], dim)
    return self[_key(xp, index, dim)]


@op(
    internal=True,
    grad_fn="GatherBackward0",
    arity=2,
    dtype="same",
    saves=(1,),
    shape=lambda a, index, dim: index,
    method=False,
    function=False,
    examples=(Ex(S(3, 4), C([[0, 1, 2, 0], [2, 2, 1, 0]]), 0),),
)
def gather_dim(xp: Any, self: Any, index: Any, dim: int) -> Any:
    """gather with checked arguments and a wrapped ``dim`` (the node of ``gather``)."""
    return _gather(xp, self, index, dim)


def _zeros_for(ctx: Any, g: Any) -> Any:
    """Zeros of the node's first input's shape and dtype, on the gradient's device."""
    from ..factories import zeros

    shape, dtype = ctx.meta[0]
    return zeros(shape, dtype=dt.from_numpy(dtype), device=g.device)


@gather_dim.derivative
def _(ctx: Any, g: Any) -> tuple:
    (index,) = ctx.saved
    # PyTorch's gather_backward: zeros.scatter_add(dim, index, grad) (ScatterAddBackward0).
    return (scatter_add_dim.call(_zeros_for(ctx, g), index, g, ctx.attrs["dim"]), None)


@composite(
    "gather",
    method=True,
    examples=(
        Ex(S(3, 4), 0, C([[0, 1, 2, 0], [2, 2, 1, 0]])),
        Ex(S(3, 4), -1, C([[3, 3], [0, 1], [2, 2]])),
        Ex(S(2, 3, 2), 1, C([[[0, 1]], [[2, 2]]])),
        Ex(S(4), 0, C(2)),
    ),
)
def gather(self: arg.Tensor, dim: arg.Int, index: arg.Tensor, sparse_grad: arg.Bool = False) -> Any:
    """Values of self along ``dim`` at ``index`` (out[i][j] = self[index[i][j]][j] for dim 0)."""
    _gather_shape(self.shape, dim, index.shape)
    _check_long("gather", index)
    return gather_dim.call(self, index, shapes.wrap_dim(dim, self.ndim))


# --- scatter -------------------------------------------------------------------------------


def _scatter_shape(a: tuple, dim: int, index: tuple, src: tuple | None) -> tuple:
    """scatter's and scatter_add's shape checks (PyTorch's words); the result has self's."""
    d = shapes.wrap_dim(dim, len(a))
    if _numel(index) == 0:  # as PyTorch: an empty index is not checked (self is returned)
        return a
    _same_ndim(a, index, "self")
    if src is not None:
        _same_ndim(src, index, "src")
    too_big = any(k != d and n > m for k, (n, m) in enumerate(zip(index, a)))
    if src is not None and (too_big or any(n > m for n, m in zip(index, src))):
        raise RuntimeError(
            f"Expected index {list(index)} to be no larger than self {list(a)} apart from "
            f"dimension {d} and to be no larger size than src {list(src)}"
        )
    if too_big:
        raise RuntimeError(
            f"Expected index {list(index)} to be no larger than self {list(a)} apart from "
            f"dimension {d}"
        )
    return a


def _scatter_checks(name: str, self: Any, dim: int, index: Any, src: Any) -> int:
    """The shape and dtype checks of a scatter (on tensors of any kind); the wrapped dim."""
    _scatter_shape(self.shape, dim, index.shape, src.shape if arg.is_tensor(src) else None)
    _check_long(name, index)
    if arg.is_tensor(src) and src.dtype is not self.dtype:
        raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
    return shapes.wrap_dim(dim, self.ndim)


def _scatter_write(xp: Any, self: Any, index: Any, values: Any, dim: int, add: bool) -> Any:
    if index.size == 0:
        return self.copy()
    if self.ndim == 0 or index.ndim == 0:  # scalars scatter as one-element vectors
        vals = values.reshape(-1) if hasattr(values, "ndim") else values
        out = _scatter_write(xp, self.reshape(-1), index.reshape(-1), vals, 0, add)
        return out.reshape(self.shape)
    _check_bounds(xp, index, self.shape[dim], dim)
    out = self.copy()
    key = _key(xp, index, dim)
    if hasattr(values, "ndim"):
        values = _prefix(values, index.shape)
    else:
        values = xp.full(index.shape, values, dtype=self.dtype)
    if add:
        _scatter_add_at(xp, out, key, values)
    else:
        out[key] = values
    return out


def _scatter_name(a: Any, index: Any, src: Any, dim: int) -> str:
    return "ScatterBackward0" if src is not None else "ScatterBackward1"


_scatter_name.common = "ScatterBackward0"  # type: ignore[attr-defined]


@op(
    internal=True,
    grad_fn=_scatter_name,
    arity=3,
    dtype="same",
    saves=(1,),
    shape=lambda a, index, src, dim: a,
    method=False,
    function=False,
    examples=(
        Ex(S(3, 4), C([[0, 1, 2, 0], [2, 0, 1, 1]]), S(2, 4), 0),
        Ex(S(3, 4), C([[0, 1, 2, 0]]), 2.5, 0),
    ),
)
def scatter_dim(xp: Any, self: Any, index: Any, src: Any, dim: int) -> Any:
    """scatter with checked arguments and a wrapped ``dim`` (the node of ``scatter``)."""
    return _scatter_write(xp, self, index, src, dim, add=False)


@scatter_dim.derivative
def _(ctx: Any, g: Any) -> tuple:
    (index,) = ctx.saved
    dim = ctx.attrs["dim"]
    g_self = scatter_dim.call(g, index, 0.0, dim) if ctx.needs(0) else None
    g_src = gather_dim.call(g, index, dim) if ctx.needs(2) else None
    return g_self, None, g_src


@composite(
    "scatter",
    method=True,
    examples=(
        Ex(S(3, 4), 0, C([[0, 1, 2, 0], [2, 0, 1, 1]]), S(2, 4)),
        Ex(S(3, 4), 1, C([[3], [0], [1]]), S(3, 1)),
        Ex(S(3, 4), 0, C([[0, 1, 2, 0]]), 2.5),
        Ex(S(2, 3), -1, C([[0, 2], [1, 1]]), value=-1.0),
    ),
)
def scatter(
    self: arg.Tensor,
    dim: arg.Int,
    index: arg.Tensor,
    src: arg.TensorOrNumber | None = None,
    value: arg.Number | None = None,
) -> Any:
    """A copy of self with ``src`` (or the number ``value``) written along ``dim`` at index."""
    if (src is None) == (value is None):
        raise TypeError("scatter(): pass exactly one of src (a tensor) and value (a number)")
    src = value if src is None else src
    d = _scatter_checks("scatter", self, dim, index, src)
    return scatter_dim.call(self, index, src, d)


@op(
    internal=True,
    grad_fn="ScatterAddBackward0",
    arity=3,
    dtype="same",
    saves=(1,),
    shape=lambda a, index, src, dim: a,
    method=False,
    function=False,
    examples=(Ex(S(3, 4), C([[0, 1, 2, 0], [0, 0, 1, 1]]), S(2, 4), 0),),
)
def scatter_add_dim(xp: Any, self: Any, index: Any, src: Any, dim: int) -> Any:
    """scatter_add with checked arguments and a wrapped ``dim`` (the node of ``scatter_add``)."""
    return _scatter_write(xp, self, index, src, dim, add=True)


@scatter_add_dim.derivative
def _(ctx: Any, g: Any) -> tuple:
    (index,) = ctx.saved
    return g, None, (gather_dim.call(g, index, ctx.attrs["dim"]) if ctx.needs(2) else None)


@composite(
    "scatter_add",
    method=True,
    examples=(
        Ex(S(3, 4), 0, C([[0, 1, 2, 0], [0, 0, 1, 1]]), S(2, 4)),
        Ex(S(3, 4), 1, C([[3, 3], [0, 1], [1, 1]]), S(3, 2)),
        Ex(S(4), 0, C([1, 1, 3]), S(3)),
    ),
)
def scatter_add(self: arg.Tensor, dim: arg.Int, index: arg.Tensor, src: arg.Tensor) -> Any:
    """A copy of self with ``src`` added along ``dim`` at ``index`` (repeats accumulate)."""
    d = _scatter_checks("scatter_add", self, dim, index, src)
    return scatter_add_dim.call(self, index, src, d)


# --- index_select --------------------------------------------------------------------------


def _index_select_shape(a: tuple, index: tuple, dim: int) -> tuple:
    if len(index) > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    n = index[0] if index else 1
    if not a:  # a scalar self: one index, a scalar result
        if n != 1:
            raise RuntimeError(
                f"index_select(): Index to scalar can have only 1 value, got {n} value(s)"
            )
        return ()
    return a[:dim] + (n,) + a[dim + 1 :]


def _check_select_bounds(xp: Any, index: Any, size: int, dim: int) -> None:
    """index_select's range errors: PyTorch's CPU kernel for dim 1 words them differently."""
    if xp is not np or index.size == 0:
        return
    bad = (index < 0) | (index >= size)
    if bad.any():
        if dim != 1:
            raise IndexError("index out of range in self")
        raise RuntimeError(
            f"INDICES element is out of DATA bounds, id={index[bad][0]} axis_dim={size}"
        )


@op(
    internal=True,
    grad_fn="IndexSelectBackward0",
    arity=2,
    dtype="same",
    saves=(1,),
    shape=_index_select_shape,
    method=False,
    function=False,
    examples=(Ex(S(3, 4), C([0, 2, 2]), 1),),
)
def index_select_dim(xp: Any, self: Any, index: Any, dim: int) -> Any:
    """index_select with checked arguments and a wrapped ``dim``."""
    flat = index.reshape(-1)
    if self.ndim == 0:
        _check_select_bounds(xp, flat, 1, 0)
        return xp.take(self.reshape(1), flat).reshape(())
    _check_select_bounds(xp, flat, self.shape[dim], dim)
    return xp.take(self, flat, axis=dim)


@index_select_dim.derivative
def _(ctx: Any, g: Any) -> tuple:
    (index,) = ctx.saved
    return (index_select_backward.call(g, index, ctx.meta[0][0], ctx.attrs["dim"]), None)


@composite(
    "index_select",
    method=True,
    examples=(
        Ex(S(3, 4), 1, C([0, 2, 2])),
        Ex(S(3, 4), -2, C([2, 0])),
        Ex(S(2, 3, 2), 1, C(1)),
    ),
)
def index_select(self: arg.Tensor, dim: arg.Int, index: arg.Tensor) -> Any:
    """The slices of self along ``dim`` at the positions in the 1-D ``index``."""
    d = shapes.wrap_dim(dim, self.ndim)
    _index_select_shape(self.shape, index.shape, d)
    if index.dtype is not dt.int64:
        raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
    return index_select_dim.call(self, index, d)


@op(
    internal=True,
    grad_fn="IndexAddBackward0",
    arity=2,
    dtype="same",
    saves=(1,),
    shape=lambda g, index, shape, dim: shape,
    method=False,
    function=False,
    examples=(Ex(S(3, 3), C([0, 2, 2]), (3, 4), 1), Ex(S(2, 4), C([1, 1]), (3, 4), 0)),
)
def index_select_backward(xp: Any, self: Any, index: Any, shape: tuple, dim: int) -> Any:
    """The adjoint of index_select: PyTorch's ``zeros(shape).index_add_(dim, index, self)``."""
    out = xp.zeros(shape, dtype=self.dtype)
    if not shape:
        return out + self.sum()
    _scatter_add_at(xp, out, (slice(None),) * dim + (index.reshape(-1),), self)
    return out


@index_select_backward.derivative
def _(ctx: Any, g: Any) -> tuple:
    (index,) = ctx.saved
    return (index_select_dim.call(g, index, ctx.attrs["dim"]), None)


# --- masks ---------------------------------------------------------------------------------


def _check_bool_mask(mask: Any, name: str) -> None:
    d = _np_dtype(mask)
    if d != np.bool_:
        raise RuntimeError(
            f"{name} only supports boolean masks, but got mask with dtype {_C_TYPE[str(d)]}"
        )


def _masked_fill_shape(a: tuple, mask: tuple, value: tuple | None) -> tuple:
    if value:
        raise RuntimeError(
            "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
            f"{len(value)} dimension(s)."
        )
    return shapes.broadcast(mask, a)


def _masked_fill_dtype(self: Any, mask: Any, value: Any) -> dt.DType:
    _check_bool_mask(mask, "masked_fill_")
    return self.dtype


def _masked_fill_name(a: Any, mask: Any, value: Any) -> str:
    return "MaskedFillBackward0" if value is None else "MaskedFillBackward1"


_masked_fill_name.common = "MaskedFillBackward0"  # type: ignore[attr-defined]


@op(
    grad_fn=_masked_fill_name,
    arity=3,
    dtype=_masked_fill_dtype,
    saves=(1,),
    shape=_masked_fill_shape,
    examples=(
        Ex(S(3, 4), C([[True, False, True, False]] * 3), 1.5),
        Ex(S(3, 4), C([True, False, False, True]), -2),
        Ex(S(2, 3), C([[True], [False]]), S()),
        Ex(S(4), C([[True], [False]]), S(grad=False)),
    ),
)
def masked_fill(xp: Any, self: arg.Tensor, mask: arg.Tensor, value: arg.TensorOrNumber) -> Any:
    """self with ``value`` (a number or a 0-d tensor) where ``mask`` holds."""
    shape = _masked_fill_shape(self.shape, mask.shape, getattr(value, "shape", None))
    _masked_fill_dtype(self, mask, value)
    out = xp.where(mask, value, self)
    if out.shape != shape:  # a 0-d self and 0-d mask: where keeps the value's shape
        out = xp.broadcast_to(out, shape)
    return out.astype(self.dtype, copy=False)


@masked_fill.derivative
def _(ctx: Any, g: Any) -> tuple:
    from .shape_ops import where

    (mask,) = ctx.saved
    g_self = g.masked_fill(mask, 0) if ctx.needs(0) else None
    g_value = where.call(mask, g, 0.0).sum() if ctx.needs(2) else None
    return g_self, None, g_value


def _masked_shape(a: tuple, mask: Any) -> tuple:
    b = shapes.broadcast(mask.shape, a)
    n = 1
    for k in b:
        n *= k
    if mask.size == 0 or n == 0:
        return (0,)
    return (int(mask.sum()) * (n // mask.size),)  # a GPU mask's count is a sync, as in torch


@op(
    internal=True,
    grad_fn="MaskedSelectBackward0",
    shape=_masked_shape,
    method=False,
    function=False,
    examples=(
        Ex(S(3, 4), np.array([[True, False, True, False]] * 3)),
        Ex(S(3, 1), np.array([True, False, True, True])),
    ),
)
def masked_select_mask(xp: Any, self: Any, mask: Any) -> Any:
    """The elements of self (broadcast with ``mask``, a bool array) where ``mask`` holds."""
    mask = xp.asarray(mask)
    b = shapes.broadcast(mask.shape, self.shape)
    return xp.broadcast_to(self, b)[xp.broadcast_to(mask, b)]


@masked_select_mask.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (masked_select_backward.call(g, ctx.attrs["mask"], ctx.meta[0][0]),)


@op(
    internal=True,
    grad_fn="MaskedScatterBackward0",
    shape=lambda g, mask, shape: shapes.broadcast(mask.shape, shape),
    method=False,
    function=False,
    examples=(Ex(S(2), np.array([False, True, True]), (3,)),),
)
def masked_select_backward(xp: Any, self: Any, mask: Any, shape: tuple) -> Any:
    """The adjoint of masked_select: ``self`` written into zeros where ``mask`` holds."""
    mask = xp.asarray(mask)
    b = shapes.broadcast(mask.shape, shape)
    out = xp.zeros(b, dtype=self.dtype)
    out[xp.broadcast_to(mask, b)] = self
    return out


@masked_select_backward.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (masked_select_mask.call(g, ctx.attrs["mask"]),)


@composite(
    "masked_select",
    method=True,
    examples=(
        Ex(S(3, 4), C([[True, False, True, False], [False] * 4, [True] * 4])),
        Ex(S(3, 4), C([False, True, False, True])),
        Ex(S(4), C([[True], [False]])),
    ),
)
def masked_select(self: arg.Tensor, mask: arg.Tensor) -> Any:
    """The elements of self where ``mask`` holds (the two broadcast), as a 1-D tensor.

    Its length depends on the mask's values: on a GPU it waits for them, as PyTorch's."""
    if mask.dtype is not dt.bool_:
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    shapes.broadcast(mask.shape, self.shape)
    return masked_select_mask.call(self, mask._data)


# --- take_along_dim ------------------------------------------------------------------------


@composite(
    "take_along_dim",
    method=True,
    examples=(
        Ex(S(3, 4), C([[0, 3], [1, 1], [2, 0]]), 1),
        Ex(S(3, 4), C([[0, 3]]), -1),
        Ex(S(3, 4), C([5, 0, 11])),
    ),
)
def take_along_dim(self: arg.Tensor, indices: arg.Tensor, dim: arg.Int | None = None) -> Any:
    """self's values at ``indices`` along ``dim`` (flat positions when ``dim`` is None).

    Apart from ``dim``, self and indices broadcast."""
    if dim is None:
        return self.reshape(-1).gather(0, indices.reshape(-1))
    if indices.dtype is not dt.int64:
        raise RuntimeError(
            "torch.take_along_dim(): dtype of indices should be Long but got "
            f"{indices.dtype.torch_name}"
        )
    if self.ndim != indices.ndim:
        raise RuntimeError(
            "torch.take_along_dim(): input and indices should have the same number of "
            f"dimensions, but got {self.ndim} dimensions for input, and {indices.ndim} "
            "dimensions for indices"
        )
    d = shapes.wrap_dim(dim, self.ndim)
    if self.ndim == 0:
        raise IndexError(f"Dimension specified as {d} but tensor has no dimensions")
    sizes = list(self.shape)
    sizes[d] = indices.shape[d]
    indices = indices.expand(*shapes.broadcast(tuple(sizes), indices.shape))
    sizes = list(indices.shape)
    sizes[d] = self.shape[d]
    self = self.expand(*shapes.broadcast(tuple(sizes), self.shape))
    return self.gather(d, indices)
