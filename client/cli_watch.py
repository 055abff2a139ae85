"""`gradd watch`: follow a session's Watch stream, show step, loss and rate, save pictures.

The stream is read on a background thread into a queue, so the main thread stays free to react
to Ctrl-C, SIGTERM and SIGUSR1 (write the pictures now) even while training is paused.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gradd.v1 import watch_pb2 as wpb

from .cli_render import why_not_rendered, write_graph, write_loss_curve

_END = object()  # the stream finished without an error


@dataclass
class WatchOptions:
    """What `gradd watch` shows and writes."""

    png: str | None = None  # loss curve PNG
    graph: str | None = None  # latest graph snapshot (.svg, .png, .pdf or .dot)
    every: int = 0  # also write the pictures every N steps (0: only at the end)
    print_every: int = 1  # plain output: one line per N steps
    live: bool = False  # a rich one-line live display instead of lines
    tensorboard: str | None = None  # also write TensorBoard events into this folder


# The rate is measured over at least this many seconds: steps arrive in bursts (the SDK sends its
# commands in batches), and two steps of one burst would claim a rate that training never keeps.
MIN_RATE_SECONDS = 1.0


class LossHistory:
    """Steps, losses and a recent window for the rate."""

    def __init__(self, window_seconds: float = 5.0) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.last_step = 0
        self._recent: deque[tuple[float, int]] = deque()
        self._window = window_seconds

    def add(self, step: wpb.StepEvent, timestamp: float) -> None:
        """Record one step event (its loss, when it has one)."""
        self.last_step = step.step
        if step.HasField("loss"):
            self.steps.append(step.step)
            self.losses.append(step.loss)
        self._recent.append((timestamp, step.step))
        while len(self._recent) > 2 and timestamp - self._recent[0][0] > self._window:
            self._recent.popleft()

    def rate(self) -> float | None:
        """Steps per second over the last few seconds (by step numbers, so missed events
        still count), or None until steps have been seen over MIN_RATE_SECONDS."""
        if len(self._recent) < 2:
            return None
        (t0, s0), (t1, s1) = self._recent[0], self._recent[-1]
        return (s1 - s0) / (t1 - t0) if t1 - t0 >= MIN_RATE_SECONDS else None


def step_line(step: int, loss: float | None, rate: float | None) -> str:
    """One line of plain output: `step 12  loss 0.693147  rate 45.1 steps/s`."""
    loss_text = f"{loss:.6g}" if loss is not None else "-"
    rate_text = f"{rate:.1f} steps/s" if rate is not None else "- steps/s"
    return f"step {step}  loss {loss_text}  rate {rate_text}"


class Watch:
    """One `gradd watch` run over an iterator of WatchEvents (a gRPC stream or the SDK's)."""

    def __init__(
        self, session_id: str, options: WatchOptions, out: TextIO = sys.stdout, err=sys.stderr
    ) -> None:
        self.session_id = session_id
        self.options = options
        self.out, self.err = out, err
        self.history = LossHistory()
        self.graph: wpb.GraphEvent | None = None
        self.ended: str | None = None
        self._dump_requested = threading.Event()
        self._stop_requested = threading.Event()
        self._last_dump_step = 0
        self._live: Any = None
        self._tensorboard: Any = None
        self._graph_images_missing = False

    def run(self, events: Iterable[wpb.WatchEvent], cancel: Callable[[], Any] = lambda: None):
        """Consume events until the session ends or a signal stops us; then write pictures.

        Errors of the stream (grpc.RpcError) are raised after the pictures are written."""
        inbox: queue.Queue = queue.Queue()
        reader = threading.Thread(
            target=_pump, args=(events, inbox), name="gradd-watch-reader", daemon=True
        )
        if self.options.tensorboard:
            from .tensorboard_log import TensorBoardLog

            self._tensorboard = TensorBoardLog(self.options.tensorboard, self.session_id)
        restore = self._install_signals()
        reader.start()
        self._start_live()
        failure: BaseException | None = None
        try:
            while not self._stop_requested.is_set():
                if self._dump_requested.is_set():
                    self._dump_requested.clear()
                    self.write_pictures()
                try:
                    item = inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    failure = item
                    break
                self._on_event(item)
                if self.ended is not None:
                    break
        except KeyboardInterrupt:  # Ctrl-C without our handler (not the main thread)
            pass
        finally:
            cancel()
            self._stop_live()
            restore()
        self.write_pictures()
        if self._tensorboard is not None:
            tb, self._tensorboard = self._tensorboard, None
            tb.close()
            self._say(
                f"wrote TensorBoard events to {tb.logdir} "
                f"({tb.scalars} scalars, {tb.images} graph images)"
            )
        if failure is not None:
            raise failure

    def request_pictures(self) -> None:
        """Ask for the pictures to be written now (SIGUSR1 does this)."""
        self._dump_requested.set()

    def stop(self) -> None:
        """Stop watching (Ctrl-C and SIGTERM do this)."""
        self._stop_requested.set()

    def _on_event(self, event: wpb.WatchEvent) -> None:
        kind = event.WhichOneof("kind")
        if event.missed:
            self._say(f"missed {event.missed} events (reading too slowly; training went on)")
        if kind == "started":
            self._say(f"watching session {self.session_id} from step {event.started.step}")
        elif kind == "step":
            self._on_step(event.step, event.timestamp)
        elif kind == "graph":
            self.graph = event.graph
            if self._tensorboard is not None:
                drawn = self._tensorboard.graph(event.graph.graph.dot, event.graph.step)
                if not drawn and not self._graph_images_missing:
                    self._graph_images_missing = True
                    self._say("no graph images in TensorBoard: Graphviz's `dot` is not installed")
        elif kind == "ended":
            self.ended = event.ended.reason
            self._say(f"session {self.session_id} ended ({self.ended})")

    def _on_step(self, step: wpb.StepEvent, timestamp: float) -> None:
        self.history.add(step, timestamp)
        loss = step.loss if step.HasField("loss") else None
        rate = self.history.rate()
        line = step_line(step.step, loss, rate)
        if self._tensorboard is not None:
            if loss is not None:
                self._tensorboard.scalar("loss", loss, step.step, timestamp)
            if rate is not None:
                self._tensorboard.scalar("steps_per_second", rate, step.step, timestamp)
        if self._live is not None:
            self._live.update(_rich_text(line))  # the session's id was said above it
        elif step.step % max(1, self.options.print_every) == 0:
            print(line, file=self.out, flush=True)
        every = self.options.every
        if every and step.step // every > self._last_dump_step // every:
            self._last_dump_step = step.step
            self.write_pictures()

    def write_pictures(self) -> None:
        """Write the loss curve and the latest graph, where asked for; say what was written."""
        opts = self.options
        if self._tensorboard is not None:
            self._tensorboard.flush()
        if opts.png:
            if self.history.steps:
                title = f"gradd session {self.session_id}"
                write_loss_curve(opts.png, self.history.steps, self.history.losses, title)
                self._say(f"wrote {opts.png} ({len(self.history.steps)} steps)")
            else:
                self._say(f"no loss yet: {opts.png} not written")
        if opts.graph:
            if self.graph is None:
                self._say(f"no graph snapshot yet: {opts.graph} not written")
                return
            path, rendered = write_graph(opts.graph, self.graph.graph.dot)
            if rendered:
                self._say(f"wrote {path} (graph of step {self.graph.step})")
            else:
                self._say(
                    f"wrote {path}: DOT text, not {Path(opts.graph).name} "
                    f"({why_not_rendered(opts.graph)}; render with `dot -Tsvg {path} -o out.svg`)"
                )

    def _say(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.err, flush=True)

    def _start_live(self) -> None:
        if not self.options.live:
            return
        from rich.console import Console
        from rich.live import Live

        self._live = Live(_rich_text("waiting for steps..."), console=Console(file=self.out))
        self._live.start()

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        handlers = {
            signal.SIGINT: lambda *_: self.stop(),
            signal.SIGTERM: lambda *_: self.stop(),
        }
        if hasattr(signal, "SIGUSR1"):
            handlers[signal.SIGUSR1] = lambda *_: self.request_pictures()
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def _rich_text(text: str) -> Any:
    """The text as a rich Text, so ids and numbers are never read as markup; on one line,
    cut short rather than wrapped on a narrow terminal (a wrapped live line is redrawn badly)."""
    from rich.text import Text as RichText

    return RichText(text, no_wrap=True, overflow="ellipsis")


def _pump(events: Iterable[wpb.WatchEvent], inbox: queue.Queue) -> None:
    # Runs on the reader thread: every event, then _END or the exception that ended the stream.
    try:
        for event in events:
            inbox.put(event)
        inbox.put(_END)
    except BaseException as exc:  # handed to the main thread, which reports it
        inbox.put(exc)
