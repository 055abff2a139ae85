"""What a new user meets first: a wrong token fails at connect, and a script can hand its own
session to `gradd watch` / `gradd graph` (`s.token`, `s.watch_command()`, `t.handle`)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import gradd
import grpc
import pytest
from server_harness import ServerProcess

from .conftest import ADMIN_TOKEN


def test_a_wrong_token_fails_at_connect(gradd_server: ServerProcess) -> None:
    with pytest.raises(gradd.AuthError, match="wrong token") as caught:
        gradd.connect(gradd_server.addr, token="not-a-token-of-this-server", timeout=30)
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "not-a-token" not in str(caught.value)  # never echoed
    # No token, the admin token or a session's own token: a session, as before.
    with gradd.connect(gradd_server.addr, token=ADMIN_TOKEN, timeout=30) as s:
        with gradd.connect(gradd_server.addr, token=s.token, timeout=30) as t:
            assert t.id != s.id and t.token != s.token


def gradd_cli(line: str, *extra: str) -> subprocess.Popen:
    """Run a `GRADD_TOKEN=... gradd ...` line as s.watch_command() prints it."""
    words = shlex.split(line.split("#", 1)[0])
    name, _, value = words[0].partition("=")
    assert name == "GRADD_TOKEN" and words[1] == "gradd"
    return subprocess.Popen(
        [sys.executable, "-m", "gradd.cli", *words[2:], *extra],
        env={**os.environ, "GRADD_TOKEN": value, "GRADD_ADMIN_TOKEN": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_command_watches_this_session(remote: gradd.Session) -> None:
    s = remote
    lines = s.watch_command().splitlines()
    assert [line.split()[1:3] for line in lines] == [
        ["gradd", "watch"],
        ["gradd", "dashboard"],
    ]
    assert all(f"GRADD_TOKEN={s.token} " in line and s.id in line for line in lines)
    watch = gradd_cli(lines[0], "--plain")
    assert watch.stderr.readline().startswith(f"watching session {s.id}")
    w = s.randn(3, requires_grad=True)
    for _ in range(3):
        (w * w).sum().backward()
    s.close()
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    assert [line.split()[:2] for line in out.splitlines()] == [["step", str(i)] for i in (1, 2, 3)]
    assert f"session {s.id} ended (closed)" in err


def test_a_tensors_handle_is_what_gradd_graph_takes(remote: gradd.Session) -> None:
    s = remote
    w = s.randn(3, requires_grad=True)
    loss = (w * 2).sum()
    assert isinstance(loss.handle, str) and loss.handle != w.handle
    s.synchronize()
    done = subprocess.run(
        [sys.executable, "-m", "gradd.cli", "graph", s.target, s.id, loss.handle],
        env={**os.environ, "GRADD_TOKEN": s.token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digraph") and "SumBackward0" in done.stdout
    assert done.stdout.strip() == gradd.make_dot(loss).source.strip()


def test_the_sdk_doc_gives_backwards_whole_signature() -> None:
    import inspect
    from pathlib import Path

    from gradd.remote_tensor import RemoteTensor

    doc = " ".join((Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text().split())
    params = inspect.signature(RemoteTensor.backward).parameters.values()
    shown = ", ".join(f"{p.name}={p.default!r}" for p in params if p.name != "self")
    assert f"`backward({shown})`" in doc
