"""Max pooling: max_pool2d (and its indices), max_pool1d.

One op takes each window's maximum, keeping where it was; one op adds the gradient back at
those places (MaxPool2DWithIndicesBackwardBackward0), whose own gradient picks at them again:
every order of derivative is recorded, with PyTorch's names.
"""

from __future__ import annotations

import math
from typing import Any

from .. import arg_kinds as arg
from ..op_examples import C, Ex, S
from ..op_table import composite, op
from ..pool_args import max_pool1d_args, max_pool_args, pool_out, pool_scratch, pool_shape
from ..sliding_windows import (
    by_window,
    pad_for,
    planes_first,
    planes_last,
    window_parts,
    window_views,
)
from .creation import zeros_like

Dims = tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# max_pool2d


def _max_and_indices(
    xp: Any, x: Any, kernel_size: Dims, stride: Dims, padding: Dims, dilation: Dims, ceil_mode: bool
) -> tuple[Any, Any]:
    """Each window's maximum and its flat index into (H, W), PyTorch's way: the first maximum,
    and a NaN wins (every later NaN too, as its kernel's ``val > max || isnan(val)``)."""
    size = x.shape[-2:]
    out = pool_out(size, kernel_size, stride, padding, dilation, ceil_mode)
    end = pad_for(size, out, kernel_size, stride, padding, dilation)
    low = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
    xt = planes_last(xp, x, padding, end, low)  # (H, W, planes, 1)
    rows = xp.arange(out[0]) * stride[0] - padding[0]
    cols = xp.arange(out[1]) * stride[1] - padding[1]
    base = (rows[:, None] * size[1] + cols[None, :])[:, :, None, None]  # each window's corner
    if by_window(kernel_size, out):
        best, index = _max_by_window(xp, xt, base, size, kernel_size, out, stride, dilation)
        lead = x.shape[:-2]
        return planes_first(xp, best, lead), planes_first(xp, index, lead)
    best = index = None
    for (i, j), part in window_parts(xt, 0, kernel_size, out, stride, dilation):
        at = base + (i * dilation[0] * size[1] + j * dilation[1])
        if best is None:
            best, index = part.copy(), xp.broadcast_to(at, part.shape).copy()
            continue
        # Arithmetic, not where(): a select on a random mask mispredicts a branch an element.
        take = part > best
        if x.dtype.kind == "f":
            take |= xp.isnan(part)
        index += take * (at - index)
        best = xp.maximum(best, part)  # NaN propagates, as the taken NaN above
    lead = x.shape[:-2]
    return planes_first(xp, best, lead), planes_first(xp, index.astype(xp.int64), lead)


def _max_by_window(xp: Any, xt: Any, base: Any, size: Dims, kernel: Dims, out: Dims,
                   stride: Dims, dilation: Dims) -> tuple[Any, Any]:  # fmt: skip
    """``_max_and_indices`` one window at a time (fewer windows than kernel offsets)."""
    k = kernel[0] * kernel[1]
    rows = xp.arange(kernel[0])[:, None] * (dilation[0] * size[1])
    offs = (rows + xp.arange(kernel[1])[None, :] * dilation[1]).reshape(-1)
    best = xp.empty(tuple(out) + xt.shape[2:], dtype=xt.dtype)
    index = xp.empty(best.shape, dtype=xp.int64)
    for pos, window in window_views(xt, 0, kernel, out, stride, dilation):
        w = window.reshape(k, -1)
        at = w.argmax(axis=0)  # the first maximum
        if w.dtype.kind == "f":  # the last NaN, as PyTorch's scan (``val > max || isnan(val)``)
            nan = xp.isnan(w)
            at = xp.where(nan.any(axis=0), k - 1 - nan[::-1].argmax(axis=0), at)
        best[pos] = w.max(axis=0).reshape(xt.shape[2:])
        index[pos] = (base[pos] + offs[at]).reshape(xt.shape[2:])
    return best, index


_MAX_EXAMPLES = (
    Ex(S(2, 2, 4, 4), (2, 2), (2, 2), (0, 0), (1, 1), False),
    Ex(S(1, 2, 5, 6), (3, 2), (2, 1), (1, 1), (1, 2), True),
    Ex(S(2, 5, 5), (2, 2), (2, 2), (1, 0), (1, 1), True),
)


@op(
    internal=True,
    grad_fn="MaxPool2DWithIndicesBackward0",
    dtype="same",
    shape=pool_shape,
    scratch=pool_scratch,
    saves=(0,),
    extras=True,
    method=False,
    function=False,
    examples=_MAX_EXAMPLES,
)
def max_pool2d_values(
    xp: Any,
    input: Any,
    kernel_size: Dims,
    stride: Dims,
    padding: Dims,  # noqa: A002
    dilation: Dims,
    ceil_mode: bool,
) -> Any:
    """Each window's maximum (its index kept for the gradient)."""
    best, index = _max_and_indices(xp, input, kernel_size, stride, padding, dilation, ceil_mode)
    return best, {"indices": index}


@op(
    internal=True,
    grad_fn=None,
    dtype=lambda *a, **k: _int64(),
    shape=pool_shape,
    scratch=pool_scratch,
    method=False,
    function=False,
    examples=_MAX_EXAMPLES[:2],
)
def max_pool2d_indices(
    xp: Any,
    input: Any,
    kernel_size: Dims,
    stride: Dims,
    padding: Dims,  # noqa: A002
    dilation: Dims,
    ceil_mode: bool,
) -> Any:
    """Where each window's maximum is, as a flat index into the input's (H, W)."""
    return _max_and_indices(xp, input, kernel_size, stride, padding, dilation, ceil_mode)[1]


