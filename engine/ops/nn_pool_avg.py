"""Average pooling: avg_pool2d, adaptive_avg_pool2d, and their 1-d forms.

Each pool is linear: one op pools, one op spreads the gradient back over the windows
(...BackwardBackward0), and the gradient of that is the pool again, so every order of
derivative is recorded, with PyTorch's names.
"""

from __future__ import annotations

import math
from typing import Any

from .. import arg_kinds as arg
from ..op_examples import Ex, S
from ..op_table import composite, op
from ..pool_args import (
    ONE,
    adaptive_sizes,
    as_pair,
    avg_pool_args,
    one_d,
    pool_out,
    pool_scratch,
    pool_shape,
)
from ..sliding_windows import add_windows, crop, pad_for, planes_first, planes_last, sum_windows
from .creation import zeros_like

Dims = tuple[int, ...]


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
    return (counts[0][:, None] * counts[1][None, :]).astype(dtype)[:, :, None, None]


def _avg_geometry(
    size: Dims, kernel_size: Dims, stride: Dims, padding: Dims, ceil_mode: bool
) -> tuple[Dims, Dims]:
    out = pool_out(size, kernel_size, stride, padding, ONE, ceil_mode)
    return out, pad_for(size, out, kernel_size, stride, padding, ONE)


@op(
    grad_fn="AvgPool2DBackward0",
    dtype="same",
    shape=lambda a, kernel_size, stride, padding, ceil_mode, **k: pool_shape(
        a, kernel_size, stride, padding, ONE, ceil_mode
    ),
    scratch=lambda a, kernel_size, stride, padding, ceil_mode, **k: pool_scratch(
        a, kernel_size, stride, padding, ONE, ceil_mode
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
    xt = planes_last(xp, input, padding, end)  # (H, W, planes, 1)
    total = sum_windows(xp, xt, 0, kernel_size, out, stride, ONE)
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
        total = (total / div).astype(input.dtype)
    else:
        total /= div
    return planes_first(xp, total, input.shape[:-2])


@op(
    internal=True,
    grad_fn="AvgPool2DBackwardBackward0",
    arity=2,
    dtype="same",
    shape=lambda g, a, *r, **k: a,
    scratch=lambda g, a, *r, **k: 2 * math.prod(g) + 2 * math.prod(a),  # padded: at most 2x
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
    gt = planes_last(xp, grad, (0, 0), (0, 0))  # (out, planes, 1)
    shape = tuple(n + p + e for n, p, e in zip(size, padding, end)) + gt.shape[2:]
    dx = add_windows(xp, gt / div, shape, 0, kernel_size, out, stride, ONE)
    return planes_first(xp, crop(dx, 0, padding, size), input.shape[:-2])


@avg_pool2d.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (avg_pool2d_backward.call(g, x, **ctx.attrs),)


@avg_pool2d_backward.derivative
def _(ctx: Any, u: Any) -> tuple:
    return (avg_pool2d.call(u, **ctx.attrs), zeros_like.call(u) if ctx.needs(1) else None)


# ---------------------------------------------------------------------------------------------
# adaptive_avg_pool2d: out = P_h @ x @ P_w.T, P averaging each output's window of rows (cols)


def _adaptive_scratch(a: Dims, out: Dims) -> int:
    # The two averaging matrices and the product after one of them (the larger order).
    (h, w), (oh, ow) = a[-2:], out
    return oh * h + ow * w + math.prod(a[:-2]) * max(oh * w, h * ow)


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
    scratch=lambda a, output_size: _adaptive_scratch(a, output_size),
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
    scratch=lambda g, a: _adaptive_scratch(a, g[-2:]),
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


@composite(
    "avg_pool1d",
    examples=(Ex(S(2, 3, 7), 3, 2, 1), Ex(S(3, 8), 2), Ex(S(1, 2, 9), 3, 2, 1, True, False)),
)
def avg_pool1d(
    input: arg.Tensor,  # noqa: A002
    kernel_size: arg.Int | arg.IntTuple,
    stride: arg.Int | arg.IntTuple | None = None,
    padding: arg.Int | arg.IntTuple = 0,
    ceil_mode: arg.Bool = False,
    count_include_pad: arg.Bool = True,
) -> Any:
    """The mean of each window of (N, C, L) or (C, L) input: a 2-d pool of height 1."""
    one_d("avg_pool1d", input)
    k = as_pair("avg_pool1d() kernel_size", kernel_size, 1)
    s = as_pair("avg_pool1d() stride", stride, 1) or k
    p = as_pair("avg_pool1d() padding", padding, 0)
    x = input.unsqueeze(-2)
    return avg_pool2d.call(x, k, s, p, ceil_mode, count_include_pad).squeeze(-2)


@composite("adaptive_avg_pool1d", examples=(Ex(S(2, 3, 7), 3), Ex(S(3, 8), 1), Ex(S(1, 2, 5), 7)))
def adaptive_avg_pool1d(
    input: arg.Tensor,  # noqa: A002
    output_size: arg.Int | arg.IntTuple,
) -> Any:
    """Average pooling of (N, C, L) or (C, L) input to ``output_size``: a 2-d pool of height 1."""
    one_d("adaptive_avg_pool1d", input)
    (n,) = as_pair("adaptive_avg_pool1d() output_size", output_size, 1)[1:]
    return adaptive_avg_pool2d.call(input.unsqueeze(-2), (1, n)).squeeze(-2)
