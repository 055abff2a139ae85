"""``gradd.torch.cuda``: what the current session's server says about CUDA.

``is_available()`` is whether the session's server lists a cuda device (its ``ServerInfo``; for
an embedded session, whether this process has a GPU), not whether this machine has one."""

import typing as _typing

from . import _state


def is_available() -> bool:
    """True when the current session's server has a CUDA device (``torch.cuda.is_available``)."""
    return any(d.split(":")[0] == "cuda" for d in _state.current().available_devices())


def device_count() -> int:
    """How many GPUs the current session's server has (``torch.cuda.device_count``)."""
    devices = _state.current().available_devices()
    return sum(1 for d in devices if d.startswith("cuda:"))


def __getattr__(name: str) -> _typing.Any:
    return _state.lookup(("cuda",), name)


def __dir__() -> list[str]:
    return sorted({"is_available", "device_count"} | _state.session_names(("cuda",)))
