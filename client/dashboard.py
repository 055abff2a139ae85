"""`gradd dashboard`: a local web page that shows a gradd-server's sessions training, live.

The page's server (Starlette on uvicorn, the `dashboard` extra) reads the gradd-server only
through its streams and listings, never faster than they stream:

- with the admin token, `ListSessions` every `--refresh` seconds (the only way to learn of new
  sessions and of their memory) and one `Watch` stream per session, opened when it is first
  listed; with one session's token, that session's `Watch` stream alone;
- each `Watch` stream is read on a thread of its own into `Board`, which keeps every session's
  row (label, device, age, steps, step rate, memory, end), its loss points and its latest graph;
- browsers get it by server-sent events (`/events`): the whole board when they connect, then
  what changed, at most `PUSH_INTERVAL` apart. Graph snapshots are rendered to SVG by Graphviz's
  `dot` when a page asks for them (`/graph/{session}.svg`), once per snapshot.

Tokens stay in this process: they are never printed, logged or put in the page. The page binds
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from gradd.v1 import service_pb2 as spb
from gradd.v1 import service_pb2_grpc as spb_grpc

from .cli_render import dot_program
from .cli_watch import LossHistory

STATIC = Path(__file__).with_name("dashboard_static")
PUSH_INTERVAL = 0.25  # seconds between two pushes of new steps to the pages
MAX_POINTS = 20_000  # loss points kept per session; past it every other one is dropped
SUBSCRIBER_QUEUE = 256  # messages a slow page may fall behind before it is made to reconnect
MAX_PAGES = 32  # pages connected at once; more are refused (503) until one closes
KEEP_ENDED = 50  # ended sessions kept on the board (the most recent); older ones are dropped
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet stream
CALL_TIMEOUT = 30.0
# The page's scripts and styles are its own files; the graph SVG is Graphviz's output, and this
# policy keeps any script in it (there is none) from running.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@dataclass
class SessionView:
    """What the board knows of one session."""

    id: str
    label: str = ""
    device: str = ""
    created: float = 0.0  # its creation time by our clock (from ListSessions' age)
    steps: int = 0
    bytes: int | None = None  # from ListSessions (admin token only)
    tensors: int | None = None
    ended: str | None = None  # "closed", "expired", "shutdown", or "gone" (no longer listed)
    error: str | None = None  # why its Watch stream failed, token-free
    history: LossHistory = field(default_factory=LossHistory)
    points: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    flushed: int = 0  # points already pushed to the pages
    replace: bool = False  # points were thinned: push them all again
    graph_dot: str | None = None
    graph_step: int = 0
    graph_seq: int = 0  # counts snapshots, so pages ask for each new one once
    dirty: bool = True  # its row changed since the last push

    def row(self, now: float) -> dict[str, Any]:
        """The session's row as the page shows it."""
        return {
            "id": self.id,
            "label": self.label,
            "device": self.device,
            "age": max(0.0, now - self.created) if self.created else None,
            "steps": self.steps,
            "rate": self.history.rate(),
            "bytes": self.bytes,
            "tensors": self.tensors,
            "ended": self.ended,
            "error": self.error,
            "graph": self.graph_seq,
            "graph_step": self.graph_step,
        }


