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

- every recorded graph node is charged ``NODE_BYTES`` (``node_bytes(device)``) while it lives:
  the node, its lists and the one-element tensors it saves (a chain of a million scalar ops
  holds about 1 GB of them on a CPU, 3 GB on a GPU).

So saved tensors, saved outputs and the intermediates a live graph keeps are counted as long as
they live. One-element buffers (``SCALAR_BYTES``) are not metered one by one: bound to handles
they are bounded by the handle limit, kept by a graph they are in its nodes' charge. Without an
active meter (embedded sessions) nothing is checked or counted.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SCALAR_BYTES = 8  # buffers this small (one element) are not metered: a loss, a learning rate
NODE_BYTES = 1024  # a graph node held alive, with what it keeps of one-element tensors (measured:
# 660 bytes an op for a chain of adds, 1,090 for a chain of muls, which save their input)
# On a GPU a node keeps CuPy arrays, heavier on the host, and each one-element array takes one
# 512-byte block of CuPy's pool: a chain of muls measured 2,312 host bytes and 512 device
# bytes a node on an H200 (benchmarks/gpu_check.py, graph_node_bytes).
CUDA_NODE_BYTES = 3072
BULK_BELOW = 64 << 10  # smaller buffers are counted in bulk, larger ones one by one
_SWEEP_EVERY = 4096  # bulk references added between sweeps of the dead ones (at least)


def node_bytes(device_type: str) -> int:
    """What a recorded graph node is charged on a device of this type ("cpu", "cuda")."""
    return CUDA_NODE_BYTES if device_type == "cuda" else NODE_BYTES


class SessionMemoryError(MemoryError):
    """A session's byte limit would be passed; the message gives the numbers."""


class _Tracked(weakref.ref):
    """A weak reference to a charged root buffer, remembering what it was charged."""

    __slots__ = ("key", "nbytes")


