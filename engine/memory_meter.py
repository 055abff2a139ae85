"""Memory meters: the bytes of arrays one session holds, checked before and counted after.

A server gives each session a ``MemoryMeter`` and activates it (``metering``) on the thread
that runs the session's commands. While it is active:

- every op checks its result's size, predicted by the op table's shape and dtype rules, before
  its forward runs (``check``); factories, ``tensor()`` and ``backward`` (its new ``.grad``
  buffers) check theirs before they allocate;
- every array that becomes a tensor is charged by its root buffer (the end of its ``.base``
  chain, so a view charges its base once, and a one-element view of a large base keeps the
  whole base counted) and credited when that buffer is freed, whoever freed it: a released
  handle, a graph that let go of its saved tensors, a dropped ``.grad``.

So saved tensors, saved outputs and the intermediates a live graph keeps are counted exactly as
long as they live. Buffers under ``SMALL_BYTES`` are not tracked (a weak reference per array
costs more than a small op): what they and the graph's Python objects hold is the slack, about
a kilobyte per recorded op kept alive. Without an active meter (embedded sessions) nothing is
checked or counted.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SMALL_BYTES = 64


class SessionMemoryError(MemoryError):
    """A session's byte limit would be passed; the message gives the numbers."""


class _Tracked(weakref.ref):
    """A weak reference to a charged root buffer, remembering what it was charged."""

    __slots__ = ("key", "nbytes")


class MemoryMeter:
    """Bytes held by one session's arrays against its limit.

    Charges and checks happen on the thread running the session's commands (under its lock);
    credits may come from any thread (the last reference to a buffer can go anywhere), so they
    are queued and settled by the owner.
    """

    __slots__ = ("limit", "_used", "reserved", "_live", "_credits", "_lenient")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self.reserved = 0  # bytes promised to an answer being built (see the server's fetch)
        self._live: dict[int, _Tracked] = {}  # id(root buffer) -> its reference
        self._credits: deque[int] = deque()
        self._lenient = 0  # > 0 while an operation that must not fail half-way runs

    @property
    def used(self) -> int:
        """Bytes of the tracked buffers alive now."""
        credits = self._credits
        while credits:
            self._used -= credits.popleft()
        return self._used

    def room(self) -> int:
        """Bytes that may still be allocated."""
        return self.limit - self.used - self.reserved

    def check(self, nbytes: int, what: str = "a new tensor") -> None:
        """Raise SessionMemoryError unless `nbytes` more fit (`what` needs them)."""
        if self._lenient or nbytes <= 0:
            return
        held = self.used + self.reserved
        if held + nbytes > self.limit:
            raise SessionMemoryError(
                f"session memory limit: holding {held} bytes; {what} needs {nbytes} more, past "
                f"the limit of {self.limit} bytes; release some tensors"
            )

    def reserve(self, nbytes: int, what: str) -> None:
        """Check, then hold `nbytes` for something the meter cannot see freed (an answer)."""
        self.check(nbytes, what)
        self.reserved += nbytes

    def charge(self, array: Any) -> None:
        """Count `array`'s root buffer until it is freed (once, however many views share it)."""
        root = array
        kind = type(array)
        base = root.base
        while base is not None and type(base) is kind:
            root, base = base, base.base
        key = id(root)
        if key in self._live:
            return
        nbytes = root.nbytes
        if nbytes < SMALL_BYTES:
            return
        ref = _Tracked(root, self._freed)
        ref.key, ref.nbytes = key, nbytes
        self._live[key] = ref
        self._used += nbytes

    def _freed(self, ref: _Tracked) -> None:
        # Runs when a root buffer is deallocated, on whichever thread dropped it.
        self._live.pop(ref.key, None)
        self._credits.append(ref.nbytes)

    @contextmanager
    def lenient(self) -> Iterator[None]:
        """Count but never refuse inside the block: for work that must not stop half-way
        (backward, once its new buffers were checked)."""
        self._lenient += 1
        try:
            yield
        finally:
            self._lenient -= 1

    def clear(self) -> None:
        """Forget every buffer (the session closed)."""
        self._live.clear()
        self._credits.clear()
        self._used = self.reserved = 0


class _Active(threading.local):
    meter: MemoryMeter | None = None


_active = _Active()


def active_meter() -> MemoryMeter | None:
    """The meter charging this thread's allocations, if any."""
    return _active.meter


@contextmanager
def metering(meter: MemoryMeter | None) -> Iterator[MemoryMeter | None]:
    """Charge this thread's allocations to `meter` inside the block."""
    prev = _active.meter
    _active.meter = meter
    try:
        yield meter
    finally:
        _active.meter = prev


def check_active(nbytes: int, what: str = "a new tensor") -> None:
    """Before allocating `nbytes`: raise if the active meter (if any) has no room."""
    meter = _active.meter
    if meter is not None:
        meter.check(nbytes, what)
