"""Ops that move elements around: views, indexing, joining, selecting, dtype/device copies."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import layout, shapes
from ..node import _TYPE_NAMES
from ..op_examples import C, Ex, S
from ..op_table import composite, op


def _sizes(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _reshape_norm(self: arg.Tensor, *shape: arg.Sizes) -> dict:
    return {"shape": shapes.reshape(self.shape, _sizes(shape))}


def _check_viewable(self: arg.Tensor, *shape: arg.Sizes) -> dict:
    attrs = _reshape_norm(self, *shape)
    layout.viewed(tuple(self.shape), self._layout, attrs["shape"])  # raises before anything runs
    return attrs


def _viewed(a: tuple, lay: Any, /, shape: tuple) -> Any:
    return layout.viewed(a, lay, shape)


@op(
    view=True,
    grad_fn="ViewBackward0",
    shape=lambda a, shape: shape,
    layout=_viewed,
    normalize=_check_viewable,
    examples=(Ex(S(2, 3), 3, 2), Ex(S(2, 3), (-1,)), Ex(S(6), 2, -1)),
)
def view(xp: Any, self: Any, shape: Any) -> Any:
    """The same elements in a new shape (one dim may be -1), sharing storage.

    PyTorch's error when the strides allow no such view."""
    return self.reshape(shape)


@view.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.reshape(*ctx.meta[0][0]),)


def _reshaping(name: str, grad_fn: str, is_view: bool, doc: str) -> Any:
    """An internal op that is ``view`` under another of PyTorch's names (``reshape`` records
    them): the same forward, layout and backward."""

    def forward(xp: Any, self: Any, shape: tuple) -> Any:
        return self.reshape(shape)

    forward.__doc__ = doc
    d = op(
        name,
        view=is_view,
        internal=True,
        grad_fn=grad_fn,
        shape=lambda a, shape: shape,
        layout=_viewed,
        method=False,
        function=False,
        examples=(Ex(S(2, 3), (3, 2)),),
    )(forward)
    d.backward = view.backward
    return d


reshape_alias = _reshaping(
    "reshape_alias",
    "ReshapeAliasBackward0",
    True,
    "``reshape`` of a strided tensor whose strides allow a view (PyTorch's _reshape_alias).",
)
unsafe_view = _reshaping(
    "unsafe_view",
    "UnsafeViewBackward0",
    False,  # in-place ops on it are plain ones, as on PyTorch's
    "PyTorch's _unsafe_view: a view of a tensor nothing else sees (a fresh copy, a product).",
)


@composite(
    "reshape",
    method=True,
    examples=(
        Ex(S(2, 3), 3, 2),
        Ex(S(2, 3), (-1,)),
        Ex(S(6), 2, -1),
    ),
)
def reshape(self: arg.Tensor, *shape: arg.Sizes) -> Any:
    """The same elements in a new shape (one dim may be -1): a view, or a copy if strides forbid.

    Recorded as PyTorch records it: ViewBackward0, ReshapeAliasBackward0 (a strided view), or
    CloneBackward0 -> UnsafeViewBackward0."""
    new = shapes.reshape(self.shape, _sizes(shape))
    if self.is_contiguous():
        return view.call(self, new)
    lay = self._layout
    if layout.view_strides(tuple(self.shape), lay[0], new) is not None:
        return reshape_alias.call(self, new)
    return unsafe_view.call(_record_contiguous(self), new)


