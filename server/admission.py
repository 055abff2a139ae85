"""Admission: whether a call may start, which threads serve it, and its request parsed safely.

Every call passes here before its request is read (a `grpc.ServerInterceptor`). The rules:

- **Classes of calls on threads of their own.** Health checks, `ServerInfo`/`CreateSession`/
  `ListSessions`, open streams (reflection, health Watch) and session calls each run on a pool
  of their own, so no amount of one kind delays another: a health check never waits behind
  open streams or long batches.
- **Tokens before bodies.** A session call (`Execute`, `ExecuteStream`, `Fetch`, ...) whose
  bearer token is neither a session's nor the admin token is refused UNAUTHENTICATED before its
  request is read, so an unauthenticated client can make the server hold no more than what
  HTTP/2 flow control lets it send unread, and learns nothing about which sessions exist.
  `CreateSession` needs no token, but one that is sent must be known (a session's or the
  admin token): a client given a wrong token learns it at once, not at its first session call.
- **Allowances per session.** A session (or the admin token) may run at most
  `UNARY_CALLS_PER_SESSION` unary calls, `EXECUTE_STREAMS_PER_SESSION` ExecuteStreams and
  `--max-watchers` Watch streams at once; the session pool has enough threads for every
  session's whole allowance (unless `--workers` says fewer), so an idle or hostile session can
  hold only its own share. Past any bound: RESOURCE_EXHAUSTED at once, never a queue.
- **Parsing on the call's own thread.** Requests arrive as bytes and are parsed here, so a
  malformed body is INVALID_ARGUMENT (not gRPC's INTERNAL "Exception deserializing request!")
  and parsing never runs on gRPC's polling thread, which serves every call.

To read requests only once admitted, every call is served by a request-streaming handler:
gRPC then asks for the request message only when the handler reads it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc

from .config import (
    EXECUTE_STREAMS_PER_SESSION,
    UNARY_CALLS_PER_SESSION,
    ServerConfig,
    session_threads,
)
from .deadlines import Deadlines
from .errors import ServiceError, invalid
from .session import Session
from .session_store import ADMIN, WRONG_TOKEN, SessionStore

AUTOGRAD = "gradd.v1.AutogradService"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
OPEN_METHODS = {"ServerInfo", "CreateSession"}  # no token needed
WRONG_CREATE_TOKEN = (
    "wrong token: CreateSession needs none, but one that is sent must be a session's or the "
    "admin token"
)
CONTROL_METHODS = OPEN_METHODS | {"ListSessions"}  # short, never wait on a session

HEALTH_THREADS, HEALTH_CALLS = 2, 64
CONTROL_THREADS, CONTROL_CALLS = 4, 64
OPEN_STREAMS = 8  # reflection and health Watch streams at once, server-wide
OPEN_STREAMS_PER_PEER = 2  # ... from one connection
OPEN_STREAM_SECONDS = 60.0  # an open stream is ended after this long (grpcurl needs ms)
READ_SECONDS = 2.0  # a call outside any session must have sent its request by then
ADMIN_SHARE = 4  # the admin token's allowances are this many sessions' allowances


def bearer(metadata: Any) -> str | None:
    """The token of `authorization: Bearer <token>` metadata, if sent."""
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return None


def session_header(metadata: Any) -> str:
    """The `x-gradd-session` metadata the SDK sends with every call (empty if none)."""
    for key, value in metadata or ():
        if key == "x-gradd-session":
            return str(value)
    return ""


class _Release:
    """Gives a call's admission back exactly once, whichever way the call ends."""

    __slots__ = ("_undo", "_done", "_lock")

    def __init__(self, undo: Callable[[], None]) -> None:
        self._undo = undo
        self._done = False
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._undo()


