"""``pad``: constant, reflect, replicate and circular padding, with PyTorch's limits and errors.

``constant`` is PyTorch's ``constant_pad_nd`` (negative pads crop; its gradient is itself with
the pads negated). The other modes pick, along each padded dim, the source position of every
output position (an index computed from shapes alone, on the host); their gradient adds each
output's gradient back at its source (``pad_nd_backward``, whose own gradient is the padding
again). PyTorch names those nodes ``ReflectionPad2DBackward0`` and so on; its circular mode is a
series of slice copies (``CopySlices``), which gradd records as narrows and a ``cat`` per dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import dtypes as dt
from ..op_examples import Ex, S
from ..op_table import composite, op
from .indexing import _scatter_add_at

_NODE_KIND = {"reflect": "ReflectionPad", "replicate": "ReplicationPad"}


def _pairs(pad: Sequence[int]) -> list[tuple[int, int]]:
    """(left, right) pads from the last dim backwards, as PyTorch lists them."""
    return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]


# -- constant ---------------------------------------------------------------------------------


def _constant_shape(a: tuple, pad: tuple, value: Any = 0) -> tuple:
    out = list(a)
    for i, (lo, hi) in enumerate(_pairs(pad)):
        d = len(a) - 1 - i
        out[d] = a[d] + lo + hi
        if out[d] < 0:
            raise RuntimeError("narrow(): length must be non-negative.")
    return tuple(out)


def _overlap(n: int, lo: int, hi: int) -> tuple[slice, slice]:
    """Where the kept part of a dim of size n sits in the input and in the padded output."""
    src = slice(max(-lo, 0), n - max(-hi, 0))
    start = max(lo, 0)
    return src, slice(start, start + max(src.stop - src.start, 0))


@op(
    internal=True,
    grad_fn="ConstantPadNdBackward0",
    dtype="same",
    shape=_constant_shape,
    method=False,
    function=False,
    examples=(Ex(S(2, 3), (1, 2), 0.5), Ex(S(2, 3, 4), (-1, 1, 2, -1), 0)),
)
def constant_pad_nd(xp: Any, self: Any, pad: tuple, value: Any = 0) -> Any:
    """``self`` with ``pad`` (left, right pairs from the last dim) filled with ``value``."""
    shape = _constant_shape(self.shape, pad)
    out = xp.full(shape, value, dtype=self.dtype)
    src = [slice(None)] * self.ndim
    dst = [slice(None)] * self.ndim
    for i, (lo, hi) in enumerate(_pairs(pad)):
        d = self.ndim - 1 - i
        src[d], dst[d] = _overlap(self.shape[d], lo, hi)
    out[tuple(dst)] = self[tuple(src)]
    return out


@constant_pad_nd.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (constant_pad_nd.call(g, tuple(-p for p in ctx.attrs["pad"]), 0),)


# -- reflect, replicate, circular: each output position's source ------------------------------


def _sources(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    j = np.arange(-lo, n + hi, dtype=np.int64)
    if mode == "reflect":
        j = np.abs(j)
        return np.where(j >= n, 2 * (n - 1) - j, j)
    if mode == "replicate":
        return np.clip(j, 0, n - 1)
    # circular: negative pads crop first, then the rest repeats around the kept part
    # (PyTorch's: (-1, 2) on [0, 1, 2, 3] is [1, 2, 3, 1, 2])
    first = max(-lo, 0)
    m = n - first - max(-hi, 0)
    if m <= 0:
        return np.zeros(0, dtype=np.int64)
    return first + np.arange(-max(lo, 0), m + max(hi, 0), dtype=np.int64) % m


def _node_name(mode: str, n_pads: int, backward: bool = False) -> str:
    return f"{_NODE_KIND[mode]}{n_pads}DBackward{'Backward' if backward else ''}0"


def _index_shape(a: tuple, pad: tuple, mode: str) -> tuple:
    out = list(a)
    for i, (lo, hi) in enumerate(_pairs(pad)):
        out[len(a) - 1 - i] += lo + hi
    return tuple(out)


@op(
    internal=True,
    grad_fn=lambda a, pad, mode: _node_name(mode, len(pad) // 2),
    dtype="same",
    shape=_index_shape,
    method=False,
    function=False,
    examples=(
        Ex(S(2, 4), (2, 1), "reflect"),
        Ex(S(1, 2, 3, 4), (1, 2, 2, 0), "reflect"),
        Ex(S(2, 3, 4), (3, -1), "replicate"),
        Ex(S(1, 1, 2, 2, 3), (1, 1, 2, 0, 1, 1), "replicate"),
    ),
)
def pad_nd(xp: Any, self: Any, pad: tuple, mode: str) -> Any:
    """Reflect or replicate padding of checked arguments."""
    out = self
    for i, (lo, hi) in enumerate(_pairs(pad)):
        d = self.ndim - 1 - i
        out = xp.take(out, xp.asarray(_sources(self.shape[d], lo, hi, mode)), axis=d)
    return out


@pad_nd.derivative
def _(ctx: Any, g: Any) -> tuple:
    a = ctx.attrs
    return (pad_nd_backward.call(g, ctx.meta[0][0], a["pad"], a["mode"]),)


@op(
    internal=True,
    grad_fn=lambda g, shape, pad, mode: _node_name(mode, len(pad) // 2, backward=True),
    dtype="same",
    shape=lambda g, shape, pad, mode: tuple(shape),
    method=False,
    function=False,
    examples=(
        Ex(S(2, 7), (2, 4), (2, 1), "reflect"),
        Ex(S(2, 3, 6), (2, 3, 4), (3, -1), "replicate"),
    ),
)
def pad_nd_backward(xp: Any, self: Any, shape: tuple, pad: tuple, mode: str) -> Any:
    """The adjoint of pad_nd: each output's gradient added back at its source position."""
    g = self
    for i, (lo, hi) in enumerate(_pairs(pad)):
        d = len(shape) - 1 - i
        part = list(g.shape)
        part[d] = shape[d]
        acc = xp.zeros(part, dtype=g.dtype)
        key = (slice(None),) * d + (xp.asarray(_sources(shape[d], lo, hi, mode)),)
        _scatter_add_at(xp, acc, key, g)
        g = acc
    return g