def _flatten_norm(self: Any, start_dim: int = 0, end_dim: int = -1) -> dict:
    s, e = shapes.wrap_dim(start_dim, self.ndim), shapes.wrap_dim(end_dim, self.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    n = 1
    for k in self.shape[s : e + 1]:
        n *= k
    return {"shape": self.shape[:s] + (n,) + self.shape[e + 1 :]} if self.ndim else {"shape": (1,)}


@composite("flatten", method=True, examples=(Ex(S(2, 3, 4)), Ex(S(2, 3, 4), 1)))
def flatten(self: arg.Tensor, start_dim: arg.Int = 0, end_dim: arg.Int = -1) -> Any:
    """Merge dims start_dim..end_dim into one."""
    shape = _flatten_norm(self, start_dim, end_dim)["shape"]
    if self.ndim and shapes.wrap_dim(start_dim, self.ndim) == shapes.wrap_dim(end_dim, self.ndim):
        return self  # as torch: nothing to merge, the tensor itself (no ViewBackward0)
    return self.reshape(*shape)


def _transpose_norm(self: arg.Tensor, dim0: arg.Int, dim1: arg.Int) -> dict:
    n = self.ndim
    return {"dim0": shapes.wrap_dim(dim0, n), "dim1": shapes.wrap_dim(dim1, n)}


def _swap(a: tuple, dim0: int, dim1: int) -> tuple:
    s = list(a)
    if s:
        s[dim0], s[dim1] = s[dim1], s[dim0]
    return tuple(s)


@op(
    view=True,
    grad_fn="TransposeBackward0",
    layout=lambda a, lay, /, dim0, dim1: layout.permuted(a, lay, _swap(range(len(a)), dim0, dim1)),
    shape=_swap,
    normalize=_transpose_norm,
    examples=(Ex(S(2, 3), 0, 1), Ex(S(2, 3, 4), -1, 0)),
)
def transpose(xp: Any, self: Any, dim0: int, dim1: int) -> Any:
    """Swap two dimensions."""
    return xp.swapaxes(self, dim0, dim1)


@transpose.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.transpose(ctx.attrs["dim0"], ctx.attrs["dim1"]),)


def _t_shape(a: tuple) -> tuple:
    if len(a) > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {len(a)}D")
    return a[::-1]


@op(
    view=True,
    grad_fn="TBackward0",
    shape=_t_shape,
    layout=lambda a, lay, /: layout.permuted(a, lay, range(len(a) - 1, -1, -1)),
    examples=(Ex(S(2, 3)), Ex(S(3))),
)
def t(xp: Any, self: arg.Tensor) -> Any:
    """Transpose a matrix (vectors are returned as they are)."""
    _t_shape(self.shape)
    return self.T


@t.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.t(),)


def _permute_norm(self: arg.Tensor, *dims: arg.Sizes) -> dict:
    dims = tuple(shapes.wrap_dim(d, self.ndim) for d in _sizes(dims))
    shapes.permute(self.shape, dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return {"dims": dims}


@op(
    view=True,
    grad_fn="PermuteBackward0",
    layout=lambda a, lay, /, dims: layout.permuted(a, lay, dims),
    shape=lambda a, dims: shapes.permute(a, dims),
    normalize=_permute_norm,
    examples=(Ex(S(2, 3, 4), 2, 0, 1), Ex(S(2, 3), (1, 0))),
)
def permute(xp: Any, self: Any, dims: Any) -> Any:
    """Reorder dimensions."""
    return xp.transpose(self, dims)


@permute.derivative
def _(ctx: Any, g: Any) -> tuple:
    dims = ctx.attrs["dims"]
    inverse = [0] * len(dims)
    for i, d in enumerate(dims):
        inverse[d] = i
    return (g.permute(*inverse),)


def _squeeze_norm(self: arg.Tensor, dim: arg.Dims = None) -> dict:
    if dim is None:
        return {"dim": None}
    return {"dim": shapes.dims_arg(dim, self.ndim)}


def _squeeze_shape(a: tuple, dim: Any = None) -> tuple:
    return tuple(n for i, n in enumerate(a) if not (n == 1 and (dim is None or i in dim)))


def _squeeze_name(a: Any, dim: Any = None) -> str:
    return "SqueezeBackward0" if dim is None else "SqueezeBackward1"


_squeeze_name.common = "SqueezeBackward0"  # type: ignore[attr-defined]


@op(
    view=True,
    grad_fn=_squeeze_name,
    layout=lambda a, lay, /, dim=None: layout.squeezed(
        a, lay, [i for i, n in enumerate(a) if n == 1 and (dim is None or i in dim)]
    ),
    shape=_squeeze_shape,
    normalize=_squeeze_norm,
    examples=(Ex(S(2, 1, 3, 1)), Ex(S(2, 1, 3), 1), Ex(S(2, 3), 0)),
)
def squeeze(xp: Any, self: Any, dim: Any = None) -> Any:
    """Drop dims of size one (all, or those in ``dim``)."""
    return self.reshape(_squeeze_shape(self.shape, dim))


@squeeze.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.reshape(*ctx.meta[0][0]),)


