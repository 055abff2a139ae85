"""Convolutions: conv1d and conv2d, by im2col and one matrix product.

``conv1d``/``conv2d`` check and normalise their arguments (PyTorch's words) and record one
``convolution`` node (ConvolutionBackward0), any number of spatial dims. Its gradients are two
more ops, ``convolution_backward_input`` (a transposed convolution: col2im) and
``convolution_backward_weight`` (one matrix product), whose own gradients are convolutions and
each other: all three are linear in each input, so the three close the set, and every order of
derivative is recorded (PyTorch's ConvolutionBackwardBackward0).

One known difference: for ``padding="same"`` with an even kernel, PyTorch pads the extra element
by an ``F.pad`` node (ConstantPadNdBackward0) before a symmetric convolution; gradd's
convolution pads both ends itself (``padding_end``), so the values agree and the graph has one
node fewer.
"""

from __future__ import annotations

import math
from typing import Any

from .. import arg_kinds as arg
from ..conv_args import check_input_dims, conv_args
from ..op_examples import Ex, S
from ..op_table import composite, op
from ..sliding_windows import batch_first, col2im, crop, im2col, out_size, spatial_major

Dims = tuple[int, ...]


def _end(padding: Dims, padding_end: Dims | None) -> Dims:
    # The padding after each dim: the same as before it, except for padding='same' with an
    # even kernel (PyTorch pads that one element more at the end).
    return padding if padding_end is None else padding_end


def _sizes(size: Dims, kernel: Dims, stride: Dims, padding: Dims, dilation: Dims, end: Dims):
    """(padded input size, output size) per spatial dim."""
    pad = tuple(n + a + b for n, a, b in zip(size, padding, end))
    return pad, tuple(out_size(n, k, s, 0, d) for n, k, s, d in zip(pad, kernel, stride, dilation))


def _conv_shape(
    a: Dims,
    w: Dims,
    b: Any,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    groups: int,
    padding_end: Dims | None = None,
) -> Dims:
    _, out = _sizes(a[2:], w[2:], stride, padding, dilation, _end(padding, padding_end))
    return (a[0], w[0], *out)


def _conv_scratch(
    a: Dims,
    w: Dims,
    b: Any,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    groups: int,
    padding_end: Dims | None = None,
) -> int:
    # The padded input, the column buffer and the product before it is transposed.
    pad, out = _sizes(a[2:], w[2:], stride, padding, dilation, _end(padding, padding_end))
    n, c, o, k, lo = a[0], a[1], w[0], math.prod(w[2:]), math.prod(out)
    return n * c * math.prod(pad) + c * k * n * lo + o * n * lo


def _backward_scratch(
    g: Dims,
    a: Dims,
    w: Dims,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    groups: int,
    padding_end: Dims | None = None,
) -> int:
    # The gradient transposed, the columns, and the padded input (either gradient's).
    pad, out = _sizes(a[2:], w[2:], stride, padding, dilation, _end(padding, padding_end))
    n, c = a[0], a[1]
    return math.prod(g) + c * math.prod(w[2:]) * n * math.prod(out) + n * c * math.prod(pad)


def _matmul(xp: Any, a: Any, b: Any) -> Any:
    """(G, m, k) @ (G, k, n): one BLAS call when there is one group."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return xp.matmul(a, b)


def _grad_rows(grad: Any, groups: int) -> Any:
    """The output gradient (N, O, *out) as (groups, O/groups, out*N), spatial-major (a copy)."""
    o = grad.shape[1]
    rows = grad.transpose(1, *range(2, grad.ndim), 0)
    return rows.reshape(groups, o // groups, grad.size // o if o else 0)


def _cols(
    xp: Any, x: Any, w: Any, stride: Dims, padding: Dims, dilation: Dims, groups: int, end: Dims
) -> tuple[Any, Dims]:
    """The column buffer of ``x`` for ``w``'s kernel, as (groups, C/groups * k, out * N)."""
    xt = spatial_major(xp, x, (1,), padding, end)  # (C, *S padded, N)
    kernel = w.shape[2:]
    _, out = _sizes(x.shape[2:], kernel, stride, padding, dilation, end)
    cols = im2col(xp, xt, 1, kernel, out, stride, dilation)  # (C, *kernel, *out, N)
    ck = x.shape[1] // groups * math.prod(kernel)
    return cols.reshape(groups, ck, x.shape[0] * math.prod(out)), out


