"""Fixtures: one shared gradd-server for most tests, and a factory for servers with flags."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from server_harness import ADMIN_TOKEN, Client, ServerProcess, Session


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The shared server; the admin token comes from the environment, as operators set it."""
    log = tmp_path_factory.mktemp("server") / "gradd-server.log"
    proc = ServerProcess(log, "--watch-queue", "4096", env={"GRADD_ADMIN_TOKEN": ADMIN_TOKEN})
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[Client]:
    c = Client(server.addr)
    yield c
    c.close()


@pytest.fixture
def session(client: Client) -> Iterator[Session]:
    """A fresh session (seed 42), closed afterwards if still open."""
    s = client.session(seed=42)
    yield s
    try:
        s.close()
    except Exception:  # already closed by the test
        pass


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start extra servers with their own flags; all are stopped at teardown."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict | None = None) -> ServerProcess:
        proc = ServerProcess(tmp_path / f"server{len(started)}.log", *args, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