def _unsqueeze_norm(self: arg.Tensor, dim: arg.Int) -> dict:
    return {"dim": shapes.wrap_dim(dim, self.ndim + 1)}


@op(
    view=True,
    grad_fn="UnsqueezeBackward0",
    layout=lambda a, lay, /, dim: layout.unsqueezed(a, lay, dim),
    shape=lambda a, dim: a[:dim] + (1,) + a[dim:],
    normalize=_unsqueeze_norm,
    examples=(Ex(S(2, 3), 1), Ex(S(3), -1), Ex(S(3), 0)),
)
def unsqueeze(xp: Any, self: Any, dim: int) -> Any:
    """Insert a dim of size one at ``dim``."""
    return xp.expand_dims(self, dim)


@unsqueeze.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.squeeze(ctx.attrs["dim"]),)


def _expand_norm(self: arg.Tensor, *sizes: arg.Sizes) -> dict:
    tensor_type = _TYPE_NAMES.get(self.dtype.name, "BoolTensor")
    return {"sizes": shapes.expand(self.shape, _sizes(sizes), tensor_type)}


@op(
    view=True,
    grad_fn="ExpandBackward0",
    layout=lambda a, lay, /, sizes: layout.expanded(a, lay, sizes),
    shape=lambda a, sizes: sizes,
    normalize=_expand_norm,
    examples=(Ex(S(3, 1), 3, 4), Ex(S(3), 2, 3), Ex(S(1), (4,))),
)
def expand(xp: Any, self: Any, sizes: Any) -> Any:
    """A broadcast view with ``sizes`` (-1 keeps a dim)."""
    if self.shape == sizes:
        return self
    n = 1
    for k in sizes:
        n *= k
    if n <= 65536:
        # Small results: a broadcasting copy costs a tenth of NumPy's broadcast_to view.
        out = xp.empty(sizes, self.dtype)
        out[...] = self
        return out
    return xp.broadcast_to(self, sizes)


@expand.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.sum_to_size(*ctx.meta[0][0]),)


@op(grad_fn="CloneBackward0", shape=shapes.same, examples=(Ex(S(2, 2)),))
def clone(xp: Any, self: arg.Tensor) -> Any:
    """A copy that does not share storage."""
    return self.copy()


@clone.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g,)


@op(grad_fn="CloneBackward0", shape=shapes.same, layout=None, examples=(Ex(S(2, 2)),))
def contiguous(xp: Any, self: arg.Tensor) -> Any:
    """A row-major copy (``Tensor.contiguous`` calls it only for a non-contiguous tensor)."""
    return self.copy(order="C")


contiguous.backward = clone.backward
_record_contiguous = contiguous.call


def _contiguous_call(self: arg.Tensor) -> Any:
    if self.is_contiguous():  # by the layout gradd tracks, the same on a client and a server
        return self  # as torch: an already contiguous tensor is returned itself
    return _record_contiguous(self)


contiguous.call = _contiguous_call


def _to_dtype_norm(self: arg.Tensor, dtype: arg.DTypeArg) -> dict:
    return {"dtype": dt.as_dtype(dtype)}


@op(
    layout="pointwise",
    grad_fn="ToCopyBackward0",
    shape=lambda a, dtype: a,
    normalize=_to_dtype_norm,
    dtype=lambda self, dtype: dtype,
    method=False,
    function=True,
    examples=(Ex(S(3), dt.float32),),
)
def to_dtype(xp: Any, self: Any, dtype: Any) -> Any:
    """A copy converted to ``dtype``."""
    return self.astype(dtype.np)


