"""``gradd.engine.linalg``: the linear-algebra functions, as ``torch.linalg``.

Derived from the op table: every public op named ``linalg_<name>`` is ``linalg.<name>``
(``linalg_vector_norm`` is ``linalg.vector_norm``, the name the server knows it by).
"""

from __future__ import annotations

from typing import Any

from . import ops as _ops  # noqa: F401  (the table must be filled before it is read)
from .op_table import OPS

PREFIX = "linalg_"
# linalg name -> op name
NAMES = {n.removeprefix(PREFIX): n for n in sorted(OPS) if n.startswith(PREFIX)}


def __getattr__(name: str) -> Any:
    if name in NAMES:
        return OPS[NAMES[name]].call
    raise AttributeError(f"module 'gradd.engine.linalg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(NAMES)
