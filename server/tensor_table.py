"""A session's handles: handle -> tensor, slots, the limit on both, and the session's memory meter.

Slots (Command.tape) are a list indexed by the client's slot numbers: binding and releasing one
is O(1), with no string hashed. Slot N is also the handle "#N" in every other command; handles
starting with "#" are only ever slots. Bound slots and handles count against one limit, and
slot numbers stay below it, so the list never grows past it.

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


_SLOT_NAMES: dict[str, int] = {}  # "#N" -> N for the first slots, parsed once per process
_NAMED_SLOTS = 1 << 16


def _slot_or_none(handle: str) -> int | None:
    """N of a handle "#N" (N decimal, no leading zeros, at most 10 digits), else None."""
    n = _SLOT_NAMES.get(handle)
    if n is not None:
        return n
    digits = handle[1:]
    if not (0 < len(digits) <= 10 and digits.isascii() and digits.isdigit()):
        return None
    if digits[0] == "0" and len(digits) > 1:
        return None
    n = int(digits)
    if n < _NAMED_SLOTS:  # at most _NAMED_SLOTS entries, whatever clients send
        _SLOT_NAMES[handle] = n
    return n


class TensorTable:
    """Handles bound to tensors, the limit on how many, and the meter of the session's bytes."""

    __slots__ = ("_tensors", "slots", "bound_slots", "meter", "max_tensors")

    def __init__(self, max_bytes: int, max_tensors: int, device_type: str = "cpu") -> None:
        self._tensors: dict[str, Any] = {}
        self.slots: list[Any] = []  # slot number -> tensor, or None where unbound
        self.bound_slots = 0
        self.meter = MemoryMeter(max_bytes, node_bytes(device_type))
        self.max_tensors = max_tensors

    def __len__(self) -> int:
        return len(self._tensors) + self.bound_slots

    def __contains__(self, handle: str) -> bool:
        if handle[:1] == "#":  # never raises: a handle that names no slot is not bound
            n = _slot_or_none(handle)
            return n is not None and n < len(self.slots) and self.slots[n] is not None
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
        """Every (handle, tensor) bound now, slots as their "#N" handles (a session snapshot
        keeps them all, and `bind` takes them back)."""
        bound = list(self._tensors.items())
        bound += [(f"#{n}", t) for n, t in enumerate(self.slots) if t is not None]
        return bound

    def get(self, handle: str) -> Any:
        """The tensor bound to a handle (or slot "#N"); NOT_FOUND if none is."""
        tensor = self._tensors.get(handle)
        if tensor is not None:
            return tensor
        if handle[:1] == "#":
            n = _SLOT_NAMES.get(handle)  # the hot path: a bound slot named before
            if n is not None and n < len(self.slots):
                tensor = self.slots[n]
                if tensor is not None:
                    return tensor
            return self.slot(self.slot_number(handle))
        raise not_found(f"unknown tensor handle {shown(handle)}")

    def slot(self, n: int) -> Any:
        """The tensor bound to slot `n`; NOT_FOUND if none is."""
        slots = self.slots
        tensor = slots[n] if n < len(slots) else None
        if tensor is None:
            raise not_found(f"unknown tensor handle '#{n}' (slot {n} is not bound)")
        return tensor

    def slot_number(self, handle: str) -> int:
        """The slot a "#N" handle names; INVALID_ARGUMENT unless N is a decimal number without
        leading zeros, RESOURCE_EXHAUSTED at or past the tensor limit."""
        n = _slot_or_none(handle)
        if n is None:
            raise invalid(
                f"handle {shown(handle)}: a handle starting with '#' names a slot, '#' and its "
                "number (e.g. '#12')"
            )
        return self.check_slot(n)

    def check_slot(self, n: int) -> int:
        """`n`, if it is a slot number below the tensor limit (RESOURCE_EXHAUSTED if not)."""
        if n >= self.max_tensors:
            raise exhausted(
                f"session tensor limit: slot {n} is past the limit of {self.max_tensors} "
                "tensors (slot numbers stay below it)"
            )
        return n

    def check_handles(self, handles: Iterable[str]) -> None:
        """Before making tensors for `handles`: raise unless the new ones fit the limit."""
        tensors, slots = self._tensors, self.slots
        new = 0
        for h in set(handles):
            if h[:1] == "#":
                n = self.slot_number(h)
                new += n >= len(slots) or slots[n] is None
            else:
                new += h not in tensors
        self._check_new(new)

    def check_slots(self, numbers: Iterable[int]) -> None:
        """Before binding tensors to slots: raise unless the new ones fit the limit."""
        slots = self.slots
        new = 0
        for n in set(numbers):
            self.check_slot(n)
            new += n >= len(slots) or slots[n] is None
        self._check_new(new)

    def _check_new(self, new: int) -> None:
        held = len(self._tensors) + self.bound_slots
        if new and held + new > self.max_tensors:
            raise exhausted(
                f"session tensor limit: {held} handles bound, "
                f"{new} more would pass the limit of {self.max_tensors}; release some"
            )

    def check_new(self, handle: str, nbytes: int) -> None:
        """Before making a tensor of `nbytes` for `handle`: raise unless it will fit."""
        self.check_handles((handle,))
        self.meter.check(nbytes)

    def bind_one(self, handle: str, tensor: Any) -> None:
        """Bind one handle (the hot path of ops); same rules as `bind`."""
        if handle[0] == "#":
            n = _SLOT_NAMES.get(handle)  # the hot path: rebinding a bound slot named before
            slots = self.slots
            if n is not None and n < len(slots) and slots[n] is not None:
                slots[n] = tensor
            else:
                self.bind_slot(self.slot_number(handle), tensor)
            return
        tensors = self._tensors
        if handle not in tensors and len(tensors) + self.bound_slots >= self.max_tensors:
            self.check_handles((handle,))
        tensors[handle] = tensor  # the old tensor goes when nothing else holds it

    def bind_slot(self, n: int, tensor: Any) -> None:
        """Bind slot `n` (checked below the limit), rebinding a bound one: O(1)."""
        slots = self.slots
        if n < len(slots):
            if slots[n] is None:
                if len(self._tensors) + self.bound_slots >= self.max_tensors:
                    self._check_new(1)
                self.bound_slots += 1
            slots[n] = tensor  # the old tensor goes when nothing else holds it
            return
        self.check_slot(n)
        if len(self._tensors) + self.bound_slots >= self.max_tensors:
            self._check_new(1)
        slots.extend([None] * (n + 1 - len(slots)))  # at most up to the limit, once
        slots[n] = tensor
        self.bound_slots += 1

    def bind(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """Bind each handle to its tensor (rebinding replaces), all or nothing."""
        self.check_handles(h for h, _ in pairs)
        for handle, tensor in pairs:
            if handle[:1] == "#":
                self.bind_slot(self.slot_number(handle), tensor)
            else:
                self._tensors[handle] = tensor

    def release(self, handles: Iterable[str]) -> None:
        """Unbind handles; unknown ones are ignored (idempotent)."""
        tensors, slots = self._tensors, self.slots
        for handle in handles:
            if handle[:1] == "#":
                n = _slot_or_none(handle)
                if n is not None and n < len(slots) and slots[n] is not None:
                    slots[n] = None
                    self.bound_slots -= 1
            else:
                tensors.pop(handle, None)

    def clear(self) -> None:
        """Unbind everything, so the tensors and their graphs can be freed."""
        self._tensors.clear()
        self.slots.clear()
        self.bound_slots = 0
        self.meter.clear()
