"""The pools' arguments, checked in PyTorch's order and words, then made canonical (pairs).

Shared by the pooling ops (engine/ops/nn_pool.py) and run wherever they are called, so a bad
argument is refused before anything is allocated, embedded and remote alike.
"""

from __future__ import annotations

import math
from typing import Any

from . import arg_kinds as arg
from .sliding_windows import out_size, pad_for

Pair = tuple[int, int]
Dims = tuple[int, ...]
ONE = (1, 1)


def pool_out(size: Dims, k: Dims, s: Dims, p: Dims, d: Dims, ceil_mode: bool) -> Dims:
    """The output size of a pool over the last two dims (canonical arguments: no checks)."""
    return tuple(out_size(*a, ceil_mode) for a in zip(size, k, s, p, d))


def pool_shape(a: Dims, kernel_size: Dims, stride: Dims, padding: Dims, dilation: Dims = ONE,
               ceil_mode: bool = False, *rest: Any, **more: Any) -> Dims:  # fmt: skip
    """The shape rule of the 2-d pools."""
    return a[:-2] + pool_out(a[-2:], kernel_size, stride, padding, dilation, ceil_mode)


def pool_scratch(a: Dims, kernel_size: Dims, stride: Dims, padding: Dims, dilation: Dims = ONE,
                 ceil_mode: bool = False, *rest: Any, **more: Any) -> int:  # fmt: skip
    """The pools' temporaries: the padded input, a mask and int64 indices of the result's size."""
    out = pool_out(a[-2:], kernel_size, stride, padding, dilation, ceil_mode)
    end = pad_for(a[-2:], out, kernel_size, stride, padding, dilation)
    lead = math.prod(a[:-2])
    padded = math.prod(n + p + e for n, p, e in zip(a[-2:], padding, end))
    return lead * padded + 4 * lead * math.prod(out)


