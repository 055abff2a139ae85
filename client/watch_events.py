"""``session.watch()``: a remote session's Watch stream as plain Python events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from .errors import from_rpc_error
from .graph_pictures import picture_of


@dataclass(frozen=True)
class WatchStarted:
    """The first event: the watcher is registered, so no later step will be missed."""

    seq: int
    timestamp: float
    step: int
    missed: int = 0


@dataclass(frozen=True)
class StepEvent:
    """One ``backward()`` of the session: ``loss`` is the root's value when it is a scalar."""

    seq: int
    timestamp: float
    step: int
    loss: float | None
    handle: str
    missed: int = 0


@dataclass(frozen=True)
class GraphEvent:
    """A graph snapshot (``reason``: changed, every_n, requested, initial)."""

    seq: int
    timestamp: float
    step: int
    reason: str
    handle: str
    picture: Any
    missed: int = 0


@dataclass(frozen=True)
class SessionEnded:
    """The session ended (closed, expired, shutdown); the stream ends after it."""

    seq: int
    timestamp: float
    reason: str
    missed: int = 0


Event = WatchStarted | StepEvent | GraphEvent | SessionEnded


def convert(event: Any) -> Event:
    """A gradd.v1 WatchEvent as one of the dataclasses above."""
    kind = event.WhichOneof("kind")
    common = {"seq": event.seq, "timestamp": event.timestamp, "missed": event.missed}
    if kind == "started":
        return WatchStarted(step=event.started.step, **common)
    if kind == "step":
        s = event.step
        loss = s.loss if s.HasField("loss") else None
        return StepEvent(step=s.step, loss=loss, handle=s.handle, **common)
    if kind == "graph":
        g = event.graph
        picture = picture_of(g.graph)
        return GraphEvent(step=g.step, reason=g.reason, handle=g.handle, picture=picture, **common)
    if kind == "ended":
        return SessionEnded(reason=event.ended.reason, **common)
    raise ValueError(f"unknown WatchEvent kind {kind!r} (a newer server?)")


class WatchStream:
    """An iterator of a session's events; ``close()`` (or ``with``) stops watching."""

    def __init__(self, call: Any, channel: Any) -> None:
        self._call = call
        self._channel = channel

    def __iter__(self) -> Iterator[Event]:
        try:
            for event in self._call:
                yield convert(event)
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.CANCELLED:
                return  # closed by us
            raise from_rpc_error(err, "watching the session") from None
        finally:
            self._channel.close()

    def close(self) -> None:
        """Stop the stream."""
        self._call.cancel()
        self._channel.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