class Admission(grpc.ServerInterceptor):
    """The admission rules above, for one server."""

    def __init__(
        self,
        store: SessionStore,
        config: ServerConfig,
        on_refused: Callable[[str, grpc.StatusCode], None] | None = None,
    ) -> None:
        self.store = store
        self.on_refused = on_refused  # (method path, status): metrics of calls refused here
        self.config = config
        self.session_threads = session_threads(config)

        def pool(n: int, name: str) -> futures.ThreadPoolExecutor:
            return futures.ThreadPoolExecutor(n, thread_name_prefix=f"gradd-{name}")

        self.pools = {
            "health": pool(HEALTH_THREADS, "health"),
            "control": pool(CONTROL_THREADS, "control"),
            "open": pool(OPEN_STREAMS, "open-stream"),
            "session": pool(self.session_threads, "worker"),
            "refusal": pool(2, "refusal"),
        }
        self._class_caps = {
            "health": HEALTH_CALLS,
            "control": CONTROL_CALLS,
            "open": OPEN_STREAMS,
            "session": self.session_threads,
        }
        per_session = {
            "unary": UNARY_CALLS_PER_SESSION,
            "execute_stream": EXECUTE_STREAMS_PER_SESSION,
            "watch": config.max_watchers,
        }
        self._owner_caps = per_session
        self._admin_caps = {k: v * ADMIN_SHARE for k, v in per_session.items()}
        self.deadlines = Deadlines()  # read limits and open streams' lifetimes
        self._lock = threading.Lock()
        # Calls running, by ("class", class), ("session", id, kind), ("admin", kind), ("peer", p).
        self._running: Counter[tuple] = Counter()

    def shutdown(self) -> None:
        """Stop the pools' idle threads (calls still running finish on their own)."""
        for executor in self.pools.values():
            executor.shutdown(wait=False, cancel_futures=True)

    # --- deciding ---------------------------------------------------------------------------
    def intercept_service(self, continuation: Callable, details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        service, _, name = method.lstrip("/").rpartition("/")
        if method == HEALTH_CHECK:
            return self._admit(method, handler, "health", ())
        if service != AUTOGRAD:  # reflection, health Watch
            return self._admit(method, handler, "open", (), open_stream=True)
        if name in OPEN_METHODS:
            if name == "CreateSession" and not self._valid_if_sent(details.invocation_metadata):
                return self._refusal(method, grpc.StatusCode.UNAUTHENTICATED, WRONG_CREATE_TOKEN)
            return self._admit(method, handler, "control", ())
        metadata = details.invocation_metadata
        owner = self.store.owner(bearer(metadata), session_header(metadata))
        if owner is None:
            return self._refusal(method, grpc.StatusCode.UNAUTHENTICATED, WRONG_TOKEN)
        if name in CONTROL_METHODS:
            return self._admit(method, handler, "control", ())
        kind = {"ExecuteStream": "execute_stream", "Watch": "watch"}.get(name, "unary")
        if isinstance(owner, Session):
            owner.orphaned_since = 0.0  # its client is back
        key = (ADMIN, kind) if owner == ADMIN else ("session", owner.id, kind)
        caps = self._admin_caps if owner == ADMIN else self._owner_caps
        if self._running[key] >= caps[kind]:
            return self._refusal(
                method,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many {name} calls at once for this session: the limit is {caps[kind]}",
            )
        on_end = self._stream_ended(owner) if kind == "execute_stream" else None
        return self._admit(method, handler, "session", (key,), on_end=on_end)

    def _valid_if_sent(self, metadata: Any) -> bool:
        """No bearer token, or one the server knows: a wrong one is refused even where none
        is needed, so that a client that sends one learns at once that it is wrong."""
        token = bearer(metadata)
        return token is None or self.store.owner(token) is not None

    def _admit(
        self,
        method: str,
        handler: Any,
        klass: str,
        keys: tuple,
        *,
        open_stream: bool = False,
        on_end: Callable[[], None] | None = None,
    ) -> Any:
        with self._lock:
            running = self._running[("class", klass)]
            if running >= self._class_caps[klass]:
                refused = running
            else:
                refused = None
                for key in (("class", klass), *keys):
                    self._running[key] += 1
        if refused is not None:
            what = "session calls" if klass == "session" else f"{klass} calls"
            return self._refusal(
                method,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"server busy: {refused} {what} running, the limit is {self._class_caps[klass]}",
            )

        def undo() -> None:
            with self._lock:
                for key in (("class", klass), *keys):
                    self._running[key] -= 1
                    if not self._running[key]:
                        del self._running[key]
            if on_end is not None:
                on_end()

        read_limit = None if klass == "session" else READ_SECONDS
        return self._wrapped(handler, self.pools[klass], undo, open_stream, read_limit)

    def _stream_ended(self, owner: Any) -> Callable[[], None]:
        def ended() -> None:  # the last ExecuteStream of a session gone: an orphan until back
            if isinstance(owner, Session) and not owner.closed:
                with self._lock:
                    left = self._running[("session", owner.id, "execute_stream")]
                if not left:
                    owner.orphaned_since = time.monotonic()

        return ended

    def _refusal(self, method: str, code: grpc.StatusCode, message: str) -> Any:
        if self.on_refused is not None:
            self.on_refused(method, code)

        def refuse(requests: Iterator[bytes], context: grpc.ServicerContext) -> None:
            context.abort(code, message)  # the request is never read

        refuse.experimental_thread_pool = self.pools["refusal"]  # type: ignore[attr-defined]
        return grpc.stream_unary_rpc_method_handler(refuse)

    # --- serving ----------------------------------------------------------------------------
    def _wrapped(
        self,
        handler: Any,
        executor: Any,
        undo: Callable[[], None],
        open_stream: bool,
        read_limit: float | None,
    ) -> Any:
        parse = handler.request_deserializer or (lambda wire: wire)
        streaming_in, streaming_out = handler.request_streaming, handler.response_streaming
        if streaming_in:
            inner = handler.stream_stream if streaming_out else handler.stream_unary
        else:
            inner = handler.unary_stream if streaming_out else handler.unary_unary
        peers = self._running

        def argument(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
            if streaming_in:
                return _parsed(requests, parse)
            if read_limit is None:
                wire = next(requests, None)
            else:  # a call without a token may not hold a thread by sending slowly
                timer = self.deadlines.after(read_limit, context.cancel)
                try:
                    wire = next(requests, None)
                finally:
                    timer.cancel()
            if wire is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call sent no request")
            try:
                return parse(wire)
            except Exception as exc:  # any parse failure is the client's malformed request
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, _malformed(exc))

        def start(context: grpc.ServicerContext) -> Callable[[], None]:
            release = _Release(undo)
            if not context.add_callback(release):
                release()  # the call is over already
            if open_stream:
                self._limit_open_stream(context, release, peers)
            return release

        if streaming_out:

            def behavior(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator:
                return _responses(inner, argument, requests, context, start(context))

            make = grpc.stream_stream_rpc_method_handler
        else:

            def behavior(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
                release = start(context)
                try:
                    return inner(argument(requests, context), context)
                finally:
                    release()

            make = grpc.stream_unary_rpc_method_handler
        behavior.experimental_thread_pool = executor  # type: ignore[attr-defined]
        return make(behavior, response_serializer=handler.response_serializer)

    def _limit_open_stream(self, context: Any, release: Any, running: Counter) -> None:
        peer = ("peer", context.peer())
        with self._lock:
            running[peer] += 1
            crowded = running[peer] > OPEN_STREAMS_PER_PEER
        timer = self.deadlines.after(OPEN_STREAM_SECONDS, context.cancel)

        def forget_peer() -> None:
            timer.cancel()
            with self._lock:
                running[peer] -= 1
                if not running[peer]:
                    del running[peer]

        context.add_callback(forget_peer)
        if crowded:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {OPEN_STREAMS_PER_PEER} reflection or health streams per connection",
            )


def _malformed(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"malformed request: {text[:200]}"


def _parsed(requests: Iterator[bytes], parse: Callable[[bytes], Any]) -> Iterator[Any]:
    for wire in requests:
        try:
            message = parse(wire)
        except Exception as exc:  # any parse failure is the client's malformed request
            raise invalid(_malformed(exc)) from None
        yield message


def _responses(
    inner: Callable,
    argument: Callable,
    requests: Iterator[bytes],
    context: grpc.ServicerContext,
    release: Callable[[], None],
) -> Iterator[Any]:
    try:
        yield from inner(argument(requests, context), context)
    except ServiceError as exc:  # a malformed message in a stream served by another servicer
        context.abort(exc.code, exc.message)
    finally:
        release()
