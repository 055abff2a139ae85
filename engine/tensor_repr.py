"""PyTorch-style ``repr`` for tensors: ``tensor([1.0235], requires_grad=True)``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .device import to_host


def _format_floats(a: np.ndarray) -> Any:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return lambda x: _special(x) or f"{x:.4f}"
    absf = np.abs(finite)
    if np.all(finite == np.round(finite)) and absf.max() < 1e8:
        return lambda x: _special(x) or f"{x:.0f}."
    nz = absf[absf > 0]
    sci = nz.size and (nz.max() / nz.min() > 1000.0 or nz.max() > 1e8 or nz.min() < 1e-4)
    if sci:
        return lambda x: _special(x) or f"{x:.4e}"
    return lambda x: _special(x) or f"{x:.4f}"


def _special(x: float) -> str | None:
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def format_values(a: np.ndarray) -> str:
    """The bracketed body PyTorch prints for an array, aligned the same way."""
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
    return _nest(strs, width, 1 + len("tensor("))


def _nest(strs: np.ndarray, width: int, indent: int) -> str:
    if strs.ndim == 1:
        return "[" + ", ".join(s.rjust(width) for s in strs) + "]"
    sep = "," + "\n" * (strs.ndim - 1) + " " * indent
    return "[" + sep.join(_nest(s, width, indent + 1) for s in strs) + "]"


def tensor_repr(t: Any) -> str:
    """Render ``t`` the way ``repr(torch_tensor)`` does."""
    a = to_host(t._data)
    body = format_values(a)
    extras = []
    if t._dev.type != "cpu":
        extras.append(f"device='{t._dev.type}:0'")
    if a.size == 0 and a.ndim > 1:
        extras.append(f"size={tuple(a.shape)}")
    if a.dtype not in (np.float32, np.int64, np.bool_):
        extras.append(f"dtype=gradd.{t.dtype.name}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + ", ".join([body, *extras]) + ")"
