"""A session's handles: handle -> tensor, with the handle limit, and the session's memory meter.

Bytes are not counted per handle: the session's ``MemoryMeter`` (gradd.engine) charges every
buffer the session's commands allocate, bound or not (graph intermediates, saved tensors,
``.grad`` buffers, the bases that views keep alive), before it is allocated, and credits it
when it is freed. ``nbytes`` is what the meter holds now. A bind that would pass the handle
limit raises RESOURCE_EXHAUSTED and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gradd.engine.memory_meter import MemoryMeter, node_bytes

from .errors import exhausted, invalid, not_found, shown

MAX_HANDLE_LENGTH = 256


def new_handle(handle: str) -> str:
    """A handle a command is to bind: 1 to MAX_HANDLE_LENGTH characters (INVALID_ARGUMENT)."""
    if not handle or len(handle) > MAX_HANDLE_LENGTH:
        raise invalid(f"a handle must be 1 to {MAX_HANDLE_LENGTH} characters, got {shown(handle)}")
    return handle


class TensorTable:
    """Handles bound to tensors, the limit on how many, and the meter of the session's bytes."""

    __slots__ = ("_tensors", "meter", "max_tensors")

    def __init__(self, max_bytes: int, max_tensors: int, device_type: str = "cpu") -> None:
        self._tensors: dict[str, Any] = {}
        self.meter = MemoryMeter(max_bytes, node_bytes(device_type))
        self.max_tensors = max_tensors

    def __len__(self) -> int:
        return len(self._tensors)

    def __contains__(self, handle: str) -> bool:
        return handle in self._tensors

    @property
    def nbytes(self) -> int:
        """Bytes the session holds (every live buffer its commands allocated), as of its last
        batch; safe to read from any thread (ListSessions, metrics)."""
        return self.meter.estimate()

    @property
    def max_bytes(self) -> int:
        return self.meter.limit

    def items(self) -> list[tuple[Any, Any]]:
        """Every (handle, tensor) bound now (a session snapshot keeps them all)."""
        return list(self._tensors.items())

    def get(self, handle: str) -> Any:
        """The tensor bound to a handle; NOT_FOUND if none is."""
        try:
            return self._tensors[handle]
        except KeyError:
            raise not_found(f"unknown tensor handle {shown(handle)}") from None

    def check_handles(self, handles: Iterable[str]) -> None:
        """Before making tensors for `handles`: raise unless the new ones fit the limit."""
        tensors = self._tensors
        new = len({h for h in handles if h not in tensors})
        if new and len(tensors) + new > self.max_tensors:
            raise exhausted(
                f"session tensor limit: {len(tensors)} handles bound, "
                f"{new} more would pass the limit of {self.max_tensors}; release some"
            )

    def check_new(self, handle: str, nbytes: int) -> None:
        """Before making a tensor of `nbytes` for `handle`: raise unless it will fit."""
        self.check_handles((handle,))
        self.meter.check(nbytes)

    def bind_one(self, handle: str, tensor: Any) -> None:
        """Bind one handle (the hot path of ops); same rules as `bind`."""
        tensors = self._tensors
        if handle not in tensors and len(tensors) >= self.max_tensors:
            self.check_handles((handle,))
        tensors[handle] = tensor  # the old tensor goes when nothing else holds it

    def bind(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """Bind each handle to its tensor (rebinding replaces), all or nothing."""
        self.check_handles(h for h, _ in pairs)
        for handle, tensor in pairs:
            self._tensors[handle] = tensor

    def release(self, handles: Iterable[str]) -> None:
        """Unbind handles; unknown ones are ignored (idempotent)."""
        for handle in handles:
            self._tensors.pop(handle, None)

    def clear(self) -> None:
        """Unbind everything, so the tensors and their graphs can be freed."""
        self._tensors.clear()
        self.meter.clear()
