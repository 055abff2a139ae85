"""conv1d/conv2d's arguments, checked in PyTorch's order and words, then made canonical.

Run by the composites wherever they are called (embedded, the SDK's tracing, the server), so a
bad argument is refused before anything is allocated.
"""

from __future__ import annotations

from typing import Any

Dims = tuple[int, ...]


def _expand(name: str, value: Any, k: int, kw: int) -> Dims:
    """An int or a list, as ``k`` values (PyTorch's IntArrayRef[k]), to match a weight of
    ``kw`` spatial dims (expand_param_if_needed)."""
    v = (value,) * k if type(value) is int else tuple(value)
    if len(v) == 1:
        return v * kw
    if len(v) != kw:
        raise RuntimeError(
            f"expected {name} to be a single integer value or a list of {kw} values to match "
            f"the convolution dimensions, but got {name}={list(v)}"
        )
    return v


def _same_padding(kernel: Dims, stride: Dims, dilation: Dims) -> tuple[Dims, Dims | None]:
    if any(s != 1 for s in stride):
        raise RuntimeError("padding='same' is not supported for strided convolutions")
    total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
    lo = tuple(t // 2 for t in total)
    hi = tuple(t - a for t, a in zip(total, lo))
    return lo, (None if hi == lo else hi)


def _check_shapes(
    x: Any, w: Any, bias: Any, padding: Dims, end: Dims, dilation: Dims, groups: int
) -> None:
    if w.ndim != x.ndim:
        raise RuntimeError(
            f"Expected {w.ndim}-dimensional input for {w.ndim}-dimensional weight "
            f"{list(w.shape)}, but got {x.ndim}-dimensional input of size {list(x.shape)} instead"
        )
    for words in ("at least", "divisible by"):
        if w.shape[0] < groups if words == "at least" else w.shape[0] % groups:
            size = list(w.shape) if words == "at least" else [list(w.shape)]  # torch's brackets
            raise RuntimeError(
                f"Given groups={groups}, expected weight to be {words} {groups} at dimension 0, "
                f"but got weight of size {size} instead"
            )
    if x.shape[1] != w.shape[1] * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(w.shape)}, expected input"
            f"{list(x.shape)} to have {w.shape[1] * groups} channels, but got {x.shape[1]} "
            "channels instead"
        )
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != w.shape[0]):
        raise RuntimeError(
            f"Given weight of size {list(w.shape)}, expected bias to be 1-dimensional with "
            f"{w.shape[0]} elements, but got bias of size {list(bias.shape)} instead"
        )
    pad = [n + a + b for n, a, b in zip(x.shape[2:], padding, end)]
    span = [d * (k - 1) + 1 for k, d in zip(w.shape[2:], dilation)]
    if any(p < s for p, s in zip(pad, span)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, pad))}). Kernel "
            f"size: ({' x '.join(map(str, span))}). Kernel size can't be greater than actual "
            "input size"
        )
    if x.dtype != w.dtype:
        raise RuntimeError(
            f"expected scalar type {x.dtype.torch_name} but found {w.dtype.torch_name}"
        )
    if bias is not None and bias.dtype != x.dtype:
        raise RuntimeError(
            f"Input type ({x.dtype.c_name}) and bias type ({bias.dtype.c_name}) should be the same"
        )


def check_input_dims(name: str, k: int, input: Any) -> None:  # noqa: A002
    """A k-d convolution takes (N, C, *k) or unbatched (C, *k) input."""
    if input.ndim not in (k + 1, k + 2):
        raise RuntimeError(
            f"Expected {k + 1}D (unbatched) or {k + 2}D (batched) input to {name}, but got input "
            f"of size: {list(input.shape)}"
        )


def conv_args(k: int, x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
              groups: int) -> dict:  # fmt: skip
    """The checks of a convolution of batched ``x``; its canonical attributes."""
    if type(padding) is str and padding not in ("same", "valid"):
        raise RuntimeError(f"Invalid padding string: '{padding}'")
    kw = weight.ndim - 2
    stride = _expand("stride", stride, k, kw)
    dilation = _expand("dilation", dilation, k, kw)
    end = None
    if padding == "same":
        padding, end = _same_padding(weight.shape[2:], stride, dilation)
    else:
        padding = _expand("padding", 0 if padding == "valid" else padding, k, kw)
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {list(dilation)}")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    _check_shapes(x, weight, bias, padding, padding if end is None else end, dilation, groups)
    return {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "padding_end": end,
    }
