"""More ops that move elements around, as PyTorch records them: splits (chunk, split, unbind,
narrow), reorders (flip, roll, movedim, swapaxes), repeats (repeat, tile, repeat_interleave),
the ``*_as`` forms and broadcast_to, and triangles and diagonals (triu, tril, diag, diagonal,
trace).

Where PyTorch decomposes an op into others (movedim is a permute, tile a repeat, unflatten a
view...) it is a composite of those, so its graph is PyTorch's node for node. A split's pieces
are each one ``split_part`` node named as PyTorch's (SplitBackward0...): PyTorch shares one node
between the pieces, gradd gives each piece its own (same names, same gradients).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import layout, shapes
from ..memory_meter import SessionMemoryError
from ..op_examples import Ex, S
from ..op_table import composite, op
from .shape_ops import _sizes, index, index_backward

# --- splits ----------------------------------------------------------------------------------

_PART_NAMES = {
    "split": "SplitBackward0",
    "split_with_sizes": "SplitWithSizesBackward0",
    "unbind": "UnbindBackward0",
}


def _part_key(dim: int, start: int, stop: int | None) -> tuple:
    """The index of one piece: a slice along ``dim``, or (``stop`` None) one position."""
    return (slice(None),) * dim + (start if stop is None else slice(start, stop),)


def _part_shape(
    a: tuple, dim: int, start: int, stop: int | None, kind: str, index: int = 0
) -> tuple:
    if stop is None:
        return a[:dim] + a[dim + 1 :]
    return a[:dim] + (stop - start,) + a[dim + 1 :]


def _part_name(a: Any, dim: int, start: int, stop: int | None, kind: str, index: int = 0) -> str:
    return _PART_NAMES[kind]


_part_name.common = "SplitBackward0"  # type: ignore[attr-defined]


@op(
    view=True,
    internal=True,
    grad_fn=_part_name,
    layout=lambda a, lay, /, dim, start, stop, kind, index=0: layout.narrowed(
        a, lay, dim, start, stop
    ),
    shape=_part_shape,
    method=False,
    function=False,
    examples=(
        Ex(S(4, 6), 1, 2, 4, "split"),
        Ex(S(5, 3), 0, 1, 5, "split_with_sizes"),
        Ex(S(3, 4), 1, 2, None, "unbind"),
    ),
)
def split_part(
    xp: Any, self: Any, dim: int, start: int, stop: int | None, kind: str, index: int = 0
) -> Any:
    """Piece ``index`` of a split (``kind`` names PyTorch's op): a view of ``self``."""
    return self[(*_part_key(dim, start, stop), Ellipsis)]


@split_part.derivative
def _(ctx: Any, g: Any) -> tuple:
    a = ctx.attrs
    return (index_backward.call(g, ctx.meta[0][0], _part_key(a["dim"], a["start"], a["stop"])),)


def _split_dim(self: Any, dim: int) -> tuple[int, int]:
    if self.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = shapes.wrap_dim(dim, self.ndim)
    return d, self.shape[d]


def _split_even(self: Any, split_size: int, d: int, size: int) -> tuple:
    if split_size < 0:
        raise RuntimeError(
            f"split expects split_size be non-negative, but got split_size={split_size}"
        )
    if split_size == 0 and size != 0:
        raise RuntimeError(
            f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}"
        )
    n = max((size + split_size - 1) // split_size, 1) if split_size else 1
    return tuple(
        split_part.call(self, d, i * split_size, min((i + 1) * split_size, size), "split", i)
        for i in range(n)
    )


def _split_sizes(self: Any, sizes: tuple, d: int, size: int) -> tuple:
    if any(s < 0 for s in sizes):
        raise RuntimeError(
            "split_with_sizes expects split_sizes have only non-negative entries, but got "
            f"split_sizes={list(sizes)}"
        )
    total = 0
    for s in sizes:
        total += s
    if total != size:
        raise RuntimeError(
            f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size "
            f"at dimension {d}), but got split_sizes={list(sizes)}"
        )
    out, start = [], 0
    for i, s in enumerate(sizes):
        out.append(split_part.call(self, d, start, start + s, "split_with_sizes", i))
        start += s
    return tuple(out)


@composite(
    "split",
    method=True,
    examples=(Ex(S(4, 6), 2, 1), Ex(S(5, 2), 2), Ex(S(5, 3), [1, 4]), Ex(S(2, 5), (2, 0, 3), -1)),
)
def split(
    self: arg.Tensor, split_size_or_sections: arg.Int | arg.IntTuple, dim: arg.Int = 0
) -> tuple:
    """Split into pieces of one size (the last may be smaller) or of the listed sizes (views)."""
    d, size = _split_dim(self, dim)
    if type(split_size_or_sections) in (tuple, list):
        return _split_sizes(self, tuple(int(s) for s in split_size_or_sections), d, size)
    return _split_even(self, int(split_size_or_sections), d, size)


@composite("chunk", method=True, examples=(Ex(S(4, 6), 3, 1), Ex(S(5, 2), 2), Ex(S(3), 4)))
def chunk(self: arg.Tensor, chunks: arg.Int, dim: arg.Int = 0) -> tuple:
    """Split into ``chunks`` pieces of equal size (the last may be smaller; views)."""
    if self.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d, size = _split_dim(self, dim)
    if size == 0:  # as torch: ``chunks`` empty pieces (a split by size 0 would give one)
        return _split_sizes(self, (0,) * int(chunks), d, size)
    return _split_even(self, (size + int(chunks) - 1) // int(chunks), d, size)


@composite("unbind", method=True, examples=(Ex(S(3, 4)), Ex(S(3, 4), 1), Ex(S(2, 3, 2), -1)))
def unbind(self: arg.Tensor, dim: arg.Int = 0) -> tuple:
    """The slices along ``dim``, that dim removed (views)."""
    d = shapes.wrap_dim(dim, self.ndim)  # out of range first, as PyTorch
    if self.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    return tuple(split_part.call(self, d, i, None, "unbind", i) for i in range(self.shape[d]))


@composite("narrow", method=True, examples=(Ex(S(4, 6), 1, 1, 2), Ex(S(5), 0, -3, 3)))
def narrow(self: arg.Tensor, dim: arg.Int, start: arg.Int, length: arg.Int) -> Any:
    """``length`` elements along ``dim`` from ``start`` (a view)."""
    if self.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    d = shapes.wrap_dim(dim, self.ndim)
    size = self.shape[d]
    if not -size <= start <= size:
        raise IndexError(
            f"start out of range (expected to be in range of [{-size}, {size}], but got {start})"
        )
    start = int(start) % size if start < 0 else int(start)
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return index.call(self, _part_key(d, start, start + int(length)), "slice")


# --- reorders --------------------------------------------------------------------------------


def _unique_dims(dims: Any, ndim: int) -> tuple[int, ...]:
    """Dims wrapped, each once (torch's message names the first repeated one)."""
    out: list[int] = []
    for d in dims:
        w = shapes.wrap_dim(int(d), ndim)
        if w in out:
            raise RuntimeError(f"dim {w} appears multiple times in the list of dims")
        out.append(w)
    return tuple(out)


def _flip_norm(self: arg.Tensor, *dims: arg.Sizes) -> dict:
    return {"dims": _unique_dims(_sizes(dims), self.ndim)}


@op(
    grad_fn="FlipBackward0",
    dtype="same",
    shape=shapes.same,
    normalize=_flip_norm,
    examples=(Ex(S(3, 4), 0), Ex(S(2, 3, 4), (0, -1)), Ex(S(3, 2), 1, 0), Ex(S(3), ())),
)
def flip(xp: Any, self: Any, dims: tuple) -> Any:
    """Reverse the order of elements along ``dims`` (a copy)."""
    return xp.flip(self, dims).copy() if dims else self.copy()


@flip.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.flip(ctx.attrs["dims"]),)


def _int_tuple(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if type(v) in (tuple, list) else (int(v),)


def _roll_norm(self: arg.Tensor, shifts: arg.Int | arg.IntTuple, dims: arg.Dims = None) -> dict:
    shifts = _int_tuple(shifts)
    dims = None if dims is None or dims == () or dims == [] else _int_tuple(dims)
    if len(shifts) != (1 if dims is None else len(dims)):
        n = 0 if dims is None else len(dims)
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{n}")
    if dims is not None:
        dims = tuple(shapes.wrap_dim(d, self.ndim) for d in dims)
    return {"shifts": shifts, "dims": dims}


@op(
    layout=None,
    grad_fn="RollBackward0",
    dtype="same",
    shape=shapes.same,
    normalize=_roll_norm,
    examples=(
        Ex(S(3, 4), 1, 0),
        Ex(S(3, 4), 5),
        Ex(S(2, 3, 4), (1, -2), (0, 2)),
        Ex(S(3, 4), shifts=-1, dims=1),
        Ex(S(2, 3), (1, 1), (1, 1)),
    ),
)
def roll(xp: Any, self: Any, shifts: tuple, dims: tuple | None) -> Any:
    """Rotate elements along ``dims`` by ``shifts`` (over the flattened tensor without dims)."""
    if dims is None:
        return xp.roll(self, shifts[0])
    return xp.roll(self, shifts, axis=dims)


@roll.derivative
def _(ctx: Any, g: Any) -> tuple:
    back = tuple(-s for s in ctx.attrs["shifts"])
    return (g.roll(back, ctx.attrs["dims"]),)


def _movedim_order(self: Any, source: Any, destination: Any) -> tuple[int, ...]:
    """The permutation that moves ``source`` dims to ``destination``, as torch's movedim."""
    if (type(source) in (tuple, list)) != (type(destination) in (tuple, list)):
        raise TypeError(
            f"movedim() received an invalid combination of arguments - got "
            f"({type(source).__name__}, {type(destination).__name__}), but expected one of:\n"
            " * (int source, int destination)\n"
            " * (tuple of ints source, tuple of ints destination)\n"
        )
    src, dst = _int_tuple(source), _int_tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    n = self.ndim
    s = [shapes.wrap_dim(d, n) for d in src]
    d = [shapes.wrap_dim(k, n) for k in dst]
    if len(set(s)) != len(s):
        raise RuntimeError(f"movedim: repeated dim in `source` ({list(src)})")
    if len(set(d)) != len(d):
        raise RuntimeError(f"movedim: repeated dim in `destination` ({list(dst)})")
    order = [-1] * n
    for a, b in zip(s, d):
        order[b] = a
    rest = iter(i for i in range(n) if i not in s)
    return tuple(next(rest) if o == -1 else o for o in order)


@composite(
    "movedim",
    method=True,
    examples=(Ex(S(2, 3, 4), 0, 2), Ex(S(2, 3, 4), (0, 1), (2, 0)), Ex(S(2, 3), -1, 0)),
)
def movedim(
    self: arg.Tensor, source: arg.Int | arg.IntTuple, destination: arg.Int | arg.IntTuple
) -> Any:
    """Move dims ``source`` to positions ``destination`` (a permuted view)."""
    return self.permute(_movedim_order(self, source, destination))


@composite("moveaxis", method=True, examples=(Ex(S(2, 3, 4), 0, -1),))
def moveaxis(
    self: arg.Tensor, source: arg.Int | arg.IntTuple, destination: arg.Int | arg.IntTuple
) -> Any:
    """Alias of movedim."""
    return self.permute(_movedim_order(self, source, destination))


@composite("swapaxes", method=True, examples=(Ex(S(2, 3, 4), 0, 2),))
def swapaxes(self: arg.Tensor, axis0: arg.Int, axis1: arg.Int) -> Any:
    """Alias of transpose."""
    return self.transpose(axis0, axis1)


@composite("swapdims", method=True, examples=(Ex(S(2, 3), 1, 0),))
def swapdims(self: arg.Tensor, dim0: arg.Int, dim1: arg.Int) -> Any:
    """Alias of transpose."""
    return self.transpose(dim0, dim1)


# --- repeats ---------------------------------------------------------------------------------


def _check_storage(sizes: tuple, itemsize: int, numel_first: bool = False) -> int:
    """The bytes of a result of ``sizes``, with PyTorch's error when they overflow int64 (an
    op that counts elements first says so when their number overflows)."""
    numel = 1
    for n in sizes:
        numel *= n
    if numel_first and numel > arg.INT64_MAX:
        raise RuntimeError("numel: integer multiplication overflow")
    if numel * itemsize > arg.INT64_MAX:
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(sizes)}")
    return numel * itemsize


@contextmanager
def _allocating(nbytes: int) -> Iterator[None]:
    """An allocation that does not fit is PyTorch's RuntimeError (a session's byte limit,
    checked before, stays a SessionMemoryError)."""
    try:
        yield
    except SessionMemoryError:
        raise
    except MemoryError:
        raise RuntimeError(
            f"DefaultCPUAllocator: can't allocate memory: you tried to allocate {nbytes} bytes."
        ) from None


def _repeat_shape(a: tuple, repeats: tuple) -> tuple:
    if len(repeats) < len(a):
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor"
        )
    padded = (1,) * (len(repeats) - len(a)) + tuple(a)
    # Each size as torch computes it, in int64 (a product that overflows wraps, negative).
    out = tuple((r * s + 2**63) % 2**64 - 2**63 for r, s in zip(repeats, padded))
    for n in out:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(out)}")
    return out