class MemoryMeter:
    """Bytes held by one session's arrays against its limit.

    Large buffers are tracked one by one and credited the moment they are freed. Buffers under
    ``BULK_BELOW`` cost too much to track so (a weak reference with a callback costs about as
    much as a small op): each is added to a running total with a plain weak reference, and
    the dead ones are swept out when the total would refuse something, or every few thousand.

    Charges and checks happen on the thread running the session's commands (under its lock);
    credits may come from any thread (the last reference to a buffer can go anywhere), so they
    are queued and settled by the owner.
    """

    __slots__ = (
        "limit",
        "reserved",
        "_used",
        "_live",
        "_credits",
        "_small",
        "_smalls",
        "_swept",
        "_nodes",
        "_nodes_swept",
        "lenient",
        "node_bytes",
    )

    def __init__(self, limit: int, node_bytes: int = NODE_BYTES) -> None:
        self.limit = limit
        self.node_bytes = node_bytes  # what one recorded graph node is charged
        self.reserved = 0  # bytes promised to an answer being built (see the server's fetch)
        self._used = 0  # large buffers charged, less the credits settled
        self._live: dict[int, _Tracked] = {}  # id(root buffer) -> its reference
        self._credits: deque[int] = deque()
        self._small = 0  # bulk buffers charged since the last sweep, plus the live ones then
        self._smalls: list[weakref.ref] = []
        self._swept = 0  # bulk buffers alive at the last sweep
        self._nodes: list[weakref.ref] = []  # graph nodes charged NODE_BYTES each, in the bulk
        self._nodes_swept = 0
        self.lenient = 0  # > 0: count but never refuse (work that must not stop half-way)

    @property
    def used(self) -> int:
        """Bytes of the metered buffers alive now (exact: call it on the owner's thread)."""
        self._settle_credits()
        self._sweep()
        return self._used + self._small

    def estimate(self) -> int:
        """`used` for any thread, changing nothing: it may still count buffers freed since the
        owner last settled (at the end of each batch) or swept its bulk total."""
        return self._used + self._small

    def end_batch(self) -> None:
        """On the owner's thread after its commands: the answer left, settle the credits."""
        self.reserved = 0
        self._settle_credits()

    def check(self, nbytes: int, what: str = "a new tensor", op: str = "") -> None:
        """Raise SessionMemoryError unless `nbytes` more fit (`what`, or `op`, needs them)."""
        if self._used + self._small + self.reserved + nbytes <= self.limit or self.lenient:
            return  # the totals only overestimate: when they fit, it fits
        held = self.used + self.reserved
        if held + nbytes > self.limit:
            raise SessionMemoryError(
                f"session memory limit: holding {held} bytes; {f'op {op!r}' if op else what} "
                f"needs {nbytes} more, past the limit of {self.limit} bytes; release some tensors"
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
        nbytes = root.nbytes
        if nbytes < BULK_BELOW:
            if nbytes > SCALAR_BYTES:
                smalls = self._smalls
                smalls.append(weakref.ref(root))
                self._small += nbytes
                if len(smalls) > 2 * self._swept + _SWEEP_EVERY:
                    self._sweep()
            return
        key = id(root)
        if key in self._live:
            return
        ref = _Tracked(root, self._freed)
        ref.key, ref.nbytes = key, nbytes
        self._live[key] = ref
        self._used += nbytes
        if self._credits:
            self._settle_credits()

    def charge_node(self, node: Any, op: str) -> None:
        """Count a recorded graph node as `node_bytes` until it is freed (in the bulk total);
        raise first if it does not fit (`op` made it: its result is not bound yet)."""
        if self._used + self._small + self.reserved + self.node_bytes > self.limit:
            self.check(self.node_bytes, op=op)
        nodes = self._nodes
        nodes.append(weakref.ref(node))
        self._small += self.node_bytes
        if len(nodes) > 2 * self._nodes_swept + _SWEEP_EVERY:
            self._sweep()

    def _freed(self, ref: _Tracked) -> None:
        # Runs when a root buffer is deallocated, on whichever thread dropped it.
        self._live.pop(ref.key, None)
        self._credits.append(ref.nbytes)

    def _settle_credits(self) -> None:
        credits = self._credits
        while credits:
            self._used -= credits.popleft()

    def _sweep(self) -> None:
        # The bulk total, recounted from the live buffers (each once).
        seen: set[int] = set()
        alive = []
        total = 0
        for ref in self._smalls:
            root = ref()
            if root is not None and id(root) not in seen:
                seen.add(id(root))
                alive.append(ref)
                total += root.nbytes
        self._smalls = alive
        self._swept = len(alive)
        self._nodes = [ref for ref in self._nodes if ref() is not None]
        self._nodes_swept = len(self._nodes)
        self._small = total + self.node_bytes * self._nodes_swept

    def clear(self) -> None:
        """Forget every buffer (the session closed)."""
        self._live.clear()
        self._credits.clear()
        self._smalls.clear()
        self._nodes.clear()
        self._used = self._small = self._swept = self._nodes_swept = self.reserved = 0


class _Active(threading.local):
    meter: MemoryMeter | None = None


class _Used:
    """Whether this process ever metered: until it does (embedded sessions never do), the hot
    paths skip the thread-local lookup of the active meter (one plain attribute read instead)."""

    __slots__ = ("ever",)

    def __init__(self) -> None:
        self.ever = False


_active = _Active()
used = _Used()


def active_meter() -> MemoryMeter | None:
    """The meter charging this thread's allocations, if any."""
    return _active.meter if used.ever else None


@contextmanager
def metering(meter: MemoryMeter | None) -> Iterator[MemoryMeter | None]:
    """Charge this thread's allocations to `meter` inside the block."""
    used.ever = True
    prev = _active.meter
    _active.meter = meter
    try:
        yield meter
    finally:
        _active.meter = prev


def check_active(nbytes: int, what: str = "a new tensor") -> None:
    """Before allocating `nbytes`: raise if the active meter (if any) has no room."""
    meter = _active.meter if used.ever else None
    if meter is not None:
        meter.check(nbytes, what)
