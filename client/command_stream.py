"""The pipeline to the server: commands queued here, sent in batches over one ExecuteStream.

Nothing waits for the server unless the user needs a value. Commands accumulate in a list and
go out as one ExecuteRequest when ``batch_size`` have accumulated or at a wait (a fetch, a graph
snapshot, ``synchronize()``); gRPC's own sender thread writes them while the user's code goes
on. A bounded window of unanswered batches keeps the client from running ahead of the server
without limit. Each queued command keeps the user's call site, so an error only the server can
find (a limit, a lost session, a data-dependent index) is raised at the next wait naming the op
and the line that queued it. Handles of garbage-collected tensors are released in bulk with the
next batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any

import grpc
from gradd.v1 import command_pb2 as cpb

from . import command_encoding as enc
from .errors import DeadlineExceededError, GraddError, error_for, from_rpc_error

EXECUTE_STREAM = "/gradd.v1.AutogradService/ExecuteStream"
_monotonic = time.monotonic
BATCH_SIZE = 512  # commands per ExecuteRequest (measured: larger gains nothing on loopback)
WINDOW = 64  # unanswered batches before the client waits for the server to catch up
LARGE_BATCH_BYTES = 1 << 20  # a batch carrying this much tensor data is sent at once
MAX_DELAY = 0.02  # seconds a queued command may wait for its batch (watchers see steps live)
CLOSE_WAIT = 2.0  # seconds close() lets the server end the stream before cancelling it


class CommandStream:
    """One session's ExecuteStream: queue, batch, send, and match answers to call sites."""

    def __init__(
        self,
        channel: grpc.Channel,
        session_id: str,
        metadata: tuple,
        *,
        timeout: float | None = None,
        batch_size: int = BATCH_SIZE,
        window: int = WINDOW,
    ) -> None:
        self.cmds: list[bytes] = []
        self.sites: list[tuple] = []  # (op, filename, line) per queued command
        self.released: list[bytes] = []  # handles of collected tensors, appended by __del__
        self.freed_programs: list[str] = []  # programs of collected compiled functions
        self.batch_size = batch_size
        self.window = window
        self.timeout = timeout
        self._prefix = enc.session_prefix(session_id)
        self._seq = 0
        self._outstanding: deque[tuple[int, list, list]] = deque()
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: GraddError | None = None  # first server-side failure not yet raised
        self._broken: GraddError | None = None  # the stream itself failed: the session is lost
        self._waiting_since = 0.0
        self._first_queued = 0.0
        self._timed_out = False
        method = channel.stream_stream(
            EXECUTE_STREAM,
            request_serializer=None,  # requests are already wire bytes
            response_deserializer=cpb.ExecuteResponse.FromString,
        )
        self._responses = method(iter(self._requests.get, None), metadata=metadata)
        if timeout is not None:
            threading.Thread(target=self._watchdog, name="gradd-watchdog", daemon=True).start()

    # --- queueing ------------------------------------------------------------------------
    def push(self, cmd: bytes, site: tuple) -> None:
        """Queue one framed command; send the batch when it is full, holds a large tensor, or
        has waited MAX_DELAY (checked every 16 commands: a slow loop still streams its steps)."""
        cmds = self.cmds
        if not cmds:
            self._first_queued = _monotonic()
        cmds.append(cmd)
        self.sites.append(site)
        n = len(cmds)
        if (
            n >= self.batch_size
            or len(cmd) > LARGE_BATCH_BYTES
            or (not n & 15 and _monotonic() - self._first_queued > MAX_DELAY)
        ):
            self.flush()

    def flush(self) -> int:
        """Send what is queued (with pending releases); the sequence number of the last batch."""
        if self._broken is not None:
            self.cmds, self.sites = [], []
            raise self._broken
        handles: list[bytes] = []
        if self.released:
            handles, self.released = self.released, []
            self.cmds.append(enc.release(handles))
            self.sites.append(("release", "", 0))
        while self.freed_programs:
            self.cmds.append(enc.free_program(self.freed_programs.pop()))
            self.sites.append(("free_program", "", 0))
        if not self.cmds:
            return self._seq
        self._seq += 1
        self._requests.put(enc.execute_request(self._prefix, self.cmds, self._seq))
        self._outstanding.append((self._seq, self.sites, handles))
        self.cmds, self.sites = [], []
        while len(self._outstanding) > self.window:
            self._read_one()
        return self._seq

    def send_alone(self, parts: list, site: tuple) -> None:
        """Send one framed command given in parts (a large tensor's bytes stay a view of its
        array until the request is joined) as a batch of its own, after what is queued."""
        self.flush()
        self._seq += 1
        self._requests.put(
            b"".join([self._prefix, *parts, enc.REQ_SEQUENCE, enc.varint(self._seq)])
        )
        self._outstanding.append((self._seq, [site], []))
        while len(self._outstanding) > self.window:
            self._read_one()

    # --- waiting -------------------------------------------------------------------------
    def _read_one(self) -> cpb.ExecuteResponse:
        seq, sites, released = self._outstanding[0]
        self._waiting_since = time.monotonic()
        try:
            response = next(self._responses)
        except grpc.RpcError as err:
            self._fail(err)
        except StopIteration:
            self._fail(None)
        finally:
            self._waiting_since = 0.0
        self._outstanding.popleft()
        if response.HasField("error"):
            e = response.error
            if released and e.index < len(sites) - 1:
                self.released.extend(released)  # the batch's Release was skipped: send it again
            if self._pending is None:
                site = sites[e.index] if e.index < len(sites) else None
                self._pending = error_for(cpb.Code.Name(e.code), e.message, site)
        return response

    def _fail(self, err: Any) -> None:
        if self._timed_out:
            self._broken = DeadlineExceededError(
                f"the gradd server did not answer within {self.timeout} s; the session's "
                "stream was cancelled"
            )
        elif err is None:
            self._broken = error_for("UNAVAILABLE", "the server closed the session's stream")
        else:
            self._broken = from_rpc_error(err, "waiting for the server")
        self._outstanding.clear()
        raise self._broken

    def raise_pending(self) -> None:
        """Raise the first server-side failure seen since the last wait, if any."""
        error = self._pending
        if error is not None:
            self._pending = None
            raise error

    def wait_for(self, seq: int) -> cpb.ExecuteResponse | None:
        """Read answers up to batch ``seq``; its answer (None if it was answered before)."""
        if self._broken is not None:
            raise self._broken
        found = None
        while self._outstanding and self._outstanding[0][0] <= seq:
            response = self._read_one()
            if response.sequence == seq:
                found = response
        return found

    def request(self, cmd: bytes, site: tuple) -> Any:
        """Queue a command that is answered (a fetch or graph), send, and wait for its result."""
        index = len(self.cmds)
        self.cmds.append(cmd)
        self.sites.append(site)
        seq = self.flush()
        response = self.wait_for(seq)
        self.raise_pending()
        for result in response.results:
            if result.index == index:
                return result
        raise error_for("INTERNAL", f"the server sent no answer to {site[0]}")

    def request_all(self, cmds: list[bytes], site: tuple) -> list[Any]:
        """Queue several answered commands (fetches) in one batch: one round trip for all;
        their results in order."""
        first = len(self.cmds)
        self.cmds.extend(cmds)
        self.sites.extend([site] * len(cmds))
        response = self.wait_for(self.flush())
        self.raise_pending()
        by_index = {r.index: r for r in response.results}
        missing = [i for i in range(first, first + len(cmds)) if i not in by_index]
        if missing:
            raise error_for("INTERNAL", f"the server sent no answer to {site[0]}")
        return [by_index[i] for i in range(first, first + len(cmds))]

    def synchronize(self) -> None:
        """Send everything and wait until the server has applied it; raise its first failure."""
        self.wait_for(self.flush())
        self.raise_pending()

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """End the stream (queued commands are dropped): half-close it, so that the server ends
        it with OK once it has answered what was sent, and cancel it only if that takes longer
        than `wait` seconds (a cancelled call is an error in the server's metrics)."""
        self.cmds, self.sites = [], []
        self._requests.put(None)
        self._waiting_since = -1.0  # stops the watchdog
        if self._broken is None:
            timer = threading.Timer(wait, self._responses.cancel)
            timer.daemon = True
            timer.start()
            try:
                for _ in self._responses:  # answers to batches nobody waits for any more
                    pass
            except grpc.RpcError:
                pass  # cancelled by the timer, or the server went away: the stream is over
            finally:
                timer.cancel()
        self._responses.cancel()  # no-op on an ended call

    def _watchdog(self) -> None:
        while self._waiting_since >= 0:
            time.sleep(min(0.1, self.timeout or 0.1))
            since = self._waiting_since
            if since > 0 and time.monotonic() - since > self.timeout:
                self._timed_out = True
                self._responses.cancel()
                return
