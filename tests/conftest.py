"""Shared by every test directory: a gradd-server for the operations tests (tests/ops).

It reuses the server tests' harness (tests/server/server_harness.py): a real `gradd-server`
process on a free loopback port, here with metrics on, JSON logs and an admin token.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))

from server_harness import ServerProcess, free_port  # noqa: E402

OPS_ADMIN_TOKEN = "ops-admin-token-never-logged"


@pytest.fixture(scope="session")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`gradd-server --metrics-port P --log-format json` with GRADD_ADMIN_TOKEN set.

    Its `metrics_url` is the Prometheus endpoint, `admin_token` the admin token; `log()` gives
    its JSON lines so far."""
    log = tmp_path_factory.mktemp("ops-server") / "gradd-server.log"
    metrics_port = free_port()
    env = {"GRADD_ADMIN_TOKEN": OPS_ADMIN_TOKEN, "GRADD_LOG_FORMAT": "json"}
    # One BLAS thread: OpenBLAS's spinning threads beside the client on a 2-core machine made the
    # digits CNN example take 83 s instead of 15.
    env["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS", "1")
    proc = ServerProcess(log, "--metrics-port", str(metrics_port), env=env)
    proc.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    proc.admin_token = OPS_ADMIN_TOKEN
    yield proc
    proc.stop()
