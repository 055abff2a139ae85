"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d, and their 1-d forms.

Each pool is one op over its windows (``sliding_windows``: one strided slice per kernel offset)
and one op for its gradient, whose own gradient is the pool again (the pools are linear in
their input once max pooling's choices are fixed), so every order of derivative is recorded
with PyTorch's names (MaxPool2DWithIndicesBackward0, AvgPool2DBackward0, ...Backward0).
"""

from __future__ import annotations

import math
from typing import Any

from .. import arg_kinds as arg
from ..op_examples import C, Ex, S
from ..op_table import composite, op
from ..pool_args import adaptive_sizes, avg_pool_args, max_pool_args
from ..sliding_windows import add_windows, cropped, out_size, pad_for, padded, sum_windows
from ..sliding_windows import window_slices as _slices
from .creation import zeros_like

Dims = tuple[int, ...]
_ONE = (1, 1)


def _out(size: Dims, k: Dims, s: Dims, p: Dims, d: Dims, ceil_mode: bool) -> Dims:
    return tuple(out_size(*a, ceil_mode) for a in zip(size, k, s, p, d))


def _pool_shape(
    a: Dims,
    kernel_size: Dims,
    stride: Dims,
    padding: Dims,
    dilation: Dims = _ONE,
    ceil_mode: bool = False,
    *rest: Any,
    **more: Any,
) -> Dims:
    return a[:-2] + _out(a[-2:], kernel_size, stride, padding, dilation, ceil_mode)


def _pool_scratch(
    a: Dims,
    kernel_size: Dims,
    stride: Dims,
    padding: Dims,
    dilation: Dims = _ONE,
    ceil_mode: bool = False,
    *rest: Any,
    **more: Any,
) -> int:
    # The padded input, and a mask and int64 indices of the result's size.
    out = _out(a[-2:], kernel_size, stride, padding, dilation, ceil_mode)
    end = pad_for(a[-2:], out, kernel_size, stride, padding, dilation)
    lead = math.prod(a[:-2])
    return lead * math.prod(n + p + e for n, p, e in zip(a[-2:], padding, end)) + 4 * lead * (
        math.prod(out)
    )


# ---------------------------------------------------------------------------------------------
# max_pool2d


def _max_and_indices(
    xp: Any, x: Any, kernel_size: Dims, stride: Dims, padding: Dims, dilation: Dims, ceil_mode: bool
) -> tuple[Any, Any]:
    """Each window's maximum and its flat index into (H, W), PyTorch's way: the first maximum,
    and a NaN wins (every later NaN too, as its kernel's ``val > max || isnan(val)``)."""
    size = x.shape[-2:]
    out = _out(size, kernel_size, stride, padding, dilation, ceil_mode)
    end = pad_for(size, out, kernel_size, stride, padding, dilation)
    low = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
    xpad = padded(xp, x, padding, end, low)
    rows = xp.arange(out[0]) * stride[0] - padding[0]
    cols = xp.arange(out[1]) * stride[1] - padding[1]
    base = rows[:, None] * size[1] + cols[None, :]  # the flat index of each window's corner
    lead = (slice(None),) * (x.ndim - 2)
    best = index = None
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            part = xpad[lead + _slices((i, j), out, stride, dilation)]
            at = base + (i * dilation[0] * size[1] + j * dilation[1])
            if best is None:
                best, index = part.copy(), xp.broadcast_to(at, part.shape).copy()
                continue
            take = part > best
            if x.dtype.kind == "f":
                take |= xp.isnan(part)
            best = xp.where(take, part, best)
            index = xp.where(take, at, index)
    return best, index.astype(xp.int64, copy=False)


_MAX_EXAMPLES = (
    Ex(S(2, 2, 4, 4), (2, 2), (2, 2), (0, 0), (1, 1), False),
    Ex(S(1, 2, 5, 6), (3, 2), (2, 1), (1, 1), (1, 2), True),
    Ex(S(2, 5, 5), (2, 2), (2, 2), (1, 0), (1, 1), True),
)


@op(
    internal=True,
    grad_fn="MaxPool2DWithIndicesBackward0",
    dtype="same",
    shape=_pool_shape,
    scratch=_pool_scratch,
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
    shape=_pool_shape,
    scratch=_pool_scratch,
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
    flat = indices.reshape(planes, -1) + (xp.arange(planes) * hw)[:, None]
    dx = xp.bincount(flat.ravel(), weights=grad.ravel(), minlength=planes * hw)
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


# ---------------------------------------------------------------------------------------------
# avg_pool2d


def _divisor(
    xp: Any,
    size: Dims,
    out: Dims,
    kernel_size: Dims,
    stride: Dims,
    padding: Dims,
    count_include_pad: bool,
    divisor_override: int | None,
    dtype: Any,
) -> Any:
    """What each window's sum is divided by: its size within input and padding (not the
    ceil-mode overhang), or within the input only, or the override."""
    if divisor_override is not None:
        return divisor_override
    counts = []
    for n, o, k, s, p in zip(size, out, kernel_size, stride, padding):
        start = xp.arange(o) * s - p
        end = xp.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, n)
        counts.append(end - start)
    return (counts[0][:, None] * counts[1][None, :]).astype(dtype)


def _avg_geometry(
    size: Dims, kernel_size: Dims, stride: Dims, padding: Dims, ceil_mode: bool
) -> tuple[Dims, Dims]:
    out = _out(size, kernel_size, stride, padding, _ONE, ceil_mode)
    return out, pad_for(size, out, kernel_size, stride, padding, _ONE)


@op(
    grad_fn="AvgPool2DBackward0",
    dtype="same",
    shape=lambda a, kernel_size, stride, padding, ceil_mode, **k: _pool_shape(
        a, kernel_size, stride, padding, _ONE, ceil_mode
    ),
    scratch=lambda a, kernel_size, stride, padding, ceil_mode, **k: _pool_scratch(
        a, kernel_size, stride, padding, _ONE, ceil_mode
    ),
    normalize=avg_pool_args,
    saves=(0,),
    method=False,
    examples=(
        Ex(S(2, 2, 4, 4), 2),
        Ex(S(1, 2, 5, 6), (3, 2), (2, 1), 1),
        Ex(S(2, 5, 5), 3, 2, 1, True, False),
        Ex(S(1, 1, 5, 5), 2, 1, 1, True, True, 3),
        Ex(S(1, 2, 6, 6), 3, 2, 1, ceil_mode=True),
    ),
)
def avg_pool2d(
    xp: Any,
    input: Any,
    kernel_size: Dims,
    stride: Dims,
    padding: Dims,  # noqa: A002
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Any:
    """The mean of each window of (N, C, H, W) or (C, H, W) input."""
    size = input.shape[-2:]
    out, end = _avg_geometry(size, kernel_size, stride, padding, ceil_mode)
    total = sum_windows(xp, padded(xp, input, padding, end), kernel_size, out, stride, _ONE)
    div = _divisor(
        xp,
        size,
        out,
        kernel_size,
        stride,
        padding,
        count_include_pad,
        divisor_override,
        total.dtype,
    )
    if input.dtype.kind != "f":  # integer pooling truncates, as PyTorch's
        return (total / div).astype(input.dtype)
    total /= div
    return total


@op(
    internal=True,
    grad_fn="AvgPool2DBackwardBackward0",
    arity=2,
    dtype="same",
    shape=lambda g, a, *r, **k: a,
    method=False,
    function=False,
    examples=(
        Ex(S(2, 2, 2, 2), S(2, 2, 4, 4), (2, 2), (2, 2), (0, 0), False, True, None),
        Ex(S(2, 3, 3), S(2, 5, 5), (3, 3), (2, 2), (1, 1), True, False, None),
        Ex(S(1, 1, 6, 6), S(1, 1, 5, 5), (2, 2), (1, 1), (1, 1), True, True, 3),
    ),
)
def avg_pool2d_backward(
    xp: Any,
    grad: Any,
    input: Any,
    kernel_size: Dims,
    stride: Dims,  # noqa: A002
    padding: Dims,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Any:
    """The gradient of average pooling: each window's share added over the window."""
    size = input.shape[-2:]
    out, end = _avg_geometry(size, kernel_size, stride, padding, ceil_mode)
    div = _divisor(
        xp, size, out, kernel_size, stride, padding, count_include_pad, divisor_override, grad.dtype
    )
    shape = input.shape[:-2] + tuple(n + p + e for n, p, e in zip(size, padding, end))
    dx = add_windows(xp, grad / div, shape, kernel_size, out, stride, _ONE)
    return xp.ascontiguousarray(cropped(dx, padding, size))


@avg_pool2d.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (avg_pool2d_backward.call(g, x, **ctx.attrs),)


@avg_pool2d_backward.derivative
def _(ctx: Any, u: Any) -> tuple:
    return (avg_pool2d.call(u, **ctx.attrs), zeros_like.call(u) if ctx.needs(1) else None)


# ---------------------------------------------------------------------------------------------
# adaptive_avg_pool2d: out = P_h @ x @ P_w.T, P averaging each output's window of rows (cols)


def _averaging(xp: Any, size: int, out: int, dtype: Any) -> Any:
    """(out, size): row i averages PyTorch's adaptive window [floor(i*n/o), ceil((i+1)*n/o))."""
    i = xp.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    j = xp.arange(size)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


@op(
    internal=True,
    grad_fn="AdaptiveAvgPool2DBackward0",
    dtype="same",
    shape=lambda a, output_size: a[:-2] + tuple(output_size),
    saves=(0,),
    method=False,
    function=False,
    examples=(Ex(S(2, 2, 5, 7), (2, 3)), Ex(S(2, 4, 4), (4, 4)), Ex(S(1, 1, 3, 5), (5, 2))),
)
def adaptive_avg_pool2d_values(xp: Any, input: Any, output_size: Dims) -> Any:  # noqa: A002
    """The mean of each adaptive window (sizes chosen so ``output_size`` windows cover it)."""
    ph = _averaging(xp, input.shape[-2], output_size[0], input.dtype)
    pw = _averaging(xp, input.shape[-1], output_size[1], input.dtype)
    return xp.matmul(xp.matmul(ph, input), pw.T)


@op(
    internal=True,
    grad_fn="AdaptiveAvgPool2DBackwardBackward0",
    arity=2,
    dtype="same",
    shape=lambda g, a: a,
    method=False,
    function=False,
    examples=(Ex(S(2, 2, 2, 3), S(2, 2, 5, 7)), Ex(S(1, 5, 2), S(1, 3, 5))),
)
def adaptive_avg_pool2d_backward(xp: Any, grad: Any, input: Any) -> Any:  # noqa: A002
    """The gradient of adaptive average pooling: P_h.T @ grad @ P_w."""
    ph = _averaging(xp, input.shape[-2], grad.shape[-2], grad.dtype)
    pw = _averaging(xp, input.shape[-1], grad.shape[-1], grad.dtype)
    return xp.matmul(xp.matmul(ph.T, grad), pw)


@adaptive_avg_pool2d_values.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (adaptive_avg_pool2d_backward.call(g, x),)


@adaptive_avg_pool2d_backward.derivative
def _(ctx: Any, u: Any) -> tuple:
    zero = zeros_like.call(u) if ctx.needs(1) else None
    return (adaptive_avg_pool2d_values.call(u, tuple(ctx.meta[0][0][-2:])), zero)


@composite(
    "adaptive_avg_pool2d",
    examples=(
        Ex(S(2, 2, 5, 7), (2, 3)),
        Ex(S(2, 4, 4), 2),
        Ex(S(1, 2, 3, 5), (None, 2)),
        Ex(S(2, 2, 3, 3), 1),
    ),
)
def adaptive_avg_pool2d(
    input: arg.Tensor,  # noqa: A002
    output_size: arg.Int | arg.Anything,
) -> Any:
    """Average pooling to a fixed ``output_size`` (an int, or a pair whose None keeps a size)."""
    out = adaptive_sizes(input, output_size)
    if out == (1, 1):  # PyTorch takes the mean (MeanBackward1)
        return input.mean((-1, -2), keepdim=True)
    return adaptive_avg_pool2d_values.call(input, out)
