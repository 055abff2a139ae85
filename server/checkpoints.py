"""When sessions are snapshotted (`--checkpoint-every`), and the thread that writes them.

Every `every` seconds each session changed since its last snapshot is marked due. A due
session is captured under its lock between two batches: by the thread that just ran a batch
of it (service.py calls `after_batch`), or by the timer when the session is idle. Capturing
copies the arrays under the lock; one writer thread writes them out (state_dir) without it,
so other sessions, and this one's next batch, wait only for the copy. A capture is refused
while a graph a backward could still use is alive (session_snapshot.LiveGraph): the session
stays due and is captured at its next batch boundary without one. A session's durable
sequence (ExecuteResponse.durable_sequence) moves only once its snapshot is on disk.

On SIGTERM (`final`), after running calls have stopped, every changed session is captured and
written before the server exits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from .session import Session
from .session_snapshot import Capture, LiveGraph, capture
from .state_dir import StateDir

log = logging.getLogger("gradd.server")


class Checkpointer:
    """Periodic and final snapshots of a store's sessions into a state directory."""

    def __init__(self, state: StateDir, store: Any, every: float) -> None:
        self.state = state
        self.store = store
        self.every = every
        self.disk = threading.Lock()  # one change at a time to the directory
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick_loop, name="gradd-checkpoint", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="gradd-writer", daemon=True)

    def start(self) -> None:
        self._timer.start()
        self._writer.start()

    def after_batch(self, s: Session) -> None:
        """Under the session's lock, after a batch: capture it now if it is due."""
        if s.snapshot_wanted:
            self._capture(s)

    def _capture(self, s: Session) -> bool:
        # Under the session's lock. One capture per session waits for the writer at a time
        # (each holds a copy of the session's arrays); the session stays due meanwhile.
        if s.closed or s.snapshot_queued:
            return False
        try:
            snap = capture(s)
        except LiveGraph as why:
            log.debug("session %s: snapshot deferred (%s)", s.id, why)
            return False
        s.snapshot_wanted = False
        s.changed = False
        s.snapshot_queued = True
        self._queue.put((s, snap))
        return True

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.every):
            for s in self.store.sessions():
                if s.changed:
                    s.snapshot_wanted = True
                if s.snapshot_wanted and s.lock.acquire(blocking=False):  # idle: take it now
                    try:
                        self._capture(s)
                    finally:
                        s.lock.release()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()  # everything queued before it is written
                continue
            self._write(*item)

    def _write(self, s: Session, snap: Capture) -> None:
        try:
            self._write_one(s, snap)
        finally:
            s.snapshot_queued = False

    def _write_one(self, s: Session, snap: Capture) -> None:
        started = time.monotonic()
        with self.disk:
            if s.closed and s.close_reason != "shutdown":
                return  # closed by its client or expired: its directory is gone
            try:
                size = self.state.write_snapshot(s.manifest, snap)
            except Exception:  # a full disk: the last snapshot on disk stands
                log.exception("session %s: snapshot not written", s.id)
                s.changed = True
                return
        s.durable_seq = max(s.durable_seq, snap.sequence)
        log.debug(
            "session %s: snapshot of sequence %d written (%d bytes, %.3f s)",
            s.id,
            snap.sequence,
            size,
            time.monotonic() - started,
        )

    def remove(self, s: Session) -> None:
        """Forget a session closed by its client or expired (not one closed by shutdown)."""
        with self.disk:
            self.state.remove(s.id)

    def final(self) -> None:
        """On shutdown, after running batches stopped: snapshot every changed session, wait
        for every write, and stop the threads."""
        self._stop.set()
        if self._timer.is_alive():
            self._timer.join()
        if self._writer.is_alive():  # the captures queued so far are written first
            written = threading.Event()
            self._queue.put(written)
            written.wait()
        kept = 0
        for s in self.store.sessions():
            with s.lock:
                if (s.changed or s.snapshot_wanted) and self._capture(s):
                    kept += 1
                elif s.changed:
                    log.info(
                        "session %s: no final snapshot (a live graph or a batch stopped "
                        "half-way); its client replays from sequence %d",
                        s.id,
                        s.durable_seq,
                    )
        self._queue.put(None)
        if self._writer.is_alive():
            self._writer.join()
        else:  # never started (a server stopped before it served): write here
            while (item := self._queue.get()) is not None:
                if not isinstance(item, threading.Event):
                    self._write(*item)
        log.info("final snapshots written: %d sessions", kept)