def _int64() -> Any:
    from .. import dtypes

    return dtypes.int64


@op(
    internal=True,
    grad_fn="MaxPool2DWithIndicesBackwardBackward0",
    arity=3,
    dtype="same",
    shape=lambda g, a, i, *r, **k: a,
    # bincount's float64 sums (input-sized) and the global int64 indices (gradient-sized)
    scratch=lambda g, a, i, *r, **k: 2 * math.prod(a) + 2 * math.prod(g),
    saves=(2,),
    method=False,
    function=False,
    examples=(
        Ex(
            S(2, 2, 2, 2),
            S(2, 2, 4, 4),
            C([[[[0, 3], [8, 15]]] * 2] * 2),
            (2, 2),
            (2, 2),
            (0, 0),
            (1, 1),
            False,
        ),
        Ex(
            S(2, 2, 2),
            S(2, 3, 3),
            C([[[0, 0], [4, 8]], [[1, 2], [3, 5]]]),
            (2, 2),
            (1, 1),
            (0, 0),
            (1, 1),
            False,
        ),
    ),
)
def max_pool2d_backward(
    xp: Any,
    grad: Any,
    input: Any,
    indices: Any,
    kernel_size: Dims,  # noqa: A002
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    ceil_mode: bool,
) -> Any:
    """The gradient of max pooling: each window's gradient added at its maximum."""
    hw = input.shape[-2] * input.shape[-1]
    planes = math.prod(input.shape[:-2])
    flat = (indices.reshape(planes, -1) + (xp.arange(planes) * hw)[:, None]).ravel()
    if all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel_size, stride, dilation)):
        # Windows that do not overlap pick each input once: a plain scatter, no sums.
        dx = xp.zeros(planes * hw, dtype=grad.dtype)
        dx[flat] = grad.ravel()
        return dx.reshape(input.shape)
    dx = xp.bincount(flat, weights=grad.ravel(), minlength=planes * hw)
    return dx[: planes * hw].astype(grad.dtype, copy=False).reshape(input.shape)


def _max_attrs(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if k != "indices"}


@max_pool2d_values.derivative
def _(ctx: Any, g: Any) -> tuple:
    from ..tensor import wrap

    (x,) = ctx.saved
    indices = wrap(ctx.attrs["indices"], g._dev)
    return (max_pool2d_backward.call(g, x, indices, **_max_attrs(ctx.attrs)),)


@max_pool2d_backward.derivative
def _(ctx: Any, u: Any) -> tuple:
    # The adjoint of adding at the indices is picking at them.
    (indices,) = ctx.saved
    planes = u.reshape(*u.shape[:-2], -1)
    picked = planes.gather(-1, indices.reshape(*indices.shape[:-2], -1))
    # The input gives only its shape; PyTorch still gives it a (zero) gradient.
    zero = zeros_like.call(u) if ctx.needs(1) else None
    return (picked.reshape(*indices.shape), zero, None)


@composite(
    "max_pool2d",
    examples=(
        Ex(S(2, 2, 4, 4), 2),
        Ex(S(1, 2, 5, 6), (3, 2), (2, 1), 1, (1, 2), True),
        Ex(S(2, 5, 5), 2, padding=1, ceil_mode=True),
        Ex(S(1, 1, 5, 5), 3, stride=1, dilation=2),
    ),
)
def max_pool2d(
    input: arg.Tensor,  # noqa: A002
    kernel_size: arg.Int | arg.IntTuple,
    stride: arg.Int | arg.IntTuple | None = None,
    padding: arg.Int | arg.IntTuple = 0,
    dilation: arg.Int | arg.IntTuple = 1,
    ceil_mode: arg.Bool = False,
    return_indices: arg.Bool = False,
) -> Any:
    """The maximum of each window of (N, C, H, W) or (C, H, W) input (and where, if asked)."""
    a = max_pool_args("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    out = max_pool2d_values.call(input, **a)
    return (out, max_pool2d_indices.call(input, **a)) if return_indices else out


@composite(
    "max_pool1d",
    examples=(Ex(S(2, 3, 7), 3, 2, 1), Ex(S(3, 8), 2), Ex(S(1, 2, 9), 3, 1, 1, 2, True)),
)
def max_pool1d(
    input: arg.Tensor,  # noqa: A002
    kernel_size: arg.Int | arg.IntTuple,
    stride: arg.Int | arg.IntTuple | None = None,
    padding: arg.Int | arg.IntTuple = 0,
    dilation: arg.Int | arg.IntTuple = 1,
    ceil_mode: arg.Bool = False,
    return_indices: arg.Bool = False,
) -> Any:
    """The maximum of each window of (N, C, L) or (C, L) input: a 2-d pool of height 1."""
    a = max_pool1d_args(input, kernel_size, stride, padding, dilation, ceil_mode)
    x = input.unsqueeze(-2)
    out = max_pool2d_values.call(x, **a).squeeze(-2)
    return (out, max_pool2d_indices.call(x, **a).squeeze(-2)) if return_indices else out
