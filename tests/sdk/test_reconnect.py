"""Nothing lost for the script: the article's loop survives its server being killed.

A real `gradd-server --state-dir` is killed (SIGKILL, or SIGTERM as a rolling restart) while
the article's 800-epoch loop runs through it, and started again on the same port and state
directory; the loop goes on by itself (the SDK reconnects and replays what was not durable)
and ends with parameters bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gradd
import pytest
from server_harness import DurableServer

from .test_article import article_step, data, params

EPOCHS = 800
KILL_AT = 300  # epoch the loop has reached when the server is killed


def article_loop(s: gradd.Session, article_data: tuple, reached: threading.Event | None = None):
    """The article's loop, synchronizing every 50 epochs; (b, w) as arrays."""
    x_train_tensor, y_train_tensor = data(s, article_data)
    b, w = params(s)
    for epoch in range(EPOCHS):
        article_step(s, x_train_tensor, y_train_tensor, b, w, 0.1)
        if epoch % 50 == 49:
            s.synchronize()
        if reached is not None and epoch == KILL_AT:
            reached.set()
    return b.detach().numpy(), w.detach().numpy()


@pytest.fixture(scope="module")
def uninterrupted(article_data: tuple) -> tuple:
    """The loop without a restart (embedded: the engine the server runs)."""
    with gradd.connect() as s:
        return article_loop(s, article_data)


def run_with_restart(server: DurableServer, article_data: tuple, restart) -> tuple:
    """The loop on `server`, which `restart(server)` interrupts once the loop is mid-run."""
    reached = threading.Event()
    result: dict = {}

    def train() -> None:
        try:
            with gradd.connect(server.addr, timeout=120) as s:
                assert s.durable
                result["params"] = article_loop(s, article_data, reached)
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    trainer = threading.Thread(target=train)
    trainer.start()
    deadline = time.monotonic() + 120
    while not reached.wait(0.1) and trainer.is_alive() and time.monotonic() < deadline:
        pass
    if "error" in result:
        raise result["error"]
    assert reached.is_set()
    restart(server)
    trainer.join(180)
    assert not trainer.is_alive()
    if "error" in result:
        raise result["error"]
    return result["params"]


def kill_and_restart(server: DurableServer) -> None:
    server.kill()
    server.start()


def terminate_and_restart(server: DurableServer) -> None:
    assert server.terminate() == 0
    server.start()


@pytest.mark.cpu_only("compared with an embedded CPU run: a GPU draws its own numbers")
@pytest.mark.parametrize(
    "restart, checkpoint_every",
    [
        (kill_and_restart, "0.2"),
        (terminate_and_restart, "0.2"),
        (kill_and_restart, "1000"),  # before the first periodic snapshot
        (terminate_and_restart, "1000"),
    ],
    ids=["sigkill", "sigterm", "sigkill-before-first-snapshot", "sigterm-before-first-snapshot"],
)
def test_article_loop_survives_a_restart(
    tmp_path: Path, article_data: tuple, uninterrupted: tuple, restart, checkpoint_every: str
) -> None:
    server = DurableServer(tmp_path, "--checkpoint-every", checkpoint_every)
    try:
        b, w = run_with_restart(server, article_data, restart)
        restored = server.proc.wait_log("session [0-9a-f]+ restored")
        server.proc.wait_log("session [0-9a-f]+ resumed by its client")
    finally:
        server.stop()
    assert b.tobytes() == uninterrupted[0].tobytes()
    assert w.tobytes() == uninterrupted[1].tobytes()
    if checkpoint_every == "1000" and restart is kill_and_restart:
        assert "(sequence 0," in restored  # only the record written at creation: all replayed
    else:
        assert "(sequence 0," not in restored  # a snapshot, then what came after it replayed


def test_reconnection_gives_up_after_reconnect_timeout(tmp_path: Path) -> None:
    server = DurableServer(tmp_path)
    try:
        s = gradd.connect(server.addr, reconnect_timeout=1.5)
        x = s.ones(3, requires_grad=True)
        assert x.sum().item() == 3.0
        server.kill()
        started = time.monotonic()
        with pytest.raises(gradd.UnavailableError, match="reconnect_timeout=1.5") as info:
            (x * 2).sum().item()
        assert time.monotonic() - started < 30  # gave up, never a hang
        assert isinstance(info.value, gradd.GraddError)
    finally:
        server.stop()


def test_a_session_the_restarted_server_lacks_is_a_clear_error(tmp_path: Path) -> None:
    server = DurableServer(tmp_path, "--checkpoint-every", "0.2")
    try:
        s = gradd.connect(server.addr)
        x = s.ones(3, requires_grad=True)
        assert x.sum().item() == 3.0
        server.kill()
        server.state_dir.rename(tmp_path / "lost")  # the state directory is gone
        server.start()
        with pytest.raises(gradd.GraddError, match="cannot resume session .*no longer has it"):
            (x * 2).sum().item()
    finally:
        server.stop()


def test_a_server_without_state_dir_keeps_nothing(gradd_server) -> None:
    with gradd.connect(gradd_server.addr) as s:
        assert not s.durable
        for _ in range(3):
            (s.ones(2) * 2).sum().item()
        assert not s._stream._kept and s._stream.reconnect_timeout == 0


class Forwarder:
    """A TCP forwarder to a server whose connections can be cut (a network failure, a proxy
    restart): the server lives on, the client's stream breaks."""

    def __init__(self, target: str) -> None:
        import socket

        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.addr = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:  # noqa: ANN001
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def cut(self) -> None:
        import socket

        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.mark.cpu_only("compared with an embedded CPU run: a GPU draws its own numbers")
def test_article_loop_survives_a_cut_connection(
    tmp_path: Path, article_data: tuple, uninterrupted: tuple
) -> None:
    """The server stays up; the stream breaks: the session resumes from what the server holds
    (nothing is applied twice; answers lost with the connection are asked again)."""
    server = DurableServer(tmp_path, "--checkpoint-every", "1000", "--log-level", "debug")
    forwarder = Forwarder(server.addr)
    reached = threading.Event()
    result: dict = {}

    def train() -> None:
        try:
            with gradd.connect(forwarder.addr, timeout=120) as s:
                result["params"] = article_loop(s, article_data, reached)
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    try:
        trainer = threading.Thread(target=train)
        trainer.start()
        assert reached.wait(120)
        forwarder.cut()
        trainer.join(180)
        assert not trainer.is_alive()
        if "error" in result:
            raise result["error"]
        server.proc.wait_log(r"execute [0-9a-f]+: 0 commands")  # it asked where to resume
    finally:
        forwarder.close()
        server.stop()
    b, w = result["params"]
    assert b.tobytes() == uninterrupted[0].tobytes()
    assert w.tobytes() == uninterrupted[1].tobytes()
