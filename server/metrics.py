"""Prometheus metrics of a gradd-server, served over HTTP on `--metrics-port` (0: off).

Nothing in the servicer knows about metrics: a `grpc.ServerInterceptor` times every RPC,
counts statuses and the commands inside Execute/ExecuteStream batches, and a collector reads
the session store when Prometheus scrapes. Counters only go up; Prometheus's `rate()` turns
them into per-second figures (ops per second, backward calls per second).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
import prometheus_client
from gradd.v1 import command_pb2 as cpb
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .session_store import SessionStore

log = logging.getLogger("gradd.server")

# From a small op batch on loopback (~100 us) to a 64 MiB tensor or a long stream.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
_EXECUTE_METHODS = {"Execute", "ExecuteStream"}


class SessionStoreCollector(Collector):
    """Gauges read from the session store at scrape time (no bookkeeping on the hot path)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sessions = self.store.sessions()
        yield GaugeMetricFamily("gradd_sessions_open", "Sessions open now.", value=len(sessions))
        yield GaugeMetricFamily(
            "gradd_tensors_held",
            "Tensor handles bound in all sessions.",
            value=sum(len(s.table) for s in sessions),
        )
        yield GaugeMetricFamily(
            "gradd_bytes_held",
            "Bytes of the tensors bound in all sessions.",
            value=sum(s.table.nbytes for s in sessions),
        )
        yield GaugeMetricFamily(
            "gradd_watchers_open",
            "Watch streams open in all sessions.",
            value=sum(len(s.hub) for s in sessions),
        )


