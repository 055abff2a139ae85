"""PyTorch-style ``repr`` for tensors: ``tensor([1.0235], requires_grad=True)``."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import device
from .device import to_host


def _format_floats(a: np.ndarray) -> Any:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return lambda x: _special(x) or f"{x:.4f}"
    absf = np.abs(finite.astype(np.float64))  # float16's max / min can overflow
    nz = absf[absf > 0]
    spread = nz.size and (nz.max() / nz.min() > 1000.0 or nz.max() > 1e8)
    if np.all(finite == np.round(finite)):  # PyTorch's int mode: "2." unless widely spread
        if not spread:
            return lambda x: _special(x) or f"{x:.0f}."
    elif not (spread or (nz.size and nz.min() < 1e-4)):
        return lambda x: _special(x) or f"{x:.4f}"
    return lambda x: _special(x) or f"{x:.4e}"


def _special(x: float) -> str | None:
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


THRESHOLD, EDGE, LINEWIDTH = 1000, 3, 80  # PyTorch's print options


def format_values(a: np.ndarray, cut: tuple[bool, ...] | None = None) -> str:
    """The bracketed body PyTorch prints for an array, aligned the same way; ``cut`` marks the
    dimensions that ``corners`` summarized (printed with ``...`` between their edges)."""
    if a.dtype.kind == "f":
        fmt = _format_floats(a)
    elif a.dtype.kind == "b":
        fmt = lambda x: "True" if x else "False"  # noqa: E731
    else:
        fmt = lambda x: str(int(x))  # noqa: E731
    if a.ndim == 0:
        return fmt(a.item())
    strs = np.vectorize(fmt, otypes=[object])(a) if a.size else np.empty(a.shape, dtype=object)
    width = max((len(s) for s in strs.flat), default=0)
    return _nest(strs, width, 1 + len("tensor("), cut or (False,) * a.ndim)


def _nest(strs: np.ndarray, width: int, indent: int, cut: tuple[bool, ...]) -> str:
    if strs.ndim == 1:
        items = [s.rjust(width) for s in strs]
        if cut[0]:
            items[EDGE:EDGE] = [" ..."]
        per_line = max(1, (LINEWIDTH - indent + 1) // (width + 2))
        lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * indent).join(lines) + "]"
    rows = [_nest(s, width, indent + 1, cut[1:]) for s in strs]
    if cut[0]:
        rows[EDGE:EDGE] = ["..."]
    sep = "," + "\n" * (strs.ndim - 1) + " " * indent
    return "[" + sep.join(rows) + "]"


def corners(data: Any) -> tuple[Any, tuple[bool, ...]]:
    """What PyTorch prints of a large tensor: the first and last EDGE entries of every longer
    dimension, gathered where the data lives (so only they are copied to the host)."""
    if data.size <= THRESHOLD:
        return data, (False,) * data.ndim
    xp = np if isinstance(data, np.ndarray) else device._cuda_module
    cut = tuple(n > 2 * EDGE for n in data.shape)
    for dim, long in enumerate(cut):
        if long:
            head = data[(slice(None),) * dim + (slice(0, EDGE),)]
            tail = data[(slice(None),) * dim + (slice(-EDGE, None),)]
            data = xp.concatenate([head, tail], axis=dim)
    return data, cut


def tensor_repr(t: Any) -> str:
    """Render ``t`` the way ``repr(torch_tensor)`` does."""
    shown, cut = corners(t._data)
    a = to_host(shown)
    body = format_values(a, cut)
    extras = []
    if t._dev.type != "cpu":
        extras.append(f"device='{t._dev}'")
    if t._data.size == 0 and t._data.ndim > 1:
        extras.append(f"size={tuple(t._data.shape)}")
    if a.dtype not in (np.float32, np.int64, np.bool_):
        extras.append(f"dtype={t.dtype!r}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name().rsplit('::', 1)[-1]}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + ", ".join([body, *extras]) + ")"