class Board:
    """Every session's state, written by the stream threads and read by the page's server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[str, SessionView] = {}
        self.forgotten: list[str] = []  # ids dropped since the last push, for the pages
        self.listing_error: str | None = None  # why the last ListSessions failed, token-free
        self._listing_changed = False

    def listing(self, error: str | None) -> None:
        """The outcome of a ListSessions call: None, or why it failed."""
        with self.lock:
            if error != self.listing_error:
                self.listing_error, self._listing_changed = error, True

    def session(self, session_id: str) -> SessionView:
        """The session's view, made on first use (call with the lock held)."""
        view = self.sessions.get(session_id)
        if view is None:
            view = self.sessions[session_id] = SessionView(session_id)
        return view

    def listed(self, summaries: list[Any], now: float) -> list[str]:
        """Apply one ListSessions answer; returns the ids seen for the first time."""
        new = []
        with self.lock:
            seen = set()
            for s in summaries:
                seen.add(s.session_id)
                if s.session_id not in self.sessions:
                    new.append(s.session_id)
                view = self.session(s.session_id)
                view.label, view.device = s.label, s.device
                view.created = now - s.age_seconds
                view.bytes, view.tensors = s.bytes, s.tensors
                view.steps = max(view.steps, s.steps)
                view.dirty = True
            for view in self.sessions.values():
                if view.id not in seen and view.ended is None:
                    view.ended, view.dirty = "gone", True
            self._forget_old_ended()
        return new

    def _forget_old_ended(self) -> None:
        # The board stays bounded however many sessions come and go (call with the lock held).
        ended = [v for v in self.sessions.values() if v.ended is not None]
        for view in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self.sessions[view.id]
            self.forgotten.append(view.id)

    def event(self, session_id: str, event: Any) -> None:
        """Apply one WatchEvent of a session."""
        kind = event.WhichOneof("kind")
        with self.lock:
            view = self.session(session_id)
            view.dirty = True
            if kind == "started":
                view.steps = max(view.steps, event.started.step)
            elif kind == "step":
                step = event.step
                view.steps = max(view.steps, step.step)
                view.history.add(step, event.timestamp)
                if step.HasField("loss"):
                    view.points.append((step.step, step.loss))
                    if len(view.points) > MAX_POINTS:
                        view.points = view.points[::2]
                        view.replace = True
            elif kind == "graph":
                view.graph_dot = event.graph.graph.dot
                view.graph_step = event.graph.step
                view.graph_seq += 1
            elif kind == "ended":
                view.ended = event.ended.reason

    def failed(self, session_id: str, message: str) -> None:
        """A session's Watch stream failed: say why on its row."""
        with self.lock:
            view = self.session(session_id)
            view.error, view.dirty = message, True

    def snapshot(self) -> dict[str, Any]:
        """Everything, for a page that just connected (call on the event loop)."""
        now = time.time()
        with self.lock:
            return {
                "sessions": [v.row(now) for v in self.sessions.values()],
                "points": {v.id: v.points[: v.flushed] for v in self.sessions.values()},
                "listing_error": self.listing_error,
            }

    def changes(self) -> dict[str, Any] | None:
        """What changed since the last call: rows, and new points (or all, when thinned)."""
        now = time.time()
        rows, points, replaced = [], {}, {}
        with self.lock:
            forgotten, self.forgotten = self.forgotten, []
            listing_changed, self._listing_changed = self._listing_changed, False
            for v in self.sessions.values():
                if v.replace:
                    replaced[v.id] = list(v.points)
                    v.replace = False
                elif len(v.points) > v.flushed:
                    points[v.id] = v.points[v.flushed :]
                v.flushed = len(v.points)
                if v.dirty:
                    rows.append(v.row(now))
                    v.dirty = False
        if not (rows or points or replaced or forgotten or listing_changed):
            return None
        changes = {"sessions": rows, "points": points, "replace": replaced, "forget": forgotten}
        if listing_changed:
            changes["listing_error"] = self.listing_error
        return changes

    def graph(self, session_id: str) -> tuple[str, int, int] | None:
        """The latest snapshot's DOT text, step and number."""
        with self.lock:
            v = self.sessions.get(session_id)
            if v is None or v.graph_dot is None:
                return None
            return v.graph_dot, v.graph_step, v.graph_seq


class Feeds:
    """The gradd-server side: ListSessions and one Watch stream per session, on threads."""

    def __init__(
        self,
        channel: grpc.Channel,
        board: Board,
        *,
        token: str | None,
        admin_token: str | None,
        session: str | None,
        refresh: float,
        describe: Callable[[grpc.RpcError], str],
    ) -> None:
        self.channel, self.board = channel, board  # plaintext or TLS, as the command chose
        self.token, self.admin_token, self.session = token, admin_token, session
        self.refresh = refresh
        self.describe = describe
        self.stop_event = threading.Event()
        self.stub = spb_grpc.AutogradServiceStub(self.channel)
        self._calls: dict[str, Any] = {}  # session id -> its Watch call, while it runs
        self._calls_lock = threading.Lock()

    def start(self) -> None:
        """Start following: the one session, or the listing that finds every session."""
        if self.session:
            self._watch(self.session, self.token or self.admin_token)
        else:
            self._spawn(self._list_loop, "gradd-dashboard-list")

    def list_once(self) -> list[str]:
        """One ListSessions call; new sessions get a Watch stream. Raises grpc.RpcError."""
        md = (("authorization", f"Bearer {self.admin_token}"),)
        response = self.stub.ListSessions(
            spb.ListSessionsRequest(), metadata=md, timeout=CALL_TIMEOUT
        )
        new = self.board.listed(list(response.sessions), time.time())
        for session_id in new:
            self._watch(session_id, self.admin_token)
        return new

    def _list_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.list_once()
                self.board.listing(None)
            except grpc.RpcError as err:
                self.board.listing(self.describe(err))
            self.stop_event.wait(self.refresh)

    def _watch(self, session_id: str, token: str | None) -> None:
        md = (("x-gradd-session", session_id),)  # a proxy routes the stream by it
        if token:
            md += (("authorization", f"Bearer {token}"),)
        call = self.stub.Watch(spb.WatchRequest(session_id=session_id), metadata=md)
        with self._calls_lock:
            self._calls[session_id] = call
        self._spawn(lambda: self._read(session_id, call), f"gradd-dashboard-watch-{session_id}")

    def _read(self, session_id: str, call: Any) -> None:
        try:
            for event in call:
                self.board.event(session_id, event)
        except grpc.RpcError as err:
            if not self.stop_event.is_set():
                self.board.failed(session_id, self.describe(err))
        finally:
            with self._calls_lock:
                self._calls.pop(session_id, None)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        threading.Thread(target=target, name=name, daemon=True).start()

    def close(self) -> None:
        """Stop listing, cancel every Watch stream and close the channel."""
        self.stop_event.set()
        with self._calls_lock:
            calls = list(self._calls.values())
        for call in calls:
            call.cancel()
        self.channel.close()