class ServerMetrics:
    """The metrics of one server in their own registry, and the interceptor that feeds them."""

    def __init__(self, store: SessionStore) -> None:
        self.registry = CollectorRegistry()
        for make in (
            prometheus_client.ProcessCollector,
            prometheus_client.PlatformCollector,
            prometheus_client.GCCollector,
        ):
            make(registry=self.registry)
        self.registry.register(SessionStoreCollector(store))
        labels = ("service", "method")
        self.rpcs = Counter(
            "gradd_rpcs",
            "Finished RPCs by method and status code.",
            (*labels, "code"),
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "gradd_rpc_duration_seconds",
            "Time from the start to the end of an RPC (for streams: the stream's lifetime).",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "gradd_errors",
            "Errors by status code: failed RPCs (not CANCELLED) and failed ExecuteStream batches.",
            ("code",),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "gradd_batch_duration_seconds",
            "Time to apply one batch of commands (Execute, or one request of ExecuteStream).",
            ("method",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commands = Counter(
            "gradd_commands",
            "Commands received in Execute/ExecuteStream batches, by kind (op, backward, ...).",
            ("kind",),
            registry=self.registry,
        )
        self.ops = Counter("gradd_ops", "Op commands received.", registry=self.registry)
        self.backwards = Counter(
            "gradd_backward", "Backward commands received (training steps).", registry=self.registry
        )
        self.interceptor = MetricsInterceptor(self)

    def refused(self, method_path: str, code: grpc.StatusCode) -> None:
        """Count a call that admission refused before it reached a handler."""
        service, _, method = method_path.lstrip("/").rpartition("/")
        self.rpcs.labels(service, method, code.name).inc()
        self.rpc_seconds.labels(service, method).observe(0.0)
        self.errors.labels(code.name).inc()

    def count_commands(self, request: cpb.ExecuteRequest) -> None:
        """Count the commands of one batch by kind."""
        tally = Tally(command.WhichOneof("kind") for command in request.commands)
        for kind, n in tally.items():
            self.commands.labels(kind or "unset").inc(n)
        if tally["op"]:
            self.ops.inc(tally["op"])
        if tally["backward"]:
            self.backwards.inc(tally["backward"])

    def serve(self, port: int, host: str) -> None:
        """Serve /metrics over HTTP on host:port (in a daemon thread)."""
        prometheus_client.start_http_server(port, addr=host, registry=self.registry)
        shown = f"[{host}]" if ":" in host else host
        log.info("metrics on http://%s:%d/metrics", shown, port)


class _Call:
    """One RPC being timed: records its status exactly once, whichever path ends it."""

    def __init__(self, metrics: ServerMetrics, service: str, method: str, context: Any) -> None:
        self.metrics, self.service, self.method, self.context = metrics, service, method, context
        self.start = time.perf_counter()
        self._lock = threading.Lock()
        self._done = False
        context.add_callback(self._terminated)

    def finish(self, code: grpc.StatusCode) -> None:
        """Record the RPC's duration and status (the first call wins)."""
        with self._lock:
            if self._done:
                return
            self._done = True
        m = self.metrics
        m.rpc_seconds.labels(self.service, self.method).observe(time.perf_counter() - self.start)
        m.rpcs.labels(self.service, self.method, code.name).inc()
        # A client hanging up (Ctrl-C on a watcher) is routine, not an error of the server.
        if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
            m.errors.labels(code.name).inc()

    def finish_from_context(self, raised: bool) -> None:
        """Finish with the status the handler set (abort/set_code), else OK or UNKNOWN."""
        code = self.context.code()
        if code is None:
            code = grpc.StatusCode.UNKNOWN if raised else grpc.StatusCode.OK
        self.finish(code)

    def _terminated(self) -> None:
        # gRPC ends the call before the handler did: the client cancelled or the deadline passed.
        code = self.context.code()
        if code is None:
            expired = self.context.time_remaining() <= 0
            code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
        self.finish(code)


class MetricsInterceptor(grpc.ServerInterceptor):
    """Wraps every handler: times it, records its status, counts Execute commands."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        if handler.request_streaming and handler.response_streaming:
            wrap, make = self._stream_stream, grpc.stream_stream_rpc_method_handler
            behavior = handler.stream_stream
        elif handler.request_streaming:
            wrap, make = self._stream_unary, grpc.stream_unary_rpc_method_handler
            behavior = handler.stream_unary
        elif handler.response_streaming:
            wrap, make = self._unary_stream, grpc.unary_stream_rpc_method_handler
            behavior = handler.unary_stream
        else:
            wrap, make = self._unary_unary, grpc.unary_unary_rpc_method_handler
            behavior = handler.unary_unary
        return make(
            wrap(behavior, service, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _unary_unary(self, behavior: Callable, service: str, method: str) -> Callable:
        metrics = self.metrics
        is_execute = method == "Execute"

        def handle(request: Any, context: Any) -> Any:
            call = _Call(metrics, service, method, context)
            if is_execute:
                metrics.count_commands(request)
            try:
                response = behavior(request, context)
            except BaseException:
                call.finish_from_context(raised=True)
                raise
            finally:
                if is_execute:
                    metrics.batch_seconds.labels(method).observe(time.perf_counter() - call.start)
            call.finish_from_context(raised=False)
            return response

        return handle

    def _stream_unary(self, behavior: Callable, service: str, method: str) -> Callable:
        metrics = self.metrics

        def handle(requests: Iterator[Any], context: Any) -> Any:
            call = _Call(metrics, service, method, context)
            try:
                response = behavior(requests, context)
            except BaseException:
                call.finish_from_context(raised=True)
                raise
            call.finish_from_context(raised=False)
            return response

        return handle

    def _unary_stream(self, behavior: Callable, service: str, method: str) -> Callable:
        metrics = self.metrics

        def handle(request: Any, context: Any) -> Iterator[Any]:
            call = _Call(metrics, service, method, context)
            return _timed_responses(call, behavior(request, context))

        return handle

    def _stream_stream(self, behavior: Callable, service: str, method: str) -> Callable:
        metrics = self.metrics
        is_execute = method in _EXECUTE_METHODS

        def handle(requests: Iterator[Any], context: Any) -> Iterator[Any]:
            call = _Call(metrics, service, method, context)
            if not is_execute:
                return _timed_responses(call, behavior(requests, context))
            pulled: deque[float] = deque()  # when each batch was read; answers come in order
            responses = behavior(_counted_requests(metrics, requests, pulled), context)
            return _timed_responses(call, _timed_batches(metrics, method, responses, pulled))

        return handle


def _counted_requests(
    metrics: ServerMetrics, requests: Iterable[cpb.ExecuteRequest], pulled: deque[float]
) -> Iterator[cpb.ExecuteRequest]:
    for request in requests:
        metrics.count_commands(request)
        pulled.append(time.perf_counter())
        yield request


def _timed_batches(
    metrics: ServerMetrics, method: str, responses: Iterable[Any], pulled: deque[float]
) -> Iterator[Any]:
    histogram = metrics.batch_seconds.labels(method)
    for response in responses:
        if pulled:
            histogram.observe(time.perf_counter() - pulled.popleft())
        if response.HasField("error"):
            metrics.errors.labels(cpb.Code.Name(response.error.code)).inc()
        yield response


def _timed_responses(call: _Call, responses: Iterable[Any]) -> Iterator[Any]:
    raised = False
    try:
        yield from responses
    except GeneratorExit:  # gRPC dropped the stream (client gone): the callback records it
        raise
    except BaseException:
        raised = True
        raise
    finally:
        if call.context.is_active() or raised:
            call.finish_from_context(raised)


def serve_metrics(port: int, host: str, store: SessionStore) -> ServerMetrics | None:
    """Start the metrics endpoint; the metrics (None when off)."""
    if not port:
        return None
    metrics = ServerMetrics(store)
    try:
        metrics.serve(port, host)
    except OSError as exc:
        raise SystemExit(f"gradd-server: cannot serve metrics on {host}:{port}: {exc}") from exc
    return metrics
