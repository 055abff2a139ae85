"""Writing through an index: ``t[key] = v`` (``__setitem__``), ``index_put_`` and ``index_put``.

As PyTorch records them: a basic key (ints, slices, ``...``, None) writes a ``copy_`` into the
view ``t[key]`` (so the base records CopySlices); a key with tensor, list or boolean-mask
indices is one ``index_put_`` (IndexPutBackward0). Keys are normalised as ``getitem``'s are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import layout
from ..device import to_host
from ..op_examples import C, Ex, S
from ..op_table import composite, op
from .indexing import _scatter_add_at
from .shape_ops import _device_key, _is_advanced, _key_tuple, _to_numpy_index, getitem, index


def _host_key(key: tuple) -> tuple:
    """The key for a shape probe on the host: a device index array's values do not change
    the result's shape (only its shape is kept); a mask's do, so a mask is read, explicitly
    (PyTorch's CUDA index_put with a mask synchronises too)."""
    out = []
    for k in key:
        if hasattr(k, "shape") and not isinstance(k, np.ndarray):
            k = to_host(k) if k.dtype == np.bool_ else np.zeros(k.shape, dtype=np.intp)
        out.append(k)
    return tuple(out)


def _target_shape(a: tuple, key: tuple) -> tuple:
    try:
        return np.empty(a, dtype=np.bool_)[_host_key(key)].shape
    except IndexError as e:
        raise IndexError(str(e).replace("axis", "dimension")) from None


def _put_shape(a: tuple, values: tuple | None, key: tuple, accumulate: bool) -> tuple:
    """The checks of an index put (PyTorch's words); the result has self's shape."""
    target = _target_shape(a, key)
    if values is not None:
        try:
            fits = np.broadcast_shapes(values, target) == tuple(target)
        except ValueError:
            fits = False
        if not fits:
            raise RuntimeError(
                f"shape mismatch: value tensor of shape {list(values)} cannot be broadcast to "
                f"indexing result of shape {list(target)}"
            )
    return a


def _put(xp: Any, self: Any, values: Any, key: tuple, accumulate: bool) -> Any:
    out = self.copy()
    k = _device_key(xp, key)
    try:
        if accumulate:
            target = out[k].shape
            vals = xp.broadcast_to(xp.asarray(values, dtype=out.dtype), target)
            if any(getattr(i, "dtype", None) == np.bool_ for i in k):
                k = tuple(i.nonzero()[0] if getattr(i, "dtype", None) == np.bool_ else i for i in k)
            _scatter_add_at(xp, out, k, vals)
        else:
            out[k] = values
    except IndexError as e:
        raise IndexError(str(e).replace("axis", "dimension")) from None
    return out


@op(
    internal=True,
    grad_fn="IndexPutBackward0",
    arity=2,
    dtype="same",
    shape=_put_shape,
    # PyTorch's out-of-place index_put clones self first (preserve_format: a dense layout is
    # kept, as a leaf's grad keeps it), then writes.
    layout=lambda a, lay, /, **_: layout.grad_layout(a, lay),
    method=False,
    function=False,
    examples=(
        Ex(S(4, 3), S(3), ([0, 2],), False),
        Ex(S(4, 3), S(4, 1), (slice(None), [0, 2]), True),
        Ex(S(4), 2.5, ([1, 1],), False),
    ),
)
def index_put_key(xp: Any, self: Any, values: Any, key: tuple, accumulate: bool) -> Any:
    """``self`` with ``values`` written (or, with ``accumulate``, added) at a normalised key."""
    return _put(xp, self, values, key, accumulate)


@op(
    "index_put_key_",
    internal=True,
    inplace=True,
    grad_fn="IndexPutBackward0",
    arity=2,
    dtype="same",
    shape=_put_shape,
    method=False,
    function=False,
    examples=(Ex(S(4, 3), S(3), ([0, 2],), False), Ex(S(5), S(2), ([1, 1],), True)),
)
def index_put_key_(xp: Any, self: Any, values: Any, key: tuple, accumulate: bool) -> Any:
    """In-place ``index_put_key``."""
    return _put(xp, self, values, key, accumulate)


def _put_backward(ctx: Any, g: Any) -> tuple:
    key, accumulate = ctx.attrs["key"], ctx.attrs["accumulate"]
    g_self = g if accumulate else index_put_key.call(g, 0.0, key, False)
    g_values = index.call(g, key, "index") if ctx.needs(1) else None
    return (g_self, g_values)


index_put_key.backward = _put_backward
index_put_key_.backward = _put_backward


def _indices_key(indices: Any) -> tuple:
    if not isinstance(indices, (tuple, list)):
        raise TypeError(
            "index_put_(): argument 'indices' must be tuple of Tensors, not "
            f"{type(indices).__name__}"
        )
    key = []
    for i in indices:
        if i is not None and not arg.is_tensor(i):
            raise TypeError("index_put_(): argument 'indices' must be tuple of Tensors")
        key.append(slice(None) if i is None else _to_numpy_index(i))
    return tuple(key)


def _check_same_dtype(self: Any, values: Any) -> None:
    if values.dtype is not self.dtype:
        raise RuntimeError(
            "Index put requires the source and destination dtypes match, got "
            f"{self.dtype.torch_name} for the destination and {values.dtype.torch_name} for the "
            "source."
        )


@composite(
    "index_put_",
    method=True,
    function=False,
    examples=(
        Ex(S(4, 3), (C([0, 2]),), S(3)),
        Ex(S(5), (C([1, 1, 3]),), S(3), True),
    ),
)
def index_put_(
    self: arg.Tensor, indices: arg.Anything, values: arg.Tensor, accumulate: arg.Bool = False
) -> Any:
    """Write (or add) ``values`` at ``indices`` (a tuple of index tensors), in place."""
    _check_same_dtype(self, values)
    return index_put_key_.call(self, values, _indices_key(indices), accumulate)


@composite(
    "index_put",
    method=True,
    examples=(Ex(S(4, 3), (C([0, 2]),), S(3)), Ex(S(5), (C([1, 1, 3]),), S(3), True)),
)
def index_put(
    self: arg.Tensor, indices: arg.Anything, values: arg.Tensor, accumulate: arg.Bool = False
) -> Any:
    """``self`` with ``values`` written (or added) at ``indices``."""
    _check_same_dtype(self, values)
    return index_put_key.call(self, values, _indices_key(indices), accumulate)


@composite(
    "setitem",
    method="__setitem__",
    function=False,
    examples=(
        Ex(S(4, 3), 1, S(3)),
        Ex(S(4, 3), (slice(1, 3), 0), 2.5),
        Ex(S(5), C([0, 3]), S(2)),
        Ex(S(3, 2), C([True, False, True]), S(2)),
        Ex(S(4, 3), (slice(None), C([0, 2])), S(4, 1)),
    ),
)
def setitem(self: arg.Tensor, key: arg.Anything, value: arg.TensorOrNumber) -> None:
    """``self[key] = value``: a copy into the view ``self[key]`` (CopySlices on the base) for a
    basic key, an ``index_put_`` (IndexPutBackward0) for one with tensor or list indices."""
    nkey = tuple(_to_numpy_index(k) for k in _key_tuple(key))
    if any(_is_advanced(k) for k in nkey):
        if arg.is_tensor(value):
            _check_same_dtype(self, value)  # PyTorch converts only a basic index's value
        index_put_key_.call(self, value, nkey, False)
    else:
        target = getitem.call(self, key)
        if arg.is_tensor(value):
            _check_expands(value.shape, target.shape, self.dtype)
        target.copy_(value)
    return self


def _check_expands(value: tuple, target: tuple, dtype: dt.DType) -> None:
    """PyTorch's error when ``value`` cannot be expanded to the indexed part's shape."""
    from .. import shapes

    shapes.expand(tuple(value), tuple(target), dtype.tensor_type.removeprefix("torch."))
