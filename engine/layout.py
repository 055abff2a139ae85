"""Memory layout: each tensor's strides and storage offset, tracked by PyTorch's rules.

gradd keeps a tensor's layout itself instead of reading it from its array: CuPy's elementwise
results are C-contiguous where PyTorch keeps its input's layout, and a remote client must know
a tensor's strides without asking the server. A layout is ``None`` (C-contiguous strides at
offset 0: almost every tensor) or ``(strides, offset)`` in elements. Each op of the table
carries a layout rule (``OpDef.layout``): views derive their layout from their input's,
pointwise ops follow PyTorch's TensorIterator, and every other op makes a contiguous tensor.
The engine's ``record`` and the SDK's metadata recording both call ``result_layout``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

Shape = tuple[int, ...]
Strides = tuple[int, ...]
Layout = tuple[Strides, int] | None


def contiguous_strides(shape: Sequence[int]) -> Strides:
    """Row-major strides of ``shape``, as ``torch.empty(shape).stride()``."""
    out = []
    step = 1
    for n in reversed(shape):
        out.append(step)
        step *= max(n, 1)
    return tuple(reversed(out))


def strides_of(shape: Sequence[int], layout: Layout) -> Strides:
    return contiguous_strides(shape) if layout is None else layout[0]


def offset_of(layout: Layout) -> int:
    return 0 if layout is None else layout[1]


def is_contiguous(shape: Sequence[int], layout: Layout) -> bool:
    """PyTorch's rule: strides of dims of size 1 do not matter, nor any of an empty tensor."""
    if layout is None:
        return True
    expected = 1
    for n, s in zip(reversed(shape), reversed(layout[0])):
        if n == 0:
            return True
        if n != 1:
            if s != expected:
                return False
            expected *= n
    return True


def _make(shape: Sequence[int], strides: Sequence[int], offset: int = 0) -> Layout:
    strides = tuple(strides)
    if offset == 0 and strides == contiguous_strides(shape):
        return None
    return strides, offset


def _dense(shape: Sequence[int], strides: Sequence[int]) -> bool:
    """Non-overlapping and dense: the elements fill their span exactly, in some dim order."""
    expected = 1
    for s, n in sorted((s, n) for n, s in zip(shape, strides) if n != 1):
        if s != expected:
            return False
        expected *= n
    return True


# --- pointwise ops: PyTorch's TensorIterator -------------------------------------------------


def pointwise(shape: Shape, operands: Sequence[tuple[Shape, Layout]]) -> Layout:
    """``tensor_iterator`` for these operands, remembered: a training loop asks again and
    again about the same few shapes and layouts."""
    return tensor_iterator(shape, tuple(operands))