@to_dtype.derivative
def _(ctx: Any, g: Any) -> tuple:
    from ..dtypes import from_numpy

    return (g.type_as_dtype(from_numpy(ctx.meta[0][1])),)


@op(
    layout="pointwise",
    grad_fn="ToCopyBackward0",
    shape=lambda a, device: a,
    method=False,
    function=True,
    examples=(Ex(S(2, 3), "cpu"),),
)
def to_device(xp: Any, self: Any, device: str) -> Any:
    """A copy on another device ("cpu" or "cuda")."""
    raise NotImplementedError  # handled in the caller below: it needs both array modules


def _to_device_call(self: arg.Tensor, device: arg.Device) -> Any:
    from ..device import get_device, to_host
    from ..grad_mode import _mode
    from ..op_table import make_node
    from ..tensor import wrap

    target = get_device(device)
    if target.type == "cpu":
        data = to_host(self._data)
    else:
        with target.scope():  # an upload, or a copy between GPUs
            data = target.xp.asarray(self._data)
    if _mode.enabled and self.requires_grad:
        node = make_node(to_device, (self,), {"device": str(self._dev)}, data, target)
        out = wrap(data, target, True, node)
    else:
        out = wrap(data, target)
    out._layout = layout.result_layout(to_device, (self,), {}, data.shape)
    return out


to_device.call = _to_device_call


@to_device.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.to(ctx.attrs["device"]),)


# --- indexing ------------------------------------------------------------------------------


def _is_advanced(k: Any) -> bool:
    return hasattr(k, "shape") or isinstance(k, (list, tuple))


def _index_norm(self: Any, key: Any, kind: str = "index") -> dict:
    return {"key": key, "kind": kind}


def _index_name(a: Any, key: Any, kind: str) -> str:
    return {"select": "SelectBackward0", "slice": "SliceBackward0"}.get(kind, "IndexBackward0")


_index_name.common = "IndexBackward0"  # type: ignore[attr-defined]


def _index_shape(a: tuple, key: Any, kind: str = "index") -> tuple:
    return np.empty(a, dtype=np.bool_)[key].shape  # zero-byte probe: NumPy's own index rules


@op(
    view=lambda key, kind: kind != "index",
    internal=True,
    grad_fn=_index_name,
    layout=lambda a, lay, /, key, kind: None if kind == "index" else layout.indexed(a, lay, key),
    shape=_index_shape,
    normalize=_index_norm,
    saves=(),
    method=False,
    function=False,
    examples=(
        Ex(S(4, 3), (1,), "select"),
        Ex(S(5), (slice(1, 4),), "slice"),
        Ex(S(4, 2), ([0, 2, 2],), "index"),
    ),
)
def index(xp: Any, self: Any, key: Any, kind: str = "index") -> Any:
    """self[key] for a normalised NumPy key (one node of a ``t[...]`` chain)."""
    try:
        # A trailing ``...`` keeps a basic index a view even when it selects one element
        # (NumPy would return a copied scalar), so in-place ops on ``t[0]`` reach ``t``.
        out = self[_device_key(xp, key)] if kind == "index" else self[(*key, Ellipsis)]
    except IndexError as e:
        raise IndexError(str(e).replace("axis", "dimension")) from None
    return xp.asarray(out) if not hasattr(out, "shape") or out.ndim == 0 else out


@index.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (index_backward.call(g, ctx.meta[0][0], ctx.attrs["key"]),)


def _key_kind(key: tuple) -> str:
    """What a normalised key does, as ``index``'s ``kind``: "index", "select" or "slice"."""
    if any(_is_advanced(k) for k in key):
        return "index"
    return "select" if isinstance(key[-1], int) else "slice"


_INDEX_BACKWARD_NAMES = {
    "index": "IndexPutImplBackward0",
    "select": "SelectBackwardBackward0",
    "slice": "SliceBackwardBackward0",
}


