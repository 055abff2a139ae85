"""The gRPC servicer of gradd.v1.AutogradService: auth, sessions and commands, as statuses.

Each RPC finds its session (NOT_FOUND / UNAUTHENTICATED), takes the session's lock so that one
session's calls apply in order, and reports every failure as a gRPC status with one log line.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from gradd.v1 import service_pb2_grpc as spb_grpc

from . import command_runner as runner
from .admission import bearer
from .errors import ServiceError, not_found, status_of
from .grpc_handlers import Framed
from .request_views import ReceivedRequest, read_execute_request
from .session import Session
from .session_store import SessionStore
from .watch_hub import Watcher

log = logging.getLogger("gradd.server")


class BatchFailed(ServiceError):
    """A unary Execute stopped at a command (already logged)."""

    def __init__(self, code: grpc.StatusCode, message: str, trailing: tuple) -> None:
        super().__init__(code, message)
        self.trailing = trailing


def bearer_token(context: grpc.ServicerContext) -> str | None:
    """The token of `authorization: Bearer <token>` metadata, if sent."""
    return bearer(context.invocation_metadata())


def _fail(context: grpc.ServicerContext, request: Any, name: str, exc: Exception) -> None:
    code, message = status_of(exc)
    if isinstance(exc, BatchFailed):
        context.set_trailing_metadata(exc.trailing)
    else:
        session_id = getattr(request, "session_id", "") or "-"
        runner.log_failure(session_id, name, code, message, exc)
    context.abort(code, message)


def rpc(method: Callable) -> Callable:
    """Report any failure of a unary RPC as its status (and one log line)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:  # every failure becomes a status
            failure = exc
        _fail(context, request, method.__name__, failure)

    return wrapper