def _repeat_norm(self: arg.Tensor, *repeats: arg.Sizes) -> dict:
    if not repeats:
        raise TypeError('repeat() missing 1 required positional arguments: "repeats"')
    repeats = _sizes(repeats)
    _check_storage(_repeat_shape(self.shape, repeats), self.dtype.itemsize)
    return {"repeats": repeats}


@op(
    grad_fn="RepeatBackward0",
    dtype="same",
    shape=_repeat_shape,
    normalize=_repeat_norm,
    function=False,
    examples=(
        Ex(S(2, 3), 2, 1),
        Ex(S(2, 3), 2, 1, 3),
        Ex(S(3), (2, 2)),
        Ex(S(2, 1), 1, 0),
        Ex(S(2, 2), 1, 1),
    ),
)
def repeat(xp: Any, self: Any, repeats: tuple) -> Any:
    """Tile the tensor ``repeats[i]`` times along each dim (new leading dims as needed)."""
    with _allocating(_check_storage(_repeat_shape(self.shape, repeats), self.itemsize)):
        return xp.tile(self, repeats)


@repeat.derivative
def _(ctx: Any, g: Any) -> tuple:
    # The result is (r0, s0, r1, s1, ...) blocks: sum over the repeat axes.
    shape = ctx.meta[0][0]
    repeats = ctx.attrs["repeats"]
    padded = (1,) * (len(repeats) - len(shape)) + tuple(shape)
    blocks: list[int] = []
    for r, s in zip(repeats, padded):
        blocks += [r, s]
    summed = g.reshape(*blocks).sum(tuple(range(0, len(blocks), 2)))
    return (summed.reshape(*shape),)