@op(
    internal=True,
    grad_fn="ConvolutionBackward0",
    arity=3,
    dtype=lambda input, weight, bias, *a, **k: input.dtype,
    shape=_conv_shape,
    scratch=_conv_scratch,
    saves=(0, 1),
    method=False,
    function=False,
    examples=(
        Ex(S(2, 3, 5, 5), S(4, 3, 3, 3), S(4), (1, 1), (1, 1), (1, 1), 1),
        Ex(S(1, 4, 6, 5), S(2, 2, 2, 3), None, (2, 1), (0, 1), (1, 2), 2),
        Ex(S(2, 2, 7), S(3, 2, 2), S(3), (2,), (1,), (1,), 1),
    ),
)
def convolution(
    xp: Any,
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    groups: int,
    padding_end: Dims | None = None,
) -> Any:
    """Cross-correlation of ``input`` (N, C, *S) with ``weight`` (O, C/groups, *k), plus bias."""
    end = _end(padding, padding_end)
    cols, out = _cols(xp, input, weight, stride, padding, dilation, groups, end)
    o = weight.shape[0]
    y = _matmul(xp, weight.reshape(groups, o // groups, cols.shape[1]), cols)
    y = y.reshape(o, *out, input.shape[0])  # spatial-major: (O, *out, N)
    if bias is not None:
        y += bias.reshape((o,) + (1,) * (y.ndim - 1))
    return batch_first(xp, y, (1,), len(out))


_CONV_BACKWARD = {
    "grad_fn": "ConvolutionBackwardBackward0",
    "internal": True,
    "arity": 3,
    "dtype": "same",
    "scratch": _backward_scratch,
    "method": False,
    "function": False,
}


@op(
    **_CONV_BACKWARD,
    shape=lambda g, a, w, *args, **k: a,
    saves=(0, 2),
    examples=(
        Ex(S(2, 4, 3, 3), S(2, 3, 5, 5), S(4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
        Ex(S(1, 2, 3, 3), S(1, 4, 6, 5), S(2, 2, 2, 3), (2, 1), (0, 1), (1, 2), 2),
        Ex(S(2, 3, 3), S(2, 2, 7), S(3, 2, 2), (2,), (0,), (1,), 1),
    ),
)
def convolution_backward_input(
    xp: Any,
    grad: Any,
    input: Any,  # noqa: A002
    weight: Any,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    groups: int,
    padding_end: Dims | None = None,
) -> Any:
    """The gradient of a convolution for its input: a transposed convolution (col2im)."""
    n, c, size = input.shape[0], input.shape[1], input.shape[2:]
    kernel, out = weight.shape[2:], grad.shape[2:]
    pad, _ = _sizes(size, kernel, stride, padding, dilation, _end(padding, padding_end))
    o = weight.shape[0]
    w = weight.reshape(groups, o // groups, c // groups * math.prod(kernel))
    cols = _matmul(xp, w.swapaxes(1, 2), _grad_rows(grad, groups))
    cols = cols.reshape(c, *kernel, *out, n)
    dx = col2im(xp, cols, (c, *pad, n), 1, kernel, out, stride, dilation)
    return batch_first(xp, crop(dx, 1, padding, size), (1,), len(size))


@op(
    **_CONV_BACKWARD,
    shape=lambda g, a, w, *args, **k: w,
    saves=(0, 1),
    examples=(
        Ex(S(2, 4, 3, 3), S(2, 3, 5, 5), S(4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
        Ex(S(1, 2, 3, 3), S(1, 4, 6, 5), S(2, 2, 2, 3), (2, 1), (0, 1), (1, 2), 2),
        Ex(S(2, 3, 4), S(2, 2, 7), S(3, 2, 2), (2,), (1,), (1,), 1),
    ),
)
def convolution_backward_weight(
    xp: Any,
    grad: Any,
    input: Any,  # noqa: A002
    weight: Any,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    groups: int,
    padding_end: Dims | None = None,
) -> Any:
    """The gradient of a convolution for its weight: output gradient @ columns."""
    end = _end(padding, padding_end)
    cols, _ = _cols(xp, input, weight, stride, padding, dilation, groups, end)
    dw = _matmul(xp, _grad_rows(grad, groups), cols.swapaxes(1, 2))
    return dw.reshape(weight.shape)


@op(
    **{**_CONV_BACKWARD, "scratch": None},
    shape=lambda g, a, w, *args, **k: (w[0],),
    examples=(
        Ex(S(2, 4, 3, 3), S(2, 3, 5, 5), S(4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
        Ex(S(2, 3, 3), S(2, 2, 7), S(3, 2, 2), (2,), (0,), (1,), 1),
    ),
)
def convolution_backward_bias(
    xp: Any,
    grad: Any,
    input: Any,  # noqa: A002
    weight: Any,
    stride: Dims,
    padding: Dims,
    dilation: Dims,
    groups: int,
    padding_end: Dims | None = None,
) -> Any:
    """The gradient of a convolution for its bias: the output gradient summed per channel.
    An op of its own (not a sum) because PyTorch records it under the same node as the others."""
    return grad.sum(axis=(0, *range(2, grad.ndim)))


@convolution.derivative
def _(ctx: Any, g: Any) -> tuple:
    x, w = ctx.saved
    a = ctx.attrs
    return (
        convolution_backward_input.call(g, x, w, **a) if ctx.needs(0) else None,
        convolution_backward_weight.call(g, x, w, **a) if ctx.needs(1) else None,
        convolution_backward_bias.call(g, x, w, **a) if ctx.needs(2) else None,
    )


@convolution_backward_input.derivative
def _(ctx: Any, u: Any) -> tuple:
    # <u, input_grad(g, w)> = <g, conv(u, w)>: linear in g and in w.
    g, w = ctx.saved
    a = ctx.attrs
    return (
        convolution.call(u, w, None, **a) if ctx.needs(0) else None,
        None,  # the input gives only its shape
        convolution_backward_weight.call(g, u, w, **a) if ctx.needs(2) else None,
    )


@convolution_backward_weight.derivative
def _(ctx: Any, v: Any) -> tuple:
    # <v, weight_grad(g, x)> = <g, conv(x, v)>: linear in g and in x.
    g, x = ctx.saved
    a = ctx.attrs
    return (
        convolution.call(x, v, None, **a) if ctx.needs(0) else None,
        convolution_backward_input.call(g, x, v, **a) if ctx.needs(1) else None,
        None,  # the weight gives only its shape
    )


# ---------------------------------------------------------------------------------------------
# conv1d, conv2d: PyTorch's argument checks (conv_args), then one convolution.


def _conv(name: str, k: int, input: Any, weight: Any, bias: Any, stride: Any, padding: Any,  # noqa: A002
          dilation: Any, groups: int) -> Any:  # fmt: skip
    """conv1d/conv2d: checked, normalised, batched; unbatched input is unsqueezed, as torch."""
    check_input_dims(name, k, input)
    x = input if input.ndim == k + 2 else input.unsqueeze(0)
    a = conv_args(k, x, weight, bias, stride, padding, dilation, groups)
    y = convolution.call(x, weight, bias, **a)
    return y if x is input else y.squeeze(0)


@composite(
    "conv2d",
    examples=(
        Ex(S(2, 3, 5, 5), S(4, 3, 3, 3), S(4), padding=1),
        Ex(S(2, 3, 5, 5), S(4, 3, 3, 3)),
        Ex(S(1, 4, 7, 6), S(6, 2, 3, 2), S(6), stride=(2, 1), padding=(1, 0), groups=2),
        Ex(S(1, 2, 7, 7), S(2, 2, 3, 3), None, 2, 2, 2),
        Ex(S(2, 5, 5), S(3, 2, 2, 2), S(3), padding="same"),
        Ex(S(1, 2, 4, 4), S(4, 1, 3, 3), padding="same", dilation=(1, 2), groups=2),
        Ex(S(2, 2, 4, 4), S(3, 2, 1, 1), S(3), padding="valid"),
    ),
)
def conv2d(
    input: arg.Tensor,  # noqa: A002
    weight: arg.Tensor,
    bias: arg.Tensor | None = None,
    stride: arg.Int | arg.IntTuple = 1,
    padding: arg.Int | arg.IntTuple | arg.Str = 0,
    dilation: arg.Int | arg.IntTuple = 1,
    groups: arg.Int = 1,
) -> Any:
    """2-D convolution (cross-correlation) over (N, C, H, W) or (C, H, W) input."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


@composite(
    "conv1d",
    examples=(
        Ex(S(2, 3, 7), S(4, 3, 3), S(4), padding=1),
        Ex(S(2, 4, 9), S(4, 2, 2), None, 2, 1, 2, 2),
        Ex(S(3, 6), S(2, 3, 4), S(2), padding="same"),
    ),
)
def conv1d(
    input: arg.Tensor,  # noqa: A002
    weight: arg.Tensor,
    bias: arg.Tensor | None = None,
    stride: arg.Int | arg.IntTuple = 1,
    padding: arg.Int | arg.IntTuple | arg.Str = 0,
    dilation: arg.Int | arg.IntTuple = 1,
    groups: arg.Int = 1,
) -> Any:
    """1-D convolution (cross-correlation) over (N, C, L) or (C, L) input."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


@convolution_backward_bias.derivative
def _(ctx: Any, u: Any) -> tuple:
    shape = ctx.meta[0][0]
    return (u.reshape(1, -1, *([1] * (len(shape) - 2))).expand(*shape), None, None)
