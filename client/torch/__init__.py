"""``import gradd.torch as torch``: PyTorch's ``torch`` namespace on a gradd session.

A program written for PyTorch runs with only its import changed::

    import gradd.torch as torch
    import gradd.torch.nn.functional as F

Every name is looked up, when it is read, on the current session (``gradd.torch.session()``):
made on first use from ``GRADD_TARGET`` (``host:port`` of a gradd-server; unset: embedded, the
engine in this process), or the one installed by ``gradd.torch.use(s)`` (also a context
manager that puts the previous one back). So ``torch.randn``, ``torch.cat``, ``torch.float``,
``torch.no_grad`` are the session's, and ops the session grows appear here as they do there.
Names gradd does not have raise ``AttributeError`` saying so.

The current session is one for the whole process (as PyTorch's global state is): every thread
sees the same one, and ``use()`` switches it for all of them. Making the default session is
locked, so threads racing to first use share one. A session itself is meant for one thread at
a time: threads that train at once should each open their own (``gradd.connect()``).
"""

import typing as _typing

from . import _state, autograd, cuda, nn
from ._state import use

# Session members that are not torch's (or mean something else there): never torch.<name>.
_SESSION_ONLY = frozenset(
    {"id", "target", "seed", "functional", "synchronize", "flush", "watch", "close", "bool_"}
    | {"available_devices"}
)


def session() -> _typing.Any:
    """The gradd session ``gradd.torch`` works on now (``close()``, ``synchronize()``, ...)."""
    return _state.current()


def is_tensor(obj: _typing.Any) -> bool:
    """True for a gradd tensor of any session, embedded or remote (``torch.is_tensor``)."""
    import gradd

    return isinstance(obj, gradd.Tensor)


class _DeviceType(type):
    def __instancecheck__(cls, obj: _typing.Any) -> bool:
        from gradd.engine import Device

        return isinstance(obj, Device)


class device(metaclass=_DeviceType):  # noqa: N801 - torch.device
    """``torch.device("cpu")``, ``torch.device("cuda")``, ``torch.device("cuda", 1)``, or
    ``"cuda:1"``: a device as gradd's tensors name theirs (``isinstance(t.device,
    torch.device)`` holds). A cuda device of an embedded session must exist in this process."""

    def __new__(cls, type: _typing.Any, index: int | None = None) -> _typing.Any:  # noqa: A002 - torch's name
        from gradd.embedded_session import EmbeddedSession
        from gradd.engine import Device, get_device

        if isinstance(type, Device) and index is None:
            return type
        name = str(type)
        if index is not None:
            if ":" in name:
                raise RuntimeError(
                    f"type (string) must not include an index because index was passed "
                    f"explicitly: {name}"
                )
            name = f"{name}:{index}"
        kind, _, ordinal = name.partition(":")
        if kind == "cpu":
            return get_device("cpu")
        if kind != "cuda" or not (ordinal.isdigit() or name == "cuda"):
            return get_device(name)  # raises the engine's (PyTorch's) error
        current_session = _state.current()
        if current_session.device == name:
            return current_session.device
        if isinstance(current_session, EmbeddedSession):
            return get_device(name)  # this process's GPU (CuPy), or the engine's error
        import numpy as np

        return Device(name, np)  # a name for a server's device: remote sessions compare names


def __getattr__(name: str) -> _typing.Any:
    if name == "Tensor":
        import gradd

        return gradd.Tensor
    if name == "dtype":
        from gradd.engine import DType

        return DType
    if name in _SESSION_ONLY:
        raise _state.not_implemented(__name__, f"torch.{name}", name)
    return _state.lookup((), name)


def __dir__() -> list[str]:
    return sorted({*__all__, "Tensor", "dtype"} | (_state.session_names(()) - _SESSION_ONLY))


_state.install_finder()

__all__ = ["autograd", "cuda", "device", "is_tensor", "nn", "session", "use"]
