"""``gradd.engine.functional``: the functional ops, as ``torch.nn.functional``.

The namespace is derived from the op table: every op declared in ``ops/nn.py`` plus the
activations PyTorch also offers there.
"""

from __future__ import annotations

from typing import Any

from . import ops as _ops  # noqa: F401  (the table must be filled before it is read)
from .op_table import OPS

_ACTIVATIONS = ("relu", "sigmoid", "tanh")
NAMES = tuple(
    sorted(n for n, d in OPS.items() if d.forward.__module__.endswith(".nn") or n in _ACTIVATIONS)
)


def __getattr__(name: str) -> Any:
    if name in NAMES:
        return OPS[name].call
    raise AttributeError(f"module 'gradd.engine.functional' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(NAMES)
