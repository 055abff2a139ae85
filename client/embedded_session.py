"""The embedded session: the engine in this process, no server. Tensors are the engine's own
(the fastest path); the session adds its own seeded random stream, as a server session has."""

from __future__ import annotations

import itertools
import types
from typing import Any

import gradd.engine as ge
from gradd.engine import autograd as engine_autograd
from gradd.engine import functional as engine_functional
from gradd.engine import linalg as engine_linalg
from gradd.engine.random_state import DRAWING_OPS, use_generator

from .autograd_namespace import autograd_namespace
from .errors import UnimplementedError
from .session_base import Session

_ids = itertools.count(1)
_FUNCTIONS = {
    name: getattr(ge, name)
    for name in {d.function for d in ge.OPS.values() if d.function}
    if hasattr(ge, name)
}

_OP_OF_FUNCTION = {d.function: name for name, d in ge.OPS.items() if d.function}


def _op_of(function: str) -> str | None:
    return _OP_OF_FUNCTION.get(function)


def _drawing(fn: Any, gen: Any) -> Any:
    """``fn`` drawing from ``gen`` (a session's stream)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        with use_generator(gen):
            return fn(*args, **kwargs)

    call.__name__ = call.__qualname__ = getattr(fn, "__name__", "op")
    call.__doc__ = fn.__doc__
    return call


def _factory_method(fdef: Any) -> Any:
    """``s.<factory>``: the engine's factory on the session's device, drawing (if it draws)
    from the session's stream; a tensor overload (normal(mean_tensor)) runs its op."""

    def method(self: EmbeddedSession, *args: Any, **kw: Any) -> ge.Tensor:
        op = fdef.op_for(args, kw)
        if op is not None:
            kw.pop("generator", None)
            with use_generator(self._gen):
                return ge.OPS[op].call(*args, **kw)
        if fdef.draws:
            kw["generator"] = kw.get("generator") or self._gen
        return fdef.fn(*args, **self._dev(kw))

    method.__name__ = method.__qualname__ = fdef.name
    method.__doc__ = fdef.fn.__doc__
    return method


class EmbeddedSession(Session):
    """``gradd.connect()`` without a target: the same API, computed in-process."""

    def __init__(
        self, *, device: Any = None, seed: int | None = None, generator: Any = None
    ) -> None:
        self.id = f"embedded-{next(_ids)}"
        self.device = ge.get_device(device)
        # A stream of its own; gradd.torch's default session takes the process default, which
        # tensors' own drawing methods (t.uniform_()) use, so torch.manual_seed seeds them too.
        self._gen = generator if generator is not None else ge.Generator()
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
        self.autograd = autograd_namespace(engine_autograd.backward, engine_autograd.grad)
        self.linalg = types.SimpleNamespace(
            **{n: getattr(engine_linalg, n) for n in engine_linalg.NAMES}
        )
        # Ops that draw (rand_like, bernoulli, ...) draw from this session's stream.
        drawing = {n: _drawing(f, gen) for n, f in _FUNCTIONS.items() if _op_of(n) in DRAWING_OPS}
        self._own_functions = {**_FUNCTIONS, **drawing, "dropout": dropout}

    def _functions(self) -> dict[str, Any]:
        return self._own_functions

    def compile(self, fn: Any = None, *, fullgraph: bool = False, **options: Any) -> Any:
        """``torch.compile``: the gradd calls ``fn`` makes are traced on its first call and
        replayed by later calls whose guards hold (see gradd.embedded_compile); a decorator
        without ``fn``. ``options`` (backend, mode, dynamic, ...) change nothing."""
        from .embedded_compile import EmbeddedCompiledFunction

        if fn is None:
            return lambda f: EmbeddedCompiledFunction(f, fullgraph)
        return EmbeddedCompiledFunction(fn, fullgraph)

    def manual_seed(self, seed: int) -> Any:
        """Seed this session's random stream (``torch.manual_seed``)."""
        return self._gen.manual_seed(seed)

    def _drawing(self) -> Any:
        """Draw from this session's stream inside the block (nn.init, module construction)."""
        return use_generator(self._gen)

    def tensor(
        self, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
    ) -> ge.Tensor:
        """A new leaf tensor copied from ``data`` (lists, scalars, NumPy arrays, tensors)."""
        return ge.tensor(
            data, dtype=dtype, device=device or self.device, requires_grad=requires_grad
        )

    def as_tensor(self, data: Any, dtype: Any = None, device: Any = None) -> ge.Tensor:
        """``data`` itself when already a tensor of that dtype and device, else a new tensor."""
        return ge.as_tensor(data, dtype=dtype, device=device or self.device)

    def _dev(self, kw: dict) -> dict:
        if kw.get("device") is None:
            kw["device"] = self.device
        return kw

    def available_devices(self) -> list[str]:
        """The devices this process can use: "cpu", and "cuda", "cuda:N" with a GPU (CuPy)."""
        return ge.available_devices()

    def watch(self, **_: Any) -> Any:
        """Events need a server: an embedded session has none to stream them."""
        raise UnimplementedError(
            "watch() streams a server session's events; connect to a gradd-server "
            "(gradd.connect('host:port')) to watch training"
        )

    def __repr__(self) -> str:
        return f"<gradd embedded session {self.id} on {self.device}>"


for _fdef in ge.FACTORIES.values():
    setattr(EmbeddedSession, _fdef.name, _factory_method(_fdef))
del _fdef
