"""Watch streams: a session's watchers, each with a bounded queue that drops its oldest events.

A queue is bounded by its number of events and by their bytes (`WATCH_QUEUE_BYTES`, the newest
event is always kept), so a watcher that never reads holds at most that much. Publishing is
O(1) per watcher under a short lock and never waits, so a slow watcher never slows training; it
is told how many events it missed instead.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from gradd.v1 import watch_pb2 as wpb

from .errors import exhausted

WATCH_QUEUE_BYTES = 8 << 20  # per watcher; events are shared, so this bounds a session's too


class Watcher:
    """One Watch stream: its options and its queue of (seq, time, field, message, bytes)."""

    def __init__(
        self,
        queue_size: int,
        graph_every: int,
        steps_only: bool,
        max_bytes: int = WATCH_QUEUE_BYTES,
    ) -> None:
        self.queue_size = queue_size
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        self.graph_every = graph_every
        self.steps_only = steps_only
        self._queue: deque[tuple[int, float, str, Any, int]] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._seq = 0
        self._missed = 0
        self._missed_total = 0
        self._ended = False

    def offer(self, field: str, message: Any, *, final: bool = False) -> None:
        """Queue an event; past the count or byte bound, drop the oldest. A final event ends
        the stream."""
        size = message.ByteSize()
        with self._ready:
            if self._ended:
                return
            self._seq += 1
            queue = self._queue
            while queue and (
                len(queue) >= self.queue_size or self.queued_bytes + size > self.max_bytes
            ):
                self.queued_bytes -= queue.popleft()[4]
                self._missed += 1
                self._missed_total += 1
            queue.append((self._seq, time.time(), field, message, size))
            self.queued_bytes += size
            self._ended = final
            self._ready.notify()

    def next_event(self, timeout: float) -> wpb.WatchEvent | None:
        """The next event, or None after `timeout` seconds without one."""
        with self._ready:
            if not self._queue and not self._ready.wait_for(lambda: self._queue, timeout):
                return None
            seq, stamp, field, message, size = self._queue.popleft()
            self.queued_bytes -= size
            event = wpb.WatchEvent(seq=seq, timestamp=stamp, missed_total=self._missed_total)
            event.missed, self._missed = self._missed, 0
            getattr(event, field).CopyFrom(message)
            return event


class WatchHub:
    """The watchers of one session."""

    def __init__(self, max_watchers: int) -> None:
        self.max_watchers = max_watchers
        self._watchers: list[Watcher] = []
        self._lock = threading.Lock()
        self._ended: wpb.SessionEndedEvent | None = None

    def __len__(self) -> int:
        return len(self._watchers)

    def add(self, watcher: Watcher) -> None:
        """Register a watcher; RESOURCE_EXHAUSTED past the per-session maximum."""
        with self._lock:
            if len(self._watchers) >= self.max_watchers:
                raise exhausted(
                    f"session watcher limit: {len(self._watchers)} Watch streams open, "
                    f"the limit is {self.max_watchers}"
                )
            self._watchers = [*self._watchers, watcher]  # copy on write: publishers never lock
            if self._ended is not None:  # joined a session that just ended: end it too
                watcher.offer("ended", self._ended, final=True)

    def remove(self, watcher: Watcher) -> None:
        """Forget a watcher whose stream ended."""
        with self._lock:
            self._watchers = [w for w in self._watchers if w is not watcher]

    def watchers(self) -> list[Watcher]:
        """The watchers now (a snapshot that stays valid while others come and go)."""
        return self._watchers

    def publish(self, field: str, message: Any, to: list[Watcher] | None = None) -> None:
        """Offer an event to every watcher (or to those in `to`)."""
        for watcher in self._watchers if to is None else to:
            watcher.offer(field, message)

    def end(self, reason: str) -> None:
        """Send every watcher the session's end; their streams finish after it."""
        with self._lock:
            self._ended = wpb.SessionEndedEvent(reason=reason)
            watchers = self._watchers
        for watcher in watchers:
            watcher.offer("ended", self._ended, final=True)