def _index_backward_name(g: Any, shape: tuple, key: Any) -> str:
    return _INDEX_BACKWARD_NAMES[_key_kind(key)]


_index_backward_name.common = "IndexPutImplBackward0"  # type: ignore[attr-defined]


@op(
    internal=True,
    grad_fn=_index_backward_name,
    shape=lambda g, shape, key: shape,
    method=False,
    function=False,
    examples=(Ex(S(2), (4,), ([1, 1],)), Ex(S(2, 3), (4, 3), (slice(1, 3),))),
)
def index_backward(xp: Any, self: Any, shape: tuple, key: Any) -> Any:
    """The adjoint of indexing: scatter-add ``self`` into zeros of ``shape`` at ``key``."""
    out = xp.zeros(shape, dtype=self.dtype)
    if any(_is_advanced(k) for k in key):
        # Repeated indices accumulate, as PyTorch's index_put: NumPy's add.at, or CuPy's (an
        # atomicAdd scatter: gradients are floating point, which it takes).
        xp.add.at(out, _device_key(xp, key), self)
    else:
        out[key] = self
    return out


@index_backward.derivative
def _(ctx: Any, g: Any) -> tuple:
    key = ctx.attrs["key"]
    return (index.call(g, key, _key_kind(key)),)


def _device_key(xp: Any, key: tuple) -> tuple:
    """The key with its host index arrays (from lists) moved to the device, once, explicitly."""
    if xp is np:
        return key
    return tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in key)


def _key_tuple(key: Any) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _to_numpy_index(k: Any) -> Any:
    from ..tensor import Tensor

    if isinstance(k, Tensor):
        if k._data.dtype.kind not in "biu":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        return k._data
    if isinstance(k, list):
        return np.asarray(k)
    if isinstance(k, bool) or k is None or k is Ellipsis or isinstance(k, (int, slice)):
        return k
    if hasattr(k, "__index__"):
        return int(k)
    raise IndexError(
        "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
        f"valid indices (got {type(k).__name__})"
    )


@op(
    view=True,
    internal=True,
    grad_fn="AliasBackward0",
    layout=lambda a, lay, /: lay,
    shape=shapes.same,
    method=False,
    function=False,
    examples=(Ex(S(2, 3)),),
)
def alias(xp: Any, self: Any) -> Any:
    """A new tensor viewing the same data (``t[...]``, ``t[:, :]``), as PyTorch's alias."""
    return self.view()


@alias.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g,)


def _spans(k: slice, size: int) -> bool:
    """Whether torch skips this slice inside a tuple index: start 0, step 1, stop at the end."""
    return k.start in (None, 0) and k.step in (None, 1) and (k.stop is None or k.stop >= size)


@composite(
    "getitem",
    method="__getitem__",
    examples=(
        Ex(S(4, 3), 1),
        Ex(S(4, 3), (slice(1, 3), 0)),
        Ex(S(4, 3), (None, Ellipsis, 1)),
        Ex(S(5), C([0, 3, 3])),
        Ex(S(3, 2), C([True, False, True])),
    ),
)
def getitem(self: arg.Tensor, key: arg.Anything) -> Any:
    """``self[key]``: basic indices become a chain of Select/Slice/Unsqueeze nodes, as PyTorch
    records them; any tensor or list index makes the whole key one IndexBackward0 node."""
    single_slice = isinstance(key, slice)  # torch records t[a:b] even when it spans the dim
    key = tuple(_to_numpy_index(k) for k in _key_tuple(key))
    if any(_is_advanced(k) for k in key):
        return index.call(self, key, "index")
    out = self
    dim = 0
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > self.ndim:
        raise IndexError(f"too many indices for tensor of dimension {self.ndim}")
    for k in key:
        if k is Ellipsis:
            dim += self.ndim - n_real
        elif k is None:
            out = out.unsqueeze(dim)
            dim += 1
        elif isinstance(k, slice):
            size = out.shape[dim]
            if single_slice or not _spans(k, size):
                out = index.call(out, (slice(None),) * dim + (k,), "slice")
            dim += 1
        else:
            size = out.shape[dim]
            if not -size <= k < size:
                raise IndexError(f"index {k} is out of bounds for dimension {dim} with size {size}")
            out = index.call(out, (slice(None),) * dim + (k,), "select")
    if out is self:  # only spanning slices and ellipses: still a new tensor, as torch's alias
        out = alias.call(self)
    return out