class GraphRenderer:
    """Each session's latest snapshot as SVG, rendered by `dot` once per snapshot."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self._cache: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()

    def svg(self, session_id: str) -> tuple[bytes, str] | None:
        """(content, media type): the SVG, or the DOT text where Graphviz is missing."""
        found = self.board.graph(session_id)
        if found is None:
            return None
        dot_text, _step, seq = found
        dot = dot_program()
        if dot is None:
            return dot_text.encode(), "text/vnd.graphviz; charset=utf-8"
        with self._lock:
            cached = self._cache.get(session_id)
            if cached is not None and cached[0] == seq:
                return cached[1], "image/svg+xml"
        result = subprocess.run(
            [dot, "-Tsvg"], input=dot_text.encode(), capture_output=True, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"dot -Tsvg failed: {result.stderr.decode(errors='replace')}")
        with self._lock:
            self._cache[session_id] = (seq, result.stdout)
        return result.stdout, "image/svg+xml"


def make_app(board: Board, feeds: Feeds, title: str) -> Any:
    """The Starlette application: the page, its static files, /events and /graph/ID.svg."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    renderer = GraphRenderer(board)
    hub = Hub(board)

    async def index(request: Any) -> Response:
        page = (STATIC / "index.html").read_text().replace("{{title}}", _html_escape(title))
        return Response(page, media_type="text/html", headers={"Content-Security-Policy": CSP})

    async def favicon(request: Any) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    async def events(request: Any) -> Response:
        if hub.pages >= MAX_PAGES:
            return JSONResponse({"error": "too many pages open"}, status_code=503)
        return StreamingResponse(
            hub.stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def graph(request: Any) -> Response:
        session_id = request.path_params["session"]
        found = await asyncio.to_thread(renderer.svg, session_id)
        if found is None:
            return JSONResponse({"error": "no graph snapshot yet"}, status_code=404)
        content, media = found
        return Response(content, media_type=media, headers={"Cache-Control": "no-store"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        task = asyncio.create_task(hub.pump())
        feeds.start()
        try:
            yield
        finally:
            task.cancel()
            hub.close()
            feeds.close()

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/events", events),
        Route("/graph/{session}.svg", graph),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class Hub:
    """Fans the board's changes out to every connected page (one bounded queue per page)."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self._queues: set[asyncio.Queue] = set()
        self._closed = asyncio.Event()
        self.pages = 0  # streams open (counted from the request, before the first message)

    async def pump(self) -> None:
        """Every PUSH_INTERVAL: what changed, to every page."""
        while True:
            await asyncio.sleep(PUSH_INTERVAL)
            changes = self.board.changes()
            if changes is None:
                continue
            message = _sse("update", changes)
            for q in list(self._queues):
                try:
                    q.put_nowait(message)
                except asyncio.QueueFull:  # too slow: end its stream, the page reconnects
                    self._queues.discard(q)
                    self._drop(q)

    def _drop(self, q: asyncio.Queue) -> None:
        while not q.empty():
            q.get_nowait()
        q.put_nowait(None)

    async def stream(self):
        """One page's event stream: the whole board, then its changes."""
        q: asyncio.Queue = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE + 1)
        # Registered in the same step as the snapshot is taken: no change is lost or doubled.
        first = _sse("snapshot", self.board.snapshot())
        self._queues.add(q)
        self.pages += 1
        try:
            yield first
            while not self._closed.is_set():
                try:
                    message = await asyncio.wait_for(q.get(), KEEPALIVE)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if message is None:
                    return
                yield message
        finally:
            self._queues.discard(q)
            self.pages -= 1

    def close(self) -> None:
        self._closed.set()
        for q in list(self._queues):
            self._drop(q)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _html_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    return sock


def serve(app: Any, sock: socket.socket) -> None:
    """Serve the app on the socket until Ctrl-C or SIGTERM (uvicorn handles both)."""
    import uvicorn

    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stopped cleanly, then re-raised the Ctrl-C
        pass