@functools.lru_cache(maxsize=4096)
def tensor_iterator(shape: Shape, operands: tuple[tuple[Shape, Layout], ...]) -> Layout:
    """The layout TensorIterator gives the result of a pointwise op on ``operands`` (their
    shapes and layouts; Python scalars are not operands): the inputs' own strides when they all
    share one shape and one dense layout, else dense in the dim order their strides agree on."""
    ndim = len(shape)
    if all(lay is None for _, lay in operands) or any(len(s) > ndim for s, _ in operands):
        return None  # contiguous inputs, or a reduction (a loss's mean) declared pointwise
    if all(tuple(s) == tuple(shape) for s, _ in operands):
        if all(is_contiguous(s, lay) for s, lay in operands):
            return None
        first = strides_of(shape, operands[0][1])
        if _dense(shape, first) and all(strides_of(s, lay) == first for s, lay in operands):
            return _make(shape, first)
    strides = []
    for s, lay in operands:
        st = strides_of(s, lay)
        lead = ndim - len(s)
        st = [0] * lead + [0 if n == 1 and shape[lead + i] != 1 else st[i] for i, n in enumerate(s)]
        if len(st) - st.count(0) >= 2:  # one that broadcasts all but a dim orders nothing
            strides.append(st)
    if not strides:
        return None  # nothing orders the dims: they stay in order, as a contiguous tensor's

    def should_swap(d0: int, d1: int) -> int:
        for st in strides:
            s0, s1 = st[d0], st[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 < s1:
                return -1
            if s0 > s1:
                return 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = _sorted_dims(ndim, should_swap)
    out = [0] * ndim
    step = 1
    for d in perm:
        out[d] = step
        step *= shape[d]
    return _make(shape, out)


def _sorted_dims(ndim: int, should_swap: Callable[[int, int], int]) -> list[int]:
    """TensorIterator's insertion sort of dims, fastest first, with ambiguous comparisons."""
    perm = list(range(ndim - 1, -1, -1))
    for i in range(1, ndim):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    return perm


# --- views ---------------------------------------------------------------------------------


def view_strides(old: Shape, strides: Strides, new: Shape) -> Strides | None:
    """The strides of ``new`` viewing a tensor of shape ``old`` and ``strides``, or None when
    no view can (PyTorch's ``computeStride``)."""
    if not old:
        return (1,) * len(new)
    numel = 1
    for n in old:
        numel *= n
    if numel == 0 and tuple(old) == tuple(new):
        return tuple(strides)
    out = [0] * len(new)
    if numel == 0:
        for d in range(len(new) - 1, -1, -1):
            out[d] = 1 if d == len(new) - 1 else max(new[d + 1], 1) * out[d + 1]
        return tuple(out)
    view_d = len(new) - 1
    base = strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(old) - 1, -1, -1):
        tensor_numel *= old[d]
        if d == 0 or (old[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new[view_d] == 1):
                out[view_d] = view_numel * base
                view_numel *= new[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base = strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(out) if view_d == -1 else None


VIEW_ERROR = (
    "view size is not compatible with input tensor's size and stride (at least one dimension "
    "spans across two contiguous subspaces). Use .reshape(...) instead."
)


def viewed(shape: Shape, layout: Layout, new: Shape) -> Layout:
    """The layout of ``view(new)``; PyTorch's error when the strides allow no view."""
    if layout is None:
        return None
    st = view_strides(shape, layout[0], new)
    if st is None:
        raise RuntimeError(VIEW_ERROR)
    return _make(new, st, layout[1])


def permuted(shape: Shape, layout: Layout, dims: Sequence[int]) -> Layout:
    st = strides_of(shape, layout)
    return _make([shape[d] for d in dims], [st[d] for d in dims], offset_of(layout))


def expanded(shape: Shape, layout: Layout, sizes: Sequence[int]) -> Layout:
    """PyTorch's ``inferExpandGeometry``: new or broadcast dims get stride 0, except new dims of
    size 1, which get the stride a contiguous dim there would have."""
    st = strides_of(shape, layout)
    n = len(sizes)
    out_sizes, out_strides = [0] * n, [0] * n
    for i in range(n - 1, -1, -1):
        d = len(shape) - n + i
        size = shape[d] if d >= 0 else 1
        if d >= 0:
            stride = st[d]
        elif not shape or i == n - 1:
            stride = 0
        else:
            stride = out_sizes[i + 1] * out_strides[i + 1]
        target = size if sizes[i] == -1 else sizes[i]
        if size != target:
            size, stride = target, 0
        out_sizes[i], out_strides[i] = size, stride
    return _make(out_sizes, out_strides, offset_of(layout))


def unsqueezed(shape: Shape, layout: Layout, dim: int) -> Layout:
    st = list(strides_of(shape, layout))
    new = 1 if dim >= len(shape) else shape[dim] * st[dim]
    sizes = list(shape)
    sizes.insert(dim, 1)
    st.insert(dim, new)
    return _make(sizes, st, offset_of(layout))


def squeezed(shape: Shape, layout: Layout, dims: Sequence[int]) -> Layout:
    st = strides_of(shape, layout)
    keep = [d for d in range(len(shape)) if d not in dims]
    return _make([shape[d] for d in keep], [st[d] for d in keep], offset_of(layout))


def indexed(shape: Shape, layout: Layout, key: Sequence[Any]) -> Layout:
    """The layout of a basic index (ints, slices; ``None`` inserts a dim as unsqueeze)."""
    st = strides_of(shape, layout)
    offset = offset_of(layout)
    sizes: list[int] = []
    strides: list[int] = []
    d = 0
    for k in key:
        if k is None:
            sizes.append(1)
            strides.append(shape[d] * st[d] if d < len(shape) else 1)
        elif isinstance(k, slice):
            start, stop, step = k.indices(shape[d])
            n = max(0, (stop - start + step - 1) // step)
            offset += start * st[d]
            sizes.append(n)
            strides.append(st[d] * step)
            d += 1
        else:
            i = int(k)
            offset += (i + shape[d] if i < 0 else i) * st[d]
            d += 1
    sizes += shape[d:]
    strides += st[d:]
    return _make(sizes, strides, offset)


def diagonal(shape: Shape, layout: Layout, offset: int, dim1: int, dim2: int) -> Layout:
    st = strides_of(shape, layout)
    at = offset_of(layout)
    if offset >= 0:
        n = max(min(shape[dim1], shape[dim2] - offset), 0)
        if n:
            at += offset * st[dim2]
    else:
        n = max(min(shape[dim1] + offset, shape[dim2]), 0)
        if n:
            at -= offset * st[dim1]
    keep = [d for d in range(len(shape)) if d not in (dim1, dim2)]
    sizes = [shape[d] for d in keep] + [n]
    return _make(sizes, [st[d] for d in keep] + [st[dim1] + st[dim2]], at)


def narrowed(shape: Shape, layout: Layout, dim: int, start: int, stop: int | None) -> Layout:
    """A part along ``dim`` (``stop`` None: the select of index ``start``)."""
    key = (slice(None),) * dim + ((start,) if stop is None else (slice(start, stop),))
    return indexed(shape, layout, key)


def grad_layout(shape: Shape, layout: Layout) -> Layout:
    """The layout of a leaf's ``.grad`` (AccumulateGrad's contract): the leaf's strides when
    it is dense, else contiguous."""
    if layout is None or not _dense(shape, layout[0]):
        return None
    return _make(shape, layout[0])


# --- the rule of an op ------------------------------------------------------------------------

POINTWISE = "pointwise"  # an ``OpDef.layout`` value: TensorIterator's rule over the inputs


def result_layout(opdef: Any, args: Sequence[Any], attrs: dict, shape: Shape) -> Layout:
    """The layout of ``opdef``'s result at these arguments (tensors of either kind: they carry
    ``shape`` and ``_layout``); None for the ops that make contiguous tensors."""
    rule = opdef.layout
    if rule is None:
        return None
    if rule == POINTWISE:
        for a in args:
            if getattr(a, "_layout", None) is not None:
                break
        else:
            return None  # contiguous operands (nearly all) make a contiguous result
        # A Python number is an operand too, a 0-d one (PyTorch wraps it in a tensor): it
        # makes the operands' shapes differ, which decides how size-1 dims are strided.
        operands = [
            (tuple(a.shape), a._layout) if hasattr(a, "_layout") else ((), None)
            for a in args
            if hasattr(a, "_layout") or type(a) in (int, float, bool)
        ]
        return pointwise(tuple(shape), operands)
    first = args[0]
    return rule(tuple(first.shape), first._layout, **attrs)
