"""Sliding windows over the trailing (spatial) dims, shared by convolution and pooling.

Every window op here loops over the kernel's offsets (9 for a 3x3 kernel) and moves one strided
slice per offset: gathering makes the im2col column buffer, scattering (adding the slices back)
is its adjoint (col2im). Both are plain slicing, so they run unchanged on NumPy and CuPy, with
no ``add.at`` (slow on NumPy) and no ``as_strided`` (CuPy's differs).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

Dims = tuple[int, ...]


def out_size(size: int, k: int, stride: int, pad: int, dil: int, ceil_mode: bool = False) -> int:
    """Windows along one dim (PyTorch's pooling_output_shape; convolutions never ceil)."""
    span = size + 2 * pad - dil * (k - 1) - 1
    if not ceil_mode:
        return span // stride + 1 if span >= 0 else 0
    n = -(-span // stride) + 1
    if (n - 1) * stride >= size + pad:  # the last window must start inside input or left pad
        n -= 1
    return n


def offsets(kernel: Dims) -> Iterator[Dims]:
    """Every offset inside a kernel, row-major (the order of a flattened kernel)."""
    return itertools.product(*(range(k) for k in kernel))


def window_slices(offset: Dims, out: Dims, stride: Dims, dilation: Dims) -> tuple[slice, ...]:
    """The strided slices of a padded input holding element ``offset`` of every window."""
    return tuple(
        slice(o * d, o * d + s * (n - 1) + 1, s)
        for o, n, s, d in zip(offset, out, stride, dilation)
    )


def padded(xp: Any, x: Any, lo: Dims, hi: Dims, value: float = 0) -> Any:
    """``x`` with its trailing dims padded by ``lo`` before and ``hi`` after (``value``)."""
    if not any(lo) and not any(hi):
        return x
    k = len(lo)
    lead = x.shape[: x.ndim - k]
    shape = lead + tuple(n + a + b for n, a, b in zip(x.shape[x.ndim - k :], lo, hi))
    out = xp.full(shape, value, dtype=x.dtype)
    out[(...,) + tuple(slice(a, a + n) for a, n in zip(lo, x.shape[x.ndim - k :]))] = x
    return out


def cropped(x: Any, lo: Dims, size: Dims) -> Any:
    """The inverse of ``padded``: ``size`` elements from ``lo`` in each trailing dim."""
    if not any(lo) and x.shape[x.ndim - len(size) :] == tuple(size):
        return x
    return x[(...,) + tuple(slice(a, a + n) for a, n in zip(lo, size))]


def pad_for(size: Dims, out: Dims, kernel: Dims, stride: Dims, pad: Dims, dil: Dims) -> Dims:
    """The padding after each dim that ceil-mode windows reach past the input and its pad."""
    return tuple(
        max(p, (o - 1) * s + d * (k - 1) + 1 - n - p)
        for n, o, k, s, p, d in zip(size, out, kernel, stride, pad, dil)
    )


def im2col(xp: Any, x: Any, kernel: Dims, out: Dims, stride: Dims, dilation: Dims) -> Any:
    """Windows of padded ``x`` (N, C, *S) as columns (C, *kernel, N, *out): one copy per offset."""
    n, c = x.shape[:2]
    cols = xp.empty((c, *kernel, n, *out), dtype=x.dtype)
    lead = (slice(None), slice(None))
    for off in offsets(kernel):
        cols[(slice(None), *off)] = x[lead + window_slices(off, out, stride, dilation)].swapaxes(
            0, 1
        )
    return cols


def col2im(
    xp: Any, cols: Any, shape: Dims, kernel: Dims, out: Dims, stride: Dims, dilation: Dims
) -> Any:
    """The adjoint of ``im2col``: columns (C, *kernel, N, *out) summed into a padded (N, C, *S)."""
    x = xp.zeros(shape, dtype=cols.dtype)
    lead = (slice(None), slice(None))
    for off in offsets(kernel):
        x[lead + window_slices(off, out, stride, dilation)] += cols[(slice(None), *off)].swapaxes(
            0, 1
        )
    return x


def windows(xp: Any, x: Any, kernel: Dims, out: Dims, stride: Dims, dilation: Dims) -> Any:
    """Windows of padded ``x`` (..., *S) as (prod(kernel), ..., *out), for pooling."""
    k = len(kernel)
    lead = (slice(None),) * (x.ndim - k)
    w = xp.empty((math.prod(kernel), *x.shape[: x.ndim - k], *out), dtype=x.dtype)
    for i, off in enumerate(offsets(kernel)):
        w[i] = x[lead + window_slices(off, out, stride, dilation)]
    return w


def scatter_windows(
    xp: Any, w: Any, shape: Dims, kernel: Dims, out: Dims, stride: Dims, dilation: Dims
) -> Any:
    """The adjoint of ``windows``: (prod(kernel), ..., *out) summed into a padded ``shape``."""
    k = len(kernel)
    x = xp.zeros(shape, dtype=w.dtype)
    lead = (slice(None),) * (len(shape) - k)
    for i, off in enumerate(offsets(kernel)):
        x[lead + window_slices(off, out, stride, dilation)] += w[i]
    return x


def add_windows(
    xp: Any, g: Any, shape: Dims, kernel: Dims, out: Dims, stride: Dims, dilation: Dims
) -> Any:
    """``g`` (..., *out) added into every offset of its windows over a padded zero ``shape``."""
    k = len(kernel)
    x = xp.zeros(shape, dtype=g.dtype)
    lead = (slice(None),) * (len(shape) - k)
    for off in offsets(kernel):
        x[lead + window_slices(off, out, stride, dilation)] += g
    return x


def sum_windows(xp: Any, x: Any, kernel: Dims, out: Dims, stride: Dims, dilation: Dims) -> Any:
    """The sum of each window of padded ``x`` (..., *S): (..., *out), no column buffer."""
    k = len(kernel)
    lead = (slice(None),) * (x.ndim - k)
    total = None
    for off in offsets(kernel):
        part = x[lead + window_slices(off, out, stride, dilation)]
        if total is None:
            total = part.copy()
        else:
            total += part
    return total
