"""A session: one client's namespace of tensors, its seeded generator, limits and watchers.

Commands of one session run under its lock, in the order they arrive; sessions never share
tensors, handles or random streams.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import gradd.engine as ge
from gradd.v1 import graph_pb2 as gpb
from gradd.v1 import watch_pb2 as wpb

from .config import ServerConfig
from .graph_snapshot import snapshot
from .tensor_table import TensorTable
from .watch_hub import Watcher, WatchHub


class Session:
    """State of one session. Touch `table`, `generator` and `steps` only under `lock`."""

    def __init__(
        self,
        session_id: str,
        token_digest: bytes,
        *,
        device: str,
        seed: int,
        max_bytes: int,
        max_tensors: int,
        idle_ttl: float,
        label: str,
        max_watchers: int,
        interrupt: threading.Event | None = None,
        max_answer_bytes: int = ServerConfig.max_message_bytes,
    ) -> None:
        self.id = session_id
        self.token_digest = token_digest
        self.interrupt = interrupt or threading.Event()  # set: batches stop between commands
        self.device = device
        self.seed = seed
        self.idle_ttl = idle_ttl
        self.label = label
        self.lock = threading.Lock()
        self.table = TensorTable(max_bytes, max_tensors, ge.get_device(device).type)
        self.meter = self.table.meter  # every byte the session's commands allocate
        self.max_answer_bytes = max_answer_bytes  # the largest answer a batch may build
        self.generator = ge.Generator(device=device).manual_seed(seed)
        self.created = self.last_used = time.monotonic()
        self.orphaned_since = 0.0  # when its last ExecuteStream ended without a close (0: not)
        self.steps = 0
        self.hub = WatchHub(max_watchers)
        self.closed = False
        self.programs: dict[str, Any] = {}  # name -> server.programs.Program
        self.graph_params: dict[str, str] = {}  # label -> handle, from the last Graph command
        self.last_graph: wpb.GraphEvent | None = None
        self.last_root = ""  # handle of the last backward's root, for late watchers' snapshot
        self._last_signature = ""
        # Durability (--state-dir): the last ExecuteRequest.sequence applied, the last one in a
        # snapshot on disk, whether anything changed since the last capture, and whether a
        # batch was stopped half-way (shutdown), after which no snapshot is taken.
        self.applied_seq = 0
        self.durable_seq = 0
        self.changed = False
        self.torn = False
        self.snapshot_wanted = False  # a checkpoint is due; taken at the next batch boundary
        self.snapshot_queued = False  # a capture waits for the writer
        self.manifest: dict[str, Any] = {}  # its state directory manifest (id, token hash, ...)
        self.close_reason = ""

    def touch(self) -> None:
        """Note activity now (the idle TTL counts from the last call; a client is back)."""
        self.last_used = time.monotonic()
        self.orphaned_since = 0.0

    def idle_for(self, now: float) -> float:
        """Seconds since the last call."""
        return now - self.last_used

    def orphaned_for(self, now: float) -> float:
        """Seconds since its client's last stream ended without closing it (0: not orphaned)."""
        return now - self.orphaned_since if self.orphaned_since else 0.0

    def close(self, reason: str) -> None:
        """Free every tensor and end the watchers' streams. Call with `lock` held."""
        self.closed = True
        self.close_reason = reason
        self.programs.clear()
        self.table.clear()
        self.hub.end(reason)

    def params(self) -> dict[str, Any]:
        """The remembered make_dot labels whose handles are still bound."""
        return {k: self.table.get(h) for k, h in self.graph_params.items() if h in self.table}

    def backward(self, handle: str, root: Any, **kwargs: Any) -> None:
        """`root.backward(**kwargs)` as one training step, with its Watch events."""
        watchers = self.hub.watchers()
        graph_watchers = [w for w in watchers if not w.steps_only] if root.requires_grad else []
        # The snapshot and loss are taken before backward, while the whole graph is alive.
        graph = snapshot(root, self.params()) if graph_watchers else None
        loss = float(root.item()) if watchers and root.numel() == 1 else None
        with ge.set_grad_enabled(True):
            root.backward(**kwargs)
        self.steps += 1
        self.last_root = handle
        if not watchers:
            return
        step = wpb.StepEvent(step=self.steps, handle=handle)
        if loss is not None:
            step.loss = loss
        self.hub.publish("step", step, watchers)
        if graph is not None:
            changed = graph.signature != self._last_signature
            self._last_signature = graph.signature
            due = [w for w in graph_watchers if w.graph_every and self.steps % w.graph_every == 0]
            self._publish_graph(
                handle,
                graph,
                "changed" if changed else "every_n",
                graph_watchers if changed else due,
            )

    def publish_graph(self, handle: str, graph: gpb.GraphSnapshot) -> None:
        """Send a snapshot a client asked for to the watchers that take graphs."""
        watchers = [w for w in self.hub.watchers() if not w.steps_only]
        self._publish_graph(handle, graph, "requested", watchers)

    def add_watcher(self, watcher: Watcher) -> None:
        """Register a watcher: it gets a started event, then the latest snapshot if any.

        Call with `lock` held.
        """
        watcher.offer("started", wpb.WatchStartedEvent(step=self.steps))
        self.hub.add(watcher)
        if watcher.steps_only:
            return
        last = self.last_graph
        if self.last_root in self.table and (last is None or last.step < self.steps):
            # Snapshots are only taken while someone watches: take the missing one now.
            graph = snapshot(self.table.get(self.last_root), self.params())
            self._last_signature = graph.signature
            self._publish_graph(self.last_root, graph, "initial", [])
            last = self.last_graph
        if last is not None:
            watcher.offer("graph", last)

    def _publish_graph(
        self, handle: str, graph: gpb.GraphSnapshot, reason: str, to: list[Watcher]
    ) -> None:
        self.last_graph = wpb.GraphEvent(step=self.steps, reason="initial", handle=handle)
        self.last_graph.graph.CopyFrom(graph)
        if to:
            event = wpb.GraphEvent(step=self.steps, reason=reason, handle=handle)
            event.graph.CopyFrom(graph)
            self.hub.publish("graph", event, to)