@composite("tile", method=True, examples=(Ex(S(2, 3), (2,)), Ex(S(3), (2, 2)), Ex(S(2, 3), 2, 1)))
def tile(self: arg.Tensor, *dims: arg.Sizes) -> Any:
    """Repeat, with ``dims`` padded with leading ones to the tensor's number of dims."""
    dims = _sizes(dims)
    return self.repeat((1,) * (self.ndim - len(dims)) + dims)


@composite(
    "repeat_interleave",
    method=True,
    examples=(
        Ex(S(3, 2), 2, 0),
        Ex(S(2, 3), 3),
        Ex(S(3), 2, dim=-1),
        Ex(S(2, 2), 0, 1),
        Ex(S(2, 3), 2, 1, output_size=6),
    ),
)
def repeat_interleave(
    self: arg.Tensor,
    repeats: arg.Int,
    dim: arg.Int | None = None,
    *,
    output_size: arg.Int | None = None,
) -> Any:
    """Repeat each element ``repeats`` times along ``dim`` (of the flattened tensor if None)."""
    if repeats < 0:
        raise RuntimeError("Repeats must be non-negative")
    if dim is None:
        self, d = self.flatten(), 0
    else:
        d = shapes.wrap_dim(dim, self.ndim)
    if output_size is not None and output_size != self.shape[d] * repeats:
        raise RuntimeError(
            "repeat_interleave: Invalid output_size, expected "
            f"{self.shape[d] * repeats} but got {output_size}"
        )
    # As torch: unsqueeze -> expand -> clone -> flatten (a view of the contiguous copy).
    sizes = self.shape[: d + 1] + (int(repeats),) + self.shape[d + 1 :]
    with _allocating(_check_storage(sizes, self.dtype.itemsize, numel_first=True)):
        return self.unsqueeze(d + 1).expand(sizes).clone().flatten(d, d + 1)


