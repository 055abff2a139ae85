"""The embedded session: the engine in this process, no server. Tensors are the engine's own
(the fastest path); the session adds its own seeded random stream, as a server session has."""

from __future__ import annotations

import itertools
import types
from typing import Any

import gradd.engine as ge
from gradd.engine import functional as engine_functional
from gradd.engine import linalg as engine_linalg
from gradd.engine.random_state import use_generator

from .errors import UnimplementedError
from .session_base import Session

_ids = itertools.count(1)
_FUNCTIONS = {
    name: getattr(ge, name)
    for name in {d.function for d in ge.OPS.values() if d.function}
    if hasattr(ge, name)
}


class EmbeddedSession(Session):
    """``gradd.connect()`` without a target: the same API, computed in-process."""

    def __init__(self, *, device: Any = None, seed: int | None = None) -> None:
        self.id = f"embedded-{next(_ids)}"
        self.device = ge.get_device(device)
        self._gen = ge.Generator()
        if seed is not None:
            self._gen.manual_seed(seed)
        gen = self._gen

        def dropout(input: Any, p: float = 0.5, training: bool = True) -> Any:  # noqa: A002
            with use_generator(gen):
                return engine_functional.dropout(input, p, training)

        dropout.__doc__ = engine_functional.dropout.__doc__
        self.functional = types.SimpleNamespace(
            **{n: getattr(engine_functional, n) for n in engine_functional.NAMES}
        )
        self.functional.dropout = dropout
        self.linalg = types.SimpleNamespace(
            **{n: getattr(engine_linalg, n) for n in engine_linalg.NAMES}
        )
        self._own_functions = {**_FUNCTIONS, "dropout": dropout}

    def _functions(self) -> dict[str, Any]:
        return self._own_functions

    def manual_seed(self, seed: int) -> Any:
        """Seed this session's random stream (``torch.manual_seed``)."""
        return self._gen.manual_seed(seed)

    def tensor(
        self, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
    ) -> ge.Tensor:
        """A new leaf tensor copied from ``data`` (lists, scalars, NumPy arrays, tensors)."""
        return ge.tensor(
            data, dtype=dtype, device=device or self.device, requires_grad=requires_grad
        )

    def randn(self, *size: Any, generator: Any = None, **kw: Any) -> ge.Tensor:
        """Standard normal samples from the session's stream."""
        return ge.randn(*size, generator=generator or self._gen, **self._dev(kw))

    def rand(self, *size: Any, generator: Any = None, **kw: Any) -> ge.Tensor:
        """Uniform samples in [0, 1) from the session's stream."""
        return ge.rand(*size, generator=generator or self._gen, **self._dev(kw))

    def zeros(self, *size: Any, **kw: Any) -> ge.Tensor:
        """A tensor of zeros."""
        return ge.zeros(*size, **self._dev(kw))

    def ones(self, *size: Any, **kw: Any) -> ge.Tensor:
        """A tensor of ones."""
        return ge.ones(*size, **self._dev(kw))

    def full(self, size: Any, fill_value: Any, **kw: Any) -> ge.Tensor:
        """A tensor filled with ``fill_value``."""
        return ge.full(size, fill_value, **self._dev(kw))

    def arange(self, start: Any, end: Any = None, step: Any = 1, **kw: Any) -> ge.Tensor:
        """Evenly spaced values in [start, end)."""
        return ge.arange(start, end, step, **self._dev(kw))

    def _dev(self, kw: dict) -> dict:
        if kw.get("device") is None:
            kw["device"] = self.device
        return kw

    def watch(self, **_: Any) -> Any:
        """Events need a server: an embedded session has none to stream them."""
        raise UnimplementedError(
            "watch() streams a server session's events; connect to a gradd-server "
            "(gradd.connect('host:port')) to watch training"
        )

    def __repr__(self) -> str:
        return f"<gradd embedded session {self.id} on {self.device}>"