def streaming_rpc(method: Callable) -> Callable:
    """Report a failure that ends a streaming RPC as its status (and one log line)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator:
        try:
            yield from method(self, request, context)
            return
        except grpc.RpcError as exc:
            if not context.is_active():
                # The client hung up (the SDK cancels its stream on close): not a failure.
                log.debug("%s: the client ended the call", method.__name__)
                return
            failure = exc
        except Exception as exc:  # every failure becomes a status
            failure = exc
        _fail(context, request, method.__name__, failure)

    return wrapper


class AutogradService(spb_grpc.AutogradServiceServicer):
    """gradd.v1.AutogradService over a SessionStore."""

    # Batches are parsed with large tensors left in place in the received bytes.
    DESERIALIZERS = {"Execute": read_execute_request, "ExecuteStream": read_execute_request}

    def __init__(self, store: SessionStore, info: spb.ServerInfoResponse) -> None:
        self.store = store
        self.info = info
        self.stopping = False
        self._streams: dict[grpc.ServicerContext, bool] = {}  # open ExecuteStreams -> busy
        self._streams_lock = threading.Lock()

    def _session(self, session_id: str, context: grpc.ServicerContext) -> Session:
        return self.store.get(session_id, bearer_token(context))

    def _locked(self, session: Session) -> Session:
        # Call with session.lock held: a session closed while this call waited is gone.
        if session.closed:
            raise not_found(f"session {session.id!r} not found (closed or expired)")
        session.touch()
        return session

    @rpc
    def ServerInfo(self, request: spb.ServerInfoRequest, context: Any) -> spb.ServerInfoResponse:
        info = spb.ServerInfoResponse()
        info.CopyFrom(self.info)
        info.sessions = len(self.store)
        info.durable = self.store.checkpointer is not None
        return info

    @rpc
    def CreateSession(self, request: spb.CreateSessionRequest, context: Any) -> Any:
        s, token = self.store.create(request)
        response = spb.CreateSessionResponse(
            session_id=s.id,
            token=token,
            device=s.device,
            seed=s.seed,
            durable=self.store.checkpointer is not None,
        )
        response.limits.max_bytes = s.table.max_bytes
        response.limits.max_tensors = s.table.max_tensors
        response.idle_ttl_seconds = s.idle_ttl
        return response

    @rpc
    def CloseSession(self, request: spb.CloseSessionRequest, context: Any) -> Any:
        session = self._session(request.session_id, context)
        if not self.store.close(session, "closed"):
            raise not_found(f"session {session.id!r} not found (closed or expired)")
        return spb.CloseSessionResponse()

    def _batch(self, received: ReceivedRequest, token: str | None) -> tuple[Any, Any, Any, bytes]:
        """Apply one ExecuteRequest: (request, response, failure, answer bytes)."""
        request = received.message
        session = self.store.get(request.session_id, token)
        log.debug("execute %s: %d commands", session.id, len(request.commands))
        response = cpb.ExecuteResponse(sequence=request.sequence)
        results: list = []
        with session.lock:
            locked = self._locked(session)
            views = received.raw_views
            failure = runner.execute(locked, request.commands, response, results, views)
            session.touch()
            self._after_batch(locked, request, response, failure)
            # Joined under the lock: the chunks may be views of the session's tensors.
            answer = b"".join([response.SerializeToString(), *results])  # one copy
        return request, response, failure, answer

    def _after_batch(self, s: Session, request: Any, response: Any, failure: Any) -> None:
        """Durability's part of a batch (under the session's lock): what it applied, a due
        snapshot, and the durable sequence in the answer."""
        checkpointer = self.store.checkpointer
        if checkpointer is None:
            return
        if not request.commands and not request.sequence:
            # A reconnecting client asks where to replay from: what the session holds.
            response.durable_sequence = s.applied_seq
            return
        if request.commands:
            s.changed = True
            if failure is not None and s.interrupt.is_set():
                s.torn = True  # stopped between two commands: its replay must come whole
        s.applied_seq = max(s.applied_seq, request.sequence)
        checkpointer.after_batch(s)
        response.durable_sequence = s.durable_seq

    @rpc
    def Execute(self, received: ReceivedRequest, context: Any) -> Framed:
        request, response, failure, answer = self._batch(received, bearer_token(context))
        if failure is None:
            return Framed(response, answer)
        code, message = failure
        index = response.error.index
        what = runner.describe(request.commands[index])
        trailing = (("gradd-failed-index", str(index)), ("gradd-applied", str(response.applied)))
        raise BatchFailed(code, f"command {index} ({what}): {message}", trailing)

    @streaming_rpc
    def ExecuteStream(self, requests: Iterator[ReceivedRequest], context: Any) -> Iterator[Framed]:
        token = bearer_token(context)
        with self._streams_lock:
            self._streams[context] = False
        try:
            for received in requests:
                with self._streams_lock:
                    if self.stopping:
                        raise ServiceError(grpc.StatusCode.UNAVAILABLE, "server shutting down")
                    self._streams[context] = True
                _, response, _, answer = self._batch(received, token)
                with self._streams_lock:
                    self._streams[context] = False
                yield Framed(response, answer)
        finally:
            with self._streams_lock:
                self._streams.pop(context, None)

    @rpc
    def Fetch(self, request: spb.FetchRequest, context: Any) -> bytes:
        session = self._session(request.session_id, context)
        query = cpb.Fetch(
            handle=request.handle,
            grad=request.grad,
            metadata_only=request.metadata_only,
            typed_values=request.typed_values,
        )
        with session.lock:
            return b"".join(runner.fetch(self._locked(session), query))  # a TensorValue

    @rpc
    def GetGraph(self, request: spb.GetGraphRequest, context: Any) -> Any:
        session = self._session(request.session_id, context)
        query = cpb.Graph(handle=request.handle, params=request.params, publish=request.publish)
        with session.lock:
            return runner.graph(self._locked(session), query)

    @streaming_rpc
    def Watch(self, request: spb.WatchRequest, context: Any) -> Iterator:
        session = self._session(request.session_id, context)
        limit = self.store.config.watch_queue
        size = request.queue_size if 0 < request.queue_size <= limit else limit
        watcher = Watcher(size, request.graph_every, request.steps_only)
        with session.lock:
            self._locked(session).add_watcher(watcher)
        try:
            while context.is_active():
                event = watcher.next_event(timeout=0.5)
                if event is None:
                    continue
                yield event
                if event.HasField("ended"):
                    return
        finally:
            session.hub.remove(watcher)

    @rpc
    def ListSessions(self, request: spb.ListSessionsRequest, context: Any) -> Any:
        token = bearer_token(context)
        if not self.store.is_admin(token):
            if isinstance(self.store.owner(token), Session):
                raise ServiceError(
                    grpc.StatusCode.PERMISSION_DENIED, "ListSessions needs the admin token"
                )
            raise ServiceError(
                grpc.StatusCode.UNAUTHENTICATED,
                "ListSessions needs the server's admin token (--admin-token / GRADD_ADMIN_TOKEN)",
            )
        now = time.monotonic()
        response = spb.ListSessionsResponse()
        for s in self.store.sessions():
            item = response.sessions.add(
                session_id=s.id,
                label=s.label,
                device=s.device,
                age_seconds=now - s.created,
                idle_seconds=s.idle_for(now),
                tensors=len(s.table),
                bytes=s.table.nbytes,
                steps=s.steps,
                watchers=len(s.hub),
            )
            item.limits.max_bytes = s.table.max_bytes
            item.limits.max_tensors = s.table.max_tensors
        return response

    def begin_shutdown(self) -> None:
        """Refuse further stream batches; cancel streams that wait for their next batch."""
        with self._streams_lock:
            self.stopping = True
            idle = [ctx for ctx, busy in self._streams.items() if not busy]
        for context in idle:
            context.cancel()