# --- the *_as forms, broadcast_to and unflatten ------------------------------------------------


@composite("view_as", method=True, function=False, examples=(Ex(S(2, 3), S(3, 2, grad=False)),))
def view_as(self: arg.Tensor, other: arg.Tensor) -> Any:
    """``self.view(other.size())``."""
    return self.view(other.shape)


@composite("reshape_as", method=True, function=False, examples=(Ex(S(2, 3), S(6, grad=False)),))
def reshape_as(self: arg.Tensor, other: arg.Tensor) -> Any:
    """``self.reshape(other.size())``."""
    return self.reshape(other.shape)


@composite(
    "expand_as",
    method=True,
    function=False,
    examples=(Ex(S(3, 1), S(2, 3, 4, grad=False)), Ex(S(3), S(3, grad=False))),
)
def expand_as(self: arg.Tensor, other: arg.Tensor) -> Any:
    """``self.expand(other.size())``."""
    return self.expand(other.shape)


@composite("broadcast_to", method=True, examples=(Ex(S(3), (2, 3)), Ex(S(2, 1), (2, -1, 4))))
def broadcast_to(self: arg.Tensor, size: arg.IntTuple) -> Any:
    """``self.expand(size)``: a broadcast view."""
    return self.expand(tuple(size))


@composite(
    "unflatten",
    method=True,
    examples=(Ex(S(4, 6), 1, (2, 3)), Ex(S(6), 0, (3, -1)), Ex(S(2, 3), -1, (1, 3, 1))),
)
def unflatten(self: arg.Tensor, dim: arg.Int, sizes: arg.IntTuple) -> Any:
    """Split dim ``dim`` into ``sizes`` (one may be -1): a view."""
    if self.ndim == 0:
        raise RuntimeError(
            "unflatten got an unexpected error:\n"
            "Dimension specified as 0 but tensor has no dimensions"
        )
    d = shapes.wrap_dim(dim, self.ndim)
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    n = self.shape[d]
    if sizes.count(-1) > 1:
        raise RuntimeError("unflatten got an unexpected error:\nonly one dimension can be inferred")
    known = 1
    for s in sizes:
        known *= 1 if s == -1 else s
    if (known != n) if -1 not in sizes else (known == 0 or n % known):
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {d} "
            f"({n}) in the input tensor"
        )
    sizes = shapes.reshape((n,), sizes)
    return self.view(self.shape[:d] + sizes + self.shape[d + 1 :])


