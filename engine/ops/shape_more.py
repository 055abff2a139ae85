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

from typing import Any

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import composite, op
from .shape_ops import index, index_backward

# --- splits ----------------------------------------------------------------------------------

_PART_NAMES = {
    "split": "SplitBackward0",
    "split_with_sizes": "SplitWithSizesBackward0",
    "unbind": "UnbindBackward0",
}


def _part_key(dim: int, start: int, stop: int | None) -> tuple:
    """The index of one piece: a slice along ``dim``, or (``stop`` None) one position."""
    return (slice(None),) * dim + (start if stop is None else slice(start, stop),)


def _part_shape(a: tuple, dim: int, start: int, stop: int | None, kind: str) -> tuple:
    if stop is None:
        return a[:dim] + a[dim + 1 :]
    return a[:dim] + (stop - start,) + a[dim + 1 :]


def _part_name(a: Any, dim: int, start: int, stop: int | None, kind: str) -> str:
    return _PART_NAMES[kind]


_part_name.common = "SplitBackward0"  # type: ignore[attr-defined]


@op(
    view=True,
    internal=True,
    grad_fn=_part_name,
    shape=_part_shape,
    method=False,
    function=False,
    examples=(
        Ex(S(4, 6), 1, 2, 4, "split"),
        Ex(S(5, 3), 0, 1, 5, "split_with_sizes"),
        Ex(S(3, 4), 1, 2, None, "unbind"),
    ),
)
def split_part(xp: Any, self: Any, dim: int, start: int, stop: int | None, kind: str) -> Any:
    """One piece of a split (``kind`` names PyTorch's op): a view of ``self``."""
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
        split_part.call(self, d, i * split_size, min((i + 1) * split_size, size), "split")
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
    for s in sizes:
        out.append(split_part.call(self, d, start, start + s, "split_with_sizes"))
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
    if self.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = shapes.wrap_dim(dim, self.ndim)
    return tuple(split_part.call(self, d, i, None, "unbind") for i in range(self.shape[d]))


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
