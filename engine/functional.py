"""``gradd.engine.functional``: the functional ops, as ``torch.nn.functional``.

The namespace is derived from the op table: every op declared in an ``ops/nn*.py`` module
(``nn``, ``nn_activations``, ``nn_losses``) plus the activations PyTorch also offers as
``torch.relu``, ``torch.sigmoid`` and ``torch.tanh`` (declared with the other unary ops).
"""

from __future__ import annotations

from typing import Any

from . import ops as _ops  # noqa: F401  (the table must be filled before it is read)
from .op_table import OPS

_ACTIVATIONS = ("relu", "sigmoid", "tanh")


def is_functional(name: str) -> bool:
    """Whether op ``name`` is in ``nn.functional`` (its family module is an ``nn*`` one)."""
    family = OPS[name].forward.__module__.rsplit(".", 1)[-1]
    return family.startswith("nn") or name in _ACTIVATIONS


NAMES = tuple(sorted(n for n in OPS if is_functional(n)))


def __getattr__(name: str) -> Any:
    if name in NAMES:
        return OPS[name].call
    raise AttributeError(f"module 'gradd.engine.functional' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(NAMES)