# --- joining and selecting -------------------------------------------------------------------


def _list_call(opdef: Any, shape_rule: Any) -> Any:
    from ..op_table import record

    def call(tensors: arg.TensorList, dim: arg.Int = 0) -> Any:
        tensors = tuple(tensors)
        if not tensors:
            shape_rule([], 0)
        nd = tensors[0].ndim + (1 if opdef.name == "stack" else 0)
        d = shapes.wrap_dim(dim, nd)
        shape_rule([t.shape for t in tensors], d)
        return record(opdef, tensors, {"dim": d})

    call.__name__ = opdef.name
    call.__doc__ = opdef.doc
    return call


@op(
    grad_fn="CatBackward0",
    arity=-1,
    method=False,
    shape=lambda *s, dim: shapes.cat(s, dim),
    examples=(Ex([S(2, 3), S(1, 3)]), Ex([S(2, 1), S(2, 2)], 1)),
)
def cat(xp: Any, *tensors: Any, dim: int = 0) -> Any:
    """Join tensors along an existing dim."""
    return xp.concatenate(tensors, axis=dim)


cat.call = _list_call(cat, shapes.cat)


@cat.derivative
def _(ctx: Any, g: Any) -> tuple:
    dim = ctx.attrs["dim"]
    out, start = [], 0
    for shape, _ in ctx.meta:
        n = shape[dim]
        out.append(index.call(g, (slice(None),) * dim + (slice(start, start + n),), "slice"))
        start += n
    return tuple(out)


@op(
    grad_fn="StackBackward0",
    arity=-1,
    method=False,
    shape=lambda *s, dim: shapes.stack(s, dim),
    examples=(Ex([S(2, 3), S(2, 3)]), Ex([S(2), S(2)], 1)),
)
def stack(xp: Any, *tensors: Any, dim: int = 0) -> Any:
    """Join tensors along a new dim."""
    return xp.stack(tensors, axis=dim)


stack.call = _list_call(stack, shapes.stack)


@stack.derivative
def _(ctx: Any, g: Any) -> tuple:
    dim = ctx.attrs["dim"]
    return tuple(index.call(g, (slice(None),) * dim + (i,), "select") for i in range(len(ctx.meta)))


def _where_dtype(condition: Any, self: Any, other: Any) -> Any:
    return dt.result_type(self, other)


@op(
    layout="pointwise",
    grad_fn="WhereBackward0",
    arity=3,
    method=False,
    dtype=_where_dtype,
    saves=(0,),
    shape=lambda c, a, b: shapes.broadcast(c, a, b),
    examples=(Ex(C([True, False, True]), S(3), S(3)), Ex(C([[True], [False]]), S(2, 3), 0.5)),
)
def where(
    xp: Any,
    condition: arg.Tensor,
    input: arg.TensorOrNumber,  # noqa: A002
    other: arg.TensorOrNumber,
) -> Any:
    """Pick ``input`` where ``condition`` holds, else ``other``."""
    if getattr(condition, "dtype", None) is None or condition.dtype.kind != "b":
        raise RuntimeError("where expected condition to be a boolean tensor")
    return xp.where(condition, input, other)


@where.derivative
def _(ctx: Any, g: Any) -> tuple:
    (cond,) = ctx.saved
    zero = g * 0
    return (
        None,
        where.call(cond, g, zero) if ctx.needs(1) else None,
        where.call(cond, zero, g) if ctx.needs(2) else None,
    )
