"""Fixtures: a real gradd-server for the remote half of each test, and sessions of both kinds.

The server process comes from the server suite's harness (tests/server/server_harness.py), so
both suites start servers the same way. It starts only when a remote test first needs it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import gradd
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_harness import ServerProcess  # noqa: E402

MODES = ("embedded", "remote")
ADMIN_TOKEN = "sdk-tests-admin"


@pytest.fixture(scope="session")
def gradd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One gradd-server on a free loopback port for the whole SDK suite."""
    log = tmp_path_factory.mktemp("sdk-server") / "gradd-server.log"
    proc = ServerProcess(log, env={"GRADD_ADMIN_TOKEN": ADMIN_TOKEN})
    yield proc
    proc.stop()


def open_session(mode: str, request: pytest.FixtureRequest) -> gradd.Session:
    if mode == "embedded":
        return gradd.connect()
    server = request.getfixturevalue("gradd_server")
    return gradd.connect(server.addr, timeout=60)


@pytest.fixture(params=MODES)
def session(request: pytest.FixtureRequest) -> Iterator[gradd.Session]:
    """An embedded session, then a session on the shared server."""
    s = open_session(request.param, request)
    yield s
    s.close()


@pytest.fixture
def remote(request: pytest.FixtureRequest) -> Iterator[gradd.Session]:
    """A session on the shared server."""
    s = open_session("remote", request)
    yield s
    s.close()


@pytest.fixture(scope="session")
def article_data() -> tuple[np.ndarray, np.ndarray]:
    """The article's data set, as its book makes it: 80 training points of y = 1 + 2x + noise."""
    rng = np.random.RandomState(42)  # the stream of the book's np.random.seed(42)
    x = rng.rand(100, 1)
    y = 1 + 2 * x + 0.1 * rng.randn(100, 1)
    idx = np.arange(100)
    rng.shuffle(idx)
    train = idx[:80]
    return x[train], y[train]