# --- triangles and diagonals -----------------------------------------------------------------


def _triangle(name: str) -> Any:
    def shape(a: tuple, diagonal: int = 0) -> tuple:
        if len(a) < 2:
            raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
        return a

    @op(
        name,
        grad_fn=f"{name.capitalize()}Backward0",
        dtype="same",
        shape=shape,
        examples=(Ex(S(3, 4)), Ex(S(3, 4), 1), Ex(S(2, 3, 3), -1), Ex(S(4, 3), diagonal=-2)),
    )
    def triangle(xp: Any, self: arg.Tensor, diagonal: arg.Int = 0) -> Any:
        shape(self.shape)
        return getattr(xp, name)(self, diagonal)

    triangle.doc = (
        f"The {'upper' if name == 'triu' else 'lower'} triangle of the last two dims (from "
        "diagonal ``diagonal``), zeros elsewhere."
    )
    triangle.call.__doc__ = triangle.doc

    @triangle.derivative
    def _(ctx: Any, g: Any) -> tuple:
        return (getattr(g, name)(ctx.attrs["diagonal"]),)

    return triangle


triu = _triangle("triu")
tril = _triangle("tril")


def _diagonal_length(a: tuple, offset: int, dim1: int, dim2: int) -> int:
    return max(0, min(a[dim1] + min(offset, 0), a[dim2] - max(offset, 0)))


def _diagonal_shape(a: tuple, offset: int = 0, dim1: int = 0, dim2: int = 1) -> tuple:
    rest = tuple(n for i, n in enumerate(a) if i != dim1 and i != dim2)
    return rest + (_diagonal_length(a, offset, dim1, dim2),)


def _diagonal_view(xp: Any, a: Any, offset: int, dim1: int, dim2: int) -> Any:
    """A view of the diagonal (the last dim), writable as torch's."""
    out = xp.diagonal(a, offset, dim1, dim2)
    if xp is np and not out.flags.writeable and a.flags.writeable:
        out.flags.writeable = True  # NumPy makes diagonal views read-only; CuPy does not
    return out