def _pair(name: str, what: str, value: Any, omitted: bool = False) -> Pair:
    v = (value,) if type(value) is int else tuple(value)
    if omitted and not v:
        return ()  # type: ignore[return-value]
    if len(v) not in (1, 2):
        words = "either be omitted, a single int" if omitted else "either be a single int"
        if what == "dilation":
            words = "be either a single int"
        raise RuntimeError(f"{name}: {what} must {words}, or a tuple of two ints")
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _out_dim(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape, with its checks."""
    if s == 0:
        raise RuntimeError("stride should not be zero")
    if p < 0:
        raise RuntimeError(f"pad must be non-negative, but got pad: {p}")
    if p > ((k - 1) * d + 1) // 2:
        raise RuntimeError(
            f"pad should be at most half of effective kernel size, but got pad={p}, "
            f"kernel_size={k} and dilation={d}"
        )
    return out_size(n, k, s, p, d, ceil_mode)


def _geometry(
    name: str, x: Any, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, ceil_mode: bool
) -> None:
    """pooling_output_shape per dim, then pool2d_shape_check."""
    if x.ndim < 3:  # avg_pool2d reads size(-3) first
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-max(x.ndim, 1)}, "
            f"{max(x.ndim, 1) - 1}], but got -3)"
        )
    size = x.shape[-2:]
    out = [_out_dim(*a, ceil_mode) for a in zip(size, kernel, stride, padding, dilation)]
    if min(kernel) <= 0:
        raise RuntimeError(
            f"kernel size should be greater than zero, but got kH: {kernel[0]} kW: {kernel[1]}"
        )
    if min(stride) <= 0:
        raise RuntimeError(
            f"stride should be greater than zero, but got dH: {stride[0]} dW: {stride[1]}"
        )
    if min(dilation) <= 0:
        raise RuntimeError(
            "dilation should be greater than zero, but got dilationH: "
            f"{dilation[0]} dilationW: {dilation[1]}"
        )
    if x.ndim > 4 or 0 in x.shape[-3:]:
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    if min(out) < 1:
        c = x.shape[-3]
        raise RuntimeError(
            f"Given input size: ({c}x{size[0]}x{size[1]}). Calculated output size: "
            f"({c}x{out[0]}x{out[1]}). Output size is too small"
        )


def max_pool_args(
    name: str, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool
) -> dict:
    """max_pool2d's checks; its canonical attributes."""
    kernel = _pair(name, "kernel_size", kernel_size)
    stride = _pair(name, "stride", () if stride is None else stride, omitted=True) or kernel
    padding = _pair(name, "padding", padding)
    dilation = _pair(name, "dilation", dilation)
    if x.ndim < 3:
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    _geometry(name, x, kernel, stride, padding, dilation, ceil_mode)
    return {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": bool(ceil_mode),
    }


def avg_pool_args(
    input: arg.Tensor,  # noqa: A002
    kernel_size: arg.Int | arg.IntTuple,
    stride: arg.Int | arg.IntTuple | None = None,
    padding: arg.Int | arg.IntTuple = 0,
    ceil_mode: arg.Bool = False,
    count_include_pad: arg.Bool = True,
    divisor_override: arg.Int | None = None,
) -> dict:
    """avg_pool2d's checks; its canonical attributes (idempotent: canonical ones pass)."""
    name = "avg_pool2d"
    kernel = _pair(name, "kernel_size", kernel_size)
    stride = _pair(name, "stride", () if stride is None else stride, omitted=True) or kernel
    padding = _pair(name, "padding", padding)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    _geometry(name, input, kernel, stride, padding, (1, 1), ceil_mode)
    return {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": bool(ceil_mode),
        "count_include_pad": bool(count_include_pad),
        "divisor_override": divisor_override,
    }


def adaptive_sizes(x: Any, output_size: Any) -> Pair:
    """adaptive_avg_pool2d's checks; its output size as a pair (None keeps the input's)."""
    if type(output_size) is int:
        output_size = (output_size, output_size)
    elif type(output_size) not in (tuple, list) or not all(
        v is None or type(v) is int for v in output_size
    ):
        raise TypeError(
            "adaptive_avg_pool2d(): argument 'output_size' must be tuple of ints, not "
            f"{type(output_size).__name__}"
        )
    if len(output_size) != 2:
        raise RuntimeError("adaptive_avg_pool2d: output_size must be 2")
    if x.ndim not in (3, 4):
        raise RuntimeError(
            f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {list(x.shape)}"
        )
    for d in range(1, x.ndim):
        if x.shape[d] == 0:
            raise RuntimeError(
                "adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch "
                f"dimensions, but input has sizes {list(x.shape)} with dimension {d} being empty"
            )
    out = tuple(n if v is None else v for v, n in zip(output_size, x.shape[-2:]))
    if min(out) < 0:
        raise RuntimeError(
            "adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 "
            f"but received {{{out[0]}, {out[1]}}}"
        )
    if not x.dtype.is_floating_point:
        raise NotImplementedError(
            f"\"adaptive_avg_pool2d\" not implemented for '{x.dtype.torch_name}'"
        )
    return out  # type: ignore[return-value]


def max_pool1d_args(x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                    ceil_mode: bool) -> dict:  # fmt: skip
    """max_pool1d's checks (its own words); the canonical attributes of the 2-d pool it runs."""
    if x.ndim not in (2, 3):
        raise RuntimeError(
            "max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size "
            f"for input, but got:{list(x.shape)}"
        )
    v = {}
    for name, value in (("kernel_size", kernel_size), ("stride", stride), ("padding", padding),
                        ("dilation", dilation)):  # fmt: skip
        t = (value,) if type(value) is int else () if value is None else tuple(value)
        if len(t) != 1 and not (name == "stride" and not t):
            raise RuntimeError(
                f"max_pool1d() {name} must be an int, list of ints or tuple of ints of size 1 "
                f"but got size {len(t)}"
            )
        v[name] = t[0] if t else None
    k, p, d = v["kernel_size"], v["padding"], v["dilation"]
    s = k if v["stride"] is None else v["stride"]
    for name, n in (("kernel_size", k), ("stride", s), ("dilation", d)):
        if n <= 0:
            raise RuntimeError(f"max_pool1d() {name} must be greater than zero, but got {n}")
    if p < 0:
        raise RuntimeError(f"max_pool1d() padding must be non-negative, but got {p}")
    if p > k // 2:
        raise RuntimeError(
            f"max_pool1d() padding should be at most half of kernel size, but got padding={p} "
            f"and kernel_size={k}"
        )
    n = out_size(x.shape[-1], k, s, p, d, ceil_mode)
    if n < 1:
        raise RuntimeError(f"max_pool1d() Invalid computed output size: {n}")
    return {
        "kernel_size": (1, k),
        "stride": (1, s),
        "padding": (0, p),
        "dilation": (1, d),
        "ceil_mode": bool(ceil_mode),
    }


def one_d(name: str, x: Any) -> None:
    """The 1-d average pools' input check (they pool a (N, C, 1, L) view, as PyTorch)."""
    if x.ndim not in (2, 3):
        raise RuntimeError(
            f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for argument #1 "
            f"'self' (while checking arguments for {name})"
        )


def as_pair(name: str, value: Any, first: int) -> Any:
    """A 1-d pool's int (or 1-tuple) argument as the 2-d pool's pair ``(first, value)``."""
    if value is None:
        return None
    t = (value,) if type(value) is int else tuple(value)
    if len(t) != 1:
        raise RuntimeError(f"{name} must be an int, list of ints or tuple of ints of size 1")
    return (first, t[0])
