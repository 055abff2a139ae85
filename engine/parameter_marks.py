"""Which tensors are ``nn.Parameter``s. A parameter is an ordinary tensor of its kind (the
engine's and the SDK's fast paths test ``type(t) is Tensor``), marked here by identity: the
mark makes ``isinstance(t, nn.Parameter)`` hold and its repr read ``Parameter containing:``."""

from __future__ import annotations

import weakref
from typing import Any

PREFIX = "Parameter containing:\n"
_marked: dict[int, weakref.ref] = {}  # id -> weak reference, dropped when the tensor dies


def mark_parameter(t: Any) -> Any:
    """Mark ``t`` as a parameter; returns it."""
    key = id(t)
    _marked[key] = weakref.ref(t, lambda _ref: _marked.pop(key, None))
    return t


def is_parameter(t: Any) -> bool:
    """Whether ``t`` itself (not a view or copy of it) was made a parameter."""
    ref = _marked.get(id(t))
    return ref is not None and ref() is t


def repr_prefix(t: Any) -> str:
    """What a parameter's repr starts with (PyTorch's), else nothing."""
    return PREFIX if is_parameter(t) else ""
