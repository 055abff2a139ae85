"""Deadlines served by one thread: `after(seconds, fn)` calls `fn` then unless cancelled.

A `threading.Timer` per call starts a thread per call (about 100 us); control calls and open
streams each need a deadline, so they share this one thread and a heap.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Deadline:
    """One pending call of `fn`; `cancel()` drops it (idempotent)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn: Callable[[], object] | None = fn

    def cancel(self) -> None:
        self.fn = None


class Deadlines:
    """A heap of deadlines and the daemon thread that fires them."""

    def __init__(self, name: str = "gradd-deadlines") -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def after(self, seconds: float, fn: Callable[[], object]) -> Deadline:
        """Call `fn` in `seconds` unless the returned Deadline is cancelled first."""
        deadline = Deadline(fn)
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), deadline))
            if self._heap[0][2] is deadline:
                self._wake.notify()
        return deadline

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(wait)
                _, _, deadline = heapq.heappop(self._heap)
            fn = deadline.fn
            if fn is not None:
                try:
                    fn()
                except Exception:  # a deadline's action must never stop the others
                    pass
