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
import re
import threading
import time
from collections import deque
from typing import Any

import grpc
from gradd.v1 import command_pb2 as cpb

from . import command_encoding as enc
from .errors import DeadlineExceededError, GraddError, connection_lost, error_for, from_rpc_error

EXECUTE_STREAM = "/gradd.v1.AutogradService/ExecuteStream"
_monotonic = time.monotonic
BATCH_SIZE = 512  # commands per ExecuteRequest (measured: larger gains nothing on loopback)
WINDOW = 64  # unanswered batches before the client waits for the server to catch up
LARGE_BATCH_BYTES = 1 << 20  # a batch carrying this much tensor data is sent at once
MAX_DELAY = 0.02  # seconds a queued command may wait for its batch (watchers see steps live)
CLOSE_WAIT = 2.0  # seconds close() lets the server end the stream before cancelling it
_RECORD = re.compile(r"record (\d+)(?: \(op '[^']*'\))?: ")  # a failing tape record's prefix


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
        reconnect_timeout: float = 0.0,
    ) -> None:
        self.cmds: list[bytes] = []
        self.sites: list[tuple] = []  # (op, filename, line) per queued command
        self.released: list[bytes] = []  # handles of collected tensors, appended by __del__
        self.free_slots: list[int] = []  # slots whose Release is queued: new tensors take them
        self.tape: list[bytes] = []  # records of the open Command.tape (ops in the lean form)
        self.tape_sites: list[tuple] = []  # a site per record
        self.freed_programs: list[str] = []  # programs of collected compiled functions
        self.batch_size = batch_size
        self.window = window
        self.timeout = timeout
        self._session_id = session_id
        self._prefix = enc.session_prefix(session_id)
        self._seq = 0
        self._outstanding: deque[tuple[int, Any, list]] = deque()
        self._pending: GraddError | None = None  # first server-side failure not yet raised
        self._broken: GraddError | None = None  # the stream itself failed: the session is lost
        self._waiting_since = 0.0
        self._first_queued = 0.0
        self._timed_out = False
        # Durable sessions: the batches sent after the server's durable point, replayed if the
        # server restarts (0: the server keeps no state, nothing is kept).
        self.reconnect_timeout = reconnect_timeout
        self._kept: deque[tuple[int, bytes]] = deque()
        self._durable = 0  # the last durable sequence the server reported
        self._lost: set[int] = set()  # batches applied whose answers a restart lost
        self._metadata = metadata
        self._method = channel.stream_stream(
            EXECUTE_STREAM,
            request_serializer=None,  # requests are already wire bytes
            response_deserializer=cpb.ExecuteResponse.FromString,
        )
        self._open()
        if timeout is not None:
            threading.Thread(target=self._watchdog, name="gradd-watchdog", daemon=True).start()

    def _open(self, wait_for_ready: bool = False) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._responses = self._method(
            iter(self._requests.get, None), metadata=self._metadata, wait_for_ready=wait_for_ready
        )

    def _send(self, seq: int, request: bytes) -> None:
        if self.reconnect_timeout:
            self._kept.append((seq, request))
        self._requests.put(request)

    # --- queueing ------------------------------------------------------------------------
    def push_record(self, record: bytes, site: tuple) -> None:
        """Queue one op as a tape record: consecutive records go as one Command.tape, each
        keeping its call site (a failing record is reported at its own op and line)."""
        tape = self.tape
        if not tape and not self.cmds:
            self._first_queued = _monotonic()
        tape.append(record)
        self.tape_sites.append(site)
        n = len(tape)
        if n >= self.batch_size or (not n & 15 and _monotonic() - self._first_queued > MAX_DELAY):
            self.flush()

    def _close_tape(self) -> None:
        self.cmds.append(enc.tape_command(b"".join(self.tape)))
        self.sites.append(self.tape_sites)  # a list of sites: one per record
        self.tape, self.tape_sites = [], []

    def push(self, cmd: bytes, site: tuple) -> None:
        """Queue one framed command; send the batch when it is full, holds a large tensor, or
        has waited MAX_DELAY (checked every 16 commands: a slow loop still streams its steps)."""
        if self.tape:
            self._close_tape()
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
            self.cmds, self.sites, self.tape, self.tape_sites = [], [], [], []
            raise self._broken
        if self.tape:
            self._close_tape()
        handles: list[bytes] = []
        if self.released:
            handles, self.released = self.released, []
            self.cmds.append(enc.release(handles))
            self.sites.append(("release", "", 0))
            # Commands apply in order: a slot released here may be bound again by later ones.
            self.free_slots.extend(int(h[1:]) for h in handles if h[:1] == b"#")
        while self.freed_programs:
            self.cmds.append(enc.free_program(self.freed_programs.pop()))
            self.sites.append(("free_program", "", 0))
        if not self.cmds:
            return self._seq
        self._seq += 1
        self._send(self._seq, enc.execute_request(self._prefix, self.cmds, self._seq))
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
        self._send(
            self._seq, b"".join([self._prefix, *parts, enc.REQ_SEQUENCE, enc.varint(self._seq)])
        )
        self._outstanding.append((self._seq, [site], []))
        while len(self._outstanding) > self.window:
            self._read_one()

    # --- waiting -------------------------------------------------------------------------
    def _read_one(self) -> cpb.ExecuteResponse | None:
        """The answer to the oldest unanswered batch (None: a restart lost it, see _resume)."""
        while True:
            self._waiting_since = time.monotonic()
            try:
                response = next(self._responses)
                break
            except grpc.RpcError as err:
                failure = err
            except StopIteration:
                failure = None
            finally:
                self._waiting_since = 0.0
            if not self._resumable(failure):
                self._fail(failure)
            self._resume(failure)
            if not self._outstanding:
                return None
        seq, sites, released = self._outstanding.popleft()
        durable = response.durable_sequence
        if durable > self._durable:
            self._durable = durable
            kept = self._kept
            while kept and kept[0][0] <= durable:
                kept.popleft()
        if sites is None:
            return response  # a replayed batch answered before the restart: reported then
        if response.HasField("error"):
            e = response.error
            if released and e.index < len(sites) - 1:
                # The batch's Release was skipped: send it again, but not for slots, which may
                # be bound again already (they stay bound until then, and are freed by it).
                self.released.extend(h for h in released if h[:1] != b"#")
            if self._pending is None:
                site = sites[e.index] if e.index < len(sites) else None
                message = e.message
                if type(site) is list:  # a tape: the failing record's own op and line
                    match = _RECORD.match(message)
                    k = int(match.group(1)) if match else len(site)
                    message = message[match.end() :] if match else message
                    site = site[k] if k < len(site) else None
                self._pending = error_for(cpb.Code.Name(e.code), message, site)
        return response

    # --- resuming after a restart of the server ---------------------------------------------
    def _resumable(self, failure: Any) -> bool:
        if not self.reconnect_timeout or self._timed_out:
            return False
        return failure is None or connection_lost(failure)

    def _resume(self, failure: Any) -> None:
        """Reconnect (backing off, up to reconnect_timeout), ask the server what it holds of
        the session, and replay the kept batches after that; else raise a clear error."""
        self._responses.cancel()
        self._requests.put(None)
        deadline = time.monotonic() + self.reconnect_timeout
        delay = 0.05
        while True:
            try:
                held = self._probe(deadline)
                break
            except (grpc.RpcError, StopIteration) as err:
                code = err.code() if isinstance(err, grpc.RpcError) else None
                if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
                    self._lose(
                        f"cannot resume session {self._session_id}: the server no longer has "
                        "it (it restarted without its state directory, or the session was "
                        "closed or expired); its tensors are lost"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    why = err.details() if isinstance(err, grpc.RpcError) else "stream ended"
                    self._lose(
                        f"lost the gradd server and could not resume session "
                        f"{self._session_id} within reconnect_timeout={self.reconnect_timeout} "
                        f"s ({why})",
                        "UNAVAILABLE",
                    )
                time.sleep(min(delay, left))
                delay = min(2 * delay, 1.0)
        if held < self._durable:
            self._lose(
                f"cannot resume session {self._session_id}: the server restored it at batch "
                f"{held}, before batch {self._durable} that it had reported durable"
            )
        pending = {entry[0]: entry for entry in self._outstanding}
        for seq in pending:
            if seq <= held:
                self._lost.add(seq)  # applied; its answer (and any error in it) was lost
        replay = [(seq, request) for seq, request in self._kept if seq > held]
        self._outstanding = deque(pending.get(seq, (seq, None, [])) for seq, _ in replay)
        for _, request in replay:
            self._requests.put(request)

    def _probe(self, deadline: float) -> int:
        """Open a new stream and ask what the server holds of the session: its last sequence."""
        self._open(wait_for_ready=True)
        timer = threading.Timer(max(0.01, deadline - time.monotonic()), self._responses.cancel)
        timer.daemon = True
        timer.start()
        try:
            self._requests.put(self._prefix)  # no commands, sequence 0: applies nothing
            return next(self._responses).durable_sequence
        except (grpc.RpcError, StopIteration):
            self._responses.cancel()
            self._requests.put(None)
            raise
        finally:
            timer.cancel()

    def _lose(self, message: str, code: str = "NOT_FOUND") -> None:
        self._outstanding.clear()
        self._kept.clear()
        self._broken = error_for(code, message)
        raise self._broken

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
            if response is not None and response.sequence == seq:
                found = response
        return found

    def request(self, cmd: bytes, site: tuple) -> Any:
        """Queue a command that is answered (a fetch or graph), send, and wait for its result."""
        return self.request_all([cmd], site)[0]

    def request_all(self, cmds: list[bytes], site: tuple) -> list[Any]:
        """Queue several answered commands (fetches) in one batch: one round trip for all;
        their results in order."""
        while True:
            if self.tape:
                self._close_tape()
            first = len(self.cmds)
            self.cmds.extend(cmds)
            self.sites.extend([site] * len(cmds))
            seq = self.flush()
            response = self.wait_for(seq)
            if response is None and seq in self._lost:
                # Applied before a restart that lost its answer; nothing was sent after it, so
                # asking again reads the same values.
                self._lost.discard(seq)
                continue
            break
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
        self.cmds, self.sites, self.tape, self.tape_sites = [], [], [], []
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