def _diagonal_norm(
    self: arg.Tensor, offset: arg.Int = 0, dim1: arg.Int = 0, dim2: arg.Int = 1
) -> dict:
    d1, d2 = shapes.wrap_dim(dim1, self.ndim), shapes.wrap_dim(dim2, self.ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return {"offset": int(offset), "dim1": d1, "dim2": d2}


@op(
    view=True,
    grad_fn="DiagonalBackward0",
    dtype="same",
    shape=_diagonal_shape,
    layout=lambda a, lay, /, offset, dim1, dim2: layout.diagonal(a, lay, offset, dim1, dim2),
    normalize=_diagonal_norm,
    examples=(
        Ex(S(3, 4)),
        Ex(S(3, 4), 1),
        Ex(S(2, 3, 4), -1, 2, 0),
        Ex(S(4, 3), offset=-2),
        Ex(S(3, 2, 3), dim1=-1, dim2=0),
    ),
)
def diagonal(xp: Any, self: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Any:
    """The diagonal ``offset`` of the (dim1, dim2) planes, as the last dim (a view)."""
    return _diagonal_view(xp, self, offset, dim1, dim2)


@diagonal.derivative
def _(ctx: Any, g: Any) -> tuple:
    a = ctx.attrs
    return (diagonal_backward.call(g, ctx.meta[0][0], a["offset"], a["dim1"], a["dim2"]),)


@op(
    internal=True,
    grad_fn="DiagonalBackwardBackward0",
    dtype="same",
    shape=lambda g, shape, offset, dim1, dim2: shape,
    method=False,
    function=False,
    examples=(Ex(S(3), (3, 4), 1, 0, 1), Ex(S(3, 2), (2, 3, 2), 0, 2, 0)),
)
def diagonal_backward(xp: Any, self: Any, shape: tuple, offset: int, dim1: int, dim2: int) -> Any:
    """The adjoint of diagonal: ``self`` on that diagonal of zeros of ``shape``."""
    out = xp.zeros(shape, dtype=self.dtype)
    i = xp.arange(self.shape[-1])
    # Written through index arrays into a view of the (dim1, dim2) planes as the last two dims:
    # no diagonal view to write through (NumPy's are read-only).
    planes = xp.moveaxis(out, (dim1, dim2), (-2, -1))
    planes[..., i + max(-offset, 0), i + max(offset, 0)] = self
    return out


@diagonal_backward.derivative
def _(ctx: Any, g: Any) -> tuple:
    a = ctx.attrs
    return (g.diagonal(a["offset"], a["dim1"], a["dim2"]),)


def _diag_shape(a: tuple, diagonal: int = 0) -> tuple:
    if len(a) == 1:
        n = a[0] + abs(diagonal)
        return (n, n)
    if len(a) == 2:
        return (_diagonal_length(a, diagonal, 0, 1),)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {len(a)}D")


def _diag_name(a: tuple, diagonal: int = 0) -> str:
    return "DiagEmbedBackward0" if len(a[0]) == 1 else "DiagonalBackward0_copy"


_diag_name.common = "DiagEmbedBackward0"  # type: ignore[attr-defined]


@op(
    grad_fn=_diag_name,
    dtype="same",
    shape=_diag_shape,
    examples=(Ex(S(3)), Ex(S(3), 1), Ex(S(2), diagonal=-2), Ex(S(3, 4)), Ex(S(4, 3), -1)),
)
def diag(xp: Any, self: arg.Tensor, diagonal: arg.Int = 0) -> Any:
    """A square matrix with ``self`` on diagonal ``diagonal`` (1-D), or that diagonal (2-D)."""
    _diag_shape(self.shape)
    out = xp.diag(self, diagonal)
    return out.copy() if self.ndim == 2 else out


@diag.derivative
def _(ctx: Any, g: Any) -> tuple:
    shape, k = ctx.meta[0][0], ctx.attrs["diagonal"]
    if len(shape) == 1:
        return (g.diagonal(k),)
    return (diagonal_backward.call(g, shape, k, 0, 1),)


def _trace_dtype(self: Any) -> Any:
    if self.dtype.name == "bool":
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    return self.dtype


def _trace_shape(a: tuple) -> tuple:
    if len(a) != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {len(a)}")
    return ()


@op(
    grad_fn="TraceBackward0",
    dtype=_trace_dtype,
    shape=_trace_shape,
    examples=(Ex(S(3, 3)), Ex(S(2, 4)), Ex(S(4, 1))),
)
def trace(xp: Any, self: arg.Tensor) -> Any:
    """The sum of a matrix's main diagonal."""
    _trace_shape(self.shape)
    if self.dtype.kind == "b":
        raise NotImplementedError("\"trace\" not implemented for 'Bool'")
    return xp.asarray(xp.trace(self))


@trace.derivative
def _(ctx: Any, g: Any) -> tuple:
    shape = ctx.meta[0][0]
    n = min(shape)
    return (diagonal_backward.call(g.expand(n), shape, 0, 0, 1),)