@pad_nd_backward.derivative
def _(ctx: Any, g: Any) -> tuple:
    a = ctx.attrs
    return (pad_nd.call(g, a["pad"], a["mode"]),)


# -- the public function ----------------------------------------------------------------------

_LIMITS = """Supported combinations for non-constant padding:
  - 2D or 3D input: padding size = 2 (pads last dimension)
  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)
  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)"""
_AXES = "DHW"


def _check_index_padding(shape: tuple, pad: tuple, mode: str) -> None:
    """PyTorch's checks of reflect/replicate/circular padding, in its order and words."""
    ndim, k = len(shape), len(pad) // 2
    if len(pad) not in (2, 4, 6) or ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {ndim}D input tensor.\n{_LIMITS}"
        )
    if mode == "circular":
        for i, (lo, hi) in enumerate(_pairs(pad)):
            if max(lo, hi) > shape[ndim - 1 - i]:
                raise RuntimeError("Padding value causes wrapping around more than once.")
        return
    if any(n == 0 for n in shape[ndim - k - 1 + (ndim == k + 1) :]):
        raise RuntimeError(
            f"Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 batch size and "
            f"other non-zero dimensions for input, but got: {list(shape)}"
        )
    if mode == "reflect":
        for i, (lo, hi) in enumerate(_pairs(pad)):
            d = ndim - 1 - i
            if lo >= shape[d] or hi >= shape[d]:
                raise RuntimeError(
                    f"Argument #{4 + 2 * i}: Padding size should be less than the corresponding "
                    f"input dimension, but got: padding ({lo}, {hi}) at dimension {d} of input "
                    f"{list(shape)}"
                )
    out = _index_shape(shape, pad, mode)
    if any(n < 1 for n in out[ndim - k :]):
        axes = _AXES[3 - k :]
        sizes = ", ".join(f"{a}: {n}" for a, n in zip(axes, shape[ndim - k :]))
        got = " ".join(f"{a}: {n}" for a, n in zip(axes, out[ndim - k :]))
        raise RuntimeError(f"input ({sizes}) is too small. Calculated output {got}")


@composite(
    "pad",
    examples=(
        Ex(S(2, 3), (1, 2)),
        Ex(S(2, 3, 4), (1, -1, 0, 2), value=0.5),
        Ex(S(1, 2, 3, 4), (2, 1, 1, 2), mode="reflect"),
        Ex(S(2, 4), (3, 2), mode="replicate"),
        Ex(S(1, 2, 3), (2, 3), mode="circular"),
        Ex(S(1, 1, 2, 3), (1, 2, -1, 1), mode="circular"),
    ),
)
def pad(
    input: arg.Tensor,  # noqa: A002
    pad: arg.IntTuple,
    mode: arg.Str = "constant",
    value: arg.Number | None = None,
) -> Any:
    """Pad the last ``len(pad) // 2`` dims of ``input`` (pad lists left, right from the last)."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(
            "Padding length should be less than or equal to two times the input dimension but "
            f"got padding length {len(pad)} and input of dimension {input.ndim}"
        )
    if mode == "constant":
        v = 0 if value is None else value
        if not input.dtype.is_floating_point and input.dtype is not dt.bool_:
            v = int(v)
        return constant_pad_nd.call(input, pad, v)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    shape = tuple(input.shape)
    _check_index_padding(shape, pad, mode)
    if mode != "circular":
        return pad_nd.call(input, pad, mode)
    out = input
    for i, (lo, hi) in enumerate(_pairs(pad)):
        out = _wrap_dim(out, input.ndim - 1 - i, lo, hi)
    return out


def _wrap_dim(x: Any, d: int, lo: int, hi: int) -> Any:
    """Circular padding of dim ``d`` as narrows joined by one cat: its source positions in
    contiguous runs."""
    from .shape_ops import cat

    index = _sources(x.shape[d], lo, hi, "circular")
    if index.size == 0:
        return x.narrow(d, 0, 0)
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [index.size]))
    parts = [x.narrow(d, int(index[a]), int(b - a)) for a, b in zip(starts, ends)]
    return parts[0] if len(parts) == 1 else cat.call(parts, d)
