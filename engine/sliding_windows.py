"""Sliding windows over spatial dims, shared by convolution and pooling.

Every window op here loops over the kernel's offsets (9 for a 3x3 kernel) and moves one strided
slice per offset: gathering makes the im2col column buffer, scattering (adding the slices back)
is its adjoint (col2im). Both are plain slicing, so they run unchanged on NumPy and CuPy, with
no ``add.at`` (slow on NumPy) and no ``as_strided`` (CuPy's differs).

The callers keep the spatial dims first and the batch last ("spatial-major": (C, H, W, N) for a
convolution, (H, W, N*C) for a pool): then each slice ends in a long contiguous run (the batch,
with the last spatial dim when its stride is 1) instead of a row of a small image, and NumPy's
inner loops run over hundreds of elements instead of two or three (8x faster on digits).
``lead``: how many dims come before the spatial ones.
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


def pad_for(size: Dims, out: Dims, kernel: Dims, stride: Dims, pad: Dims, dil: Dims) -> Dims:
    """The padding after each dim: ``pad``, or what ceil-mode windows reach past it."""
    return tuple(
        max(p, (o - 1) * s + d * (k - 1) + 1 - n - p)
        for n, o, k, s, p, d in zip(size, out, kernel, stride, pad, dil)
    )


def offsets(kernel: Dims) -> Iterator[Dims]:
    """Every offset inside a kernel, row-major (the order of a flattened kernel)."""
    return itertools.product(*(range(k) for k in kernel))


def _key(lead: int, offset: Dims, out: Dims, stride: Dims, dilation: Dims) -> tuple:
    """The index of element ``offset`` of every window: strided slices of the spatial dims."""
    return (
        (slice(None),) * lead
        + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s)
            for o, n, s, d in zip(offset, out, stride, dilation)
        )
        + (Ellipsis,)
    )


def _window(lead: int, pos: Dims, kernel: Dims, stride: Dims, dilation: Dims) -> tuple:
    """The index of the whole window at output ``pos``: dilated slices of the spatial dims."""
    return (
        (slice(None),) * lead
        + tuple(
            slice(o * s, o * s + d * (k - 1) + 1, d)
            for o, k, s, d in zip(pos, kernel, stride, dilation)
        )
        + (Ellipsis,)
    )


def by_window(kernel: Dims, out: Dims) -> bool:
    """Loop over the windows instead of the kernel's offsets, when there are fewer windows
    (a huge kernel would otherwise cost a Python step per offset: a client's cheap DoS)."""
    return math.prod(out) < math.prod(kernel)


def spatial_major(xp: Any, x: Any, lead: Dims, lo: Dims, hi: Dims, value: float = 0) -> Any:
    """``x`` (N, C, *S) as (*lead, *S padded, rest): ``lead`` names the dims of (N, C) that go
    first (``(1,)``: C first, N last; ``()``: N and C last), the spatial dims padded by ``lo``
    before and ``hi`` after with ``value``. One copy."""
    k = x.ndim - 2
    rest = tuple(d for d in (0, 1) if d not in lead)
    xt = x.transpose(*lead, *range(2, 2 + k), *rest)
    shape = tuple(
        n + (lo[i - len(lead)] + hi[i - len(lead)] if len(lead) <= i < len(lead) + k else 0)
        for i, n in enumerate(xt.shape)
    )
    if shape == xt.shape:
        return xp.ascontiguousarray(xt)
    out = xp.full(shape, value, dtype=x.dtype)
    interior = tuple(slice(a, a + n) for a, n in zip(lo, x.shape[2:]))
    out[(slice(None),) * len(lead) + interior + (Ellipsis,)] = xt
    return out


def im2col(xp: Any, x: Any, lead: int, kernel: Dims, out: Dims, stride: Dims, dil: Dims) -> Any:
    """Windows of a padded spatial-major ``x`` (*L, *S, *T) as columns (*L, *kernel, *out, *T):
    one copy per kernel offset."""
    k = len(kernel)
    shape = x.shape[:lead] + tuple(kernel) + tuple(out) + x.shape[lead + k :]
    cols = xp.empty(shape, dtype=x.dtype)
    if by_window(kernel, out):
        for pos in offsets(out):
            cols[(slice(None),) * (lead + k) + pos] = x[_window(lead, pos, kernel, stride, dil)]
        return cols
    for off in offsets(kernel):
        cols[(slice(None),) * lead + off] = x[_key(lead, off, out, stride, dil)]
    return cols


def col2im(xp: Any, cols: Any, shape: Dims, lead: int, kernel: Dims, out: Dims, stride: Dims,
           dil: Dims) -> Any:  # fmt: skip
    """The adjoint of ``im2col``: columns summed into a zero padded spatial-major ``shape``."""
    x = xp.zeros(shape, dtype=cols.dtype)
    if by_window(kernel, out):
        k = len(kernel)
        for pos in offsets(out):
            x[_window(lead, pos, kernel, stride, dil)] += cols[(slice(None),) * (lead + k) + pos]
        return x
    for off in offsets(kernel):
        x[_key(lead, off, out, stride, dil)] += cols[(slice(None),) * lead + off]
    return x


def add_windows(xp: Any, g: Any, shape: Dims, lead: int, kernel: Dims, out: Dims, stride: Dims,
                dil: Dims) -> Any:  # fmt: skip
    """``g`` (*L, *out, *T) added at every offset of its windows into a zero ``shape``."""
    x = xp.zeros(shape, dtype=g.dtype)
    if by_window(kernel, out):
        k = len(kernel)
        for pos in offsets(out):
            part = g[(slice(None),) * lead + pos]
            spread = part.reshape(part.shape[:lead] + (1,) * k + part.shape[lead:])
            x[_window(lead, pos, kernel, stride, dil)] += spread
        return x
    for off in offsets(kernel):
        x[_key(lead, off, out, stride, dil)] += g
    return x


def sum_windows(xp: Any, x: Any, lead: int, kernel: Dims, out: Dims, stride: Dims,
                dil: Dims) -> Any:  # fmt: skip
    """The sum of each window of a padded spatial-major ``x``: (*L, *out, *T), no columns."""
    if by_window(kernel, out):
        k = len(kernel)
        shape = x.shape[:lead] + tuple(out) + x.shape[lead + k :]
        total = xp.empty(shape, dtype=x.dtype)
        axes = tuple(range(lead, lead + k))
        for pos in offsets(out):
            window = x[_window(lead, pos, kernel, stride, dil)]
            total[(slice(None),) * lead + pos] = window.sum(axis=axes)
        return total
    total = None
    for off in offsets(kernel):
        part = x[_key(lead, off, out, stride, dil)]
        if total is None:
            total = part.copy()
        else:
            total += part
    return total


def window_parts(x: Any, lead: int, kernel: Dims, out: Dims, stride: Dims,
                 dil: Dims) -> Iterator[tuple[Dims, Any]]:  # fmt: skip
    """(offset, the view of that element of every window) for each kernel offset."""
    for off in offsets(kernel):
        yield off, x[_key(lead, off, out, stride, dil)]


def crop(x: Any, lead: int, lo: Dims, size: Dims) -> Any:
    """The inverse of padding: ``size`` elements from ``lo`` in each spatial dim."""
    return x[(slice(None),) * lead + tuple(slice(a, a + n) for a, n in zip(lo, size))]


def batch_first(xp: Any, x: Any, lead: Dims, k: int) -> Any:
    """The inverse of ``spatial_major``'s layout (no padding): back to (N, C, *S), contiguous."""
    rest = tuple(d for d in (0, 1) if d not in lead)
    order = (*lead, *[None] * k, *rest)
    # Axis of x holding N, C: their position in ``order``; the spatial dims follow C.
    n_axis, c_axis = order.index(0), order.index(1)
    nl = len(lead)
    return xp.ascontiguousarray(x.transpose(n_axis, c_axis, *range(nl, nl + k)))


def planes_last(xp: Any, x: Any, lo: Dims, hi: Dims, value: float = 0) -> Any:
    """A pool's input (..., H, W) as (H padded, W padded, planes, 1): spatial-major."""
    return spatial_major(xp, x.reshape(-1, 1, *x.shape[-2:]), (), lo, hi, value)


def planes_first(xp: Any, x: Any, lead: Dims) -> Any:
    """The inverse of ``planes_last`` (no padding): (*lead, H, W), contiguous."""
    return batch_first(xp, x, (), 2).reshape(*lead, *x.shape[:2])


def window_views(x: Any, lead: int, kernel: Dims, out: Dims, stride: Dims,
                 dil: Dims) -> Iterator[tuple[Dims, Any]]:  # fmt: skip
    """(output position, the view of its whole window) for each window (``by_window``)."""
    for pos in offsets(out):
        yield pos, x[_window(lead, pos, kernel, stride, dil)]
