"""Scale-out without containers: the shipped nginx configuration (deploy/nginx/nginx.conf, on
loopback addresses) in front of three real gradd-server processes.

Sessions opened through the proxy are spread over the replicas by their x-gradd-session header
and every later call of a session reaches the same replica (a call that reached another would
fail: the session is unknown there). `gradd sessions` over the three replicas lists them all.
A replica that dies takes only its own sessions with it. Needs Debian's nginx (.ci/run installs
it); skips with the reason elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import gradd
import numpy as np
import pytest
from nginx_proxy import NginxProxy, unusable_reason
from server_harness import BIN, ServerProcess  # tests/server, on sys.path by tests/conftest.py

pytestmark = pytest.mark.skipif(
    unusable_reason() is not None, reason=f"nginx tests skipped: {unusable_reason()}"
)
ADMIN = "proxy-admin-token"
SESSIONS = 30


def _env(folder: Path, i: int) -> dict[str, str]:
    # Each replica has its own state folder, as in compose and Kubernetes (durable sessions).
    state = {"GRADD_STATE_DIR": str(folder / f"state-{i}")}
    return {"GRADD_ADMIN_TOKEN": ADMIN, "OPENBLAS_NUM_THREADS": "1", **state}


def _restart(replicas, i: int, folder: Path) -> ServerProcess:
    """SIGKILL replica i and start it again on its port with its state folder."""
    old = replicas[i]
    old.proc.kill()
    old.proc.wait()
    log = folder / f"gradd-{i}-again-{os.urandom(3).hex()}.log"
    replicas[i] = ServerProcess(log, "--port", str(old.port), env=_env(folder, i))
    return replicas[i]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replicas")
    started = []
    try:
        for i in range(3):
            started.append(ServerProcess(folder / f"gradd-{i}.log", env=_env(folder, i)))
        started[0].folder = folder
        yield started
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture(scope="module")
def proxy(replicas, tmp_path_factory):
    nginx = NginxProxy([r.port for r in replicas], tmp_path_factory.mktemp("nginx"))
    yield nginx
    nginx.stop()


def _listed(replicas) -> dict[str, tuple[str, int]]:
    """Every session of the replicas, by `gradd sessions A B C --json`: id -> (server, steps)."""
    env = {**os.environ, "GRADD_ADMIN_TOKEN": ADMIN}
    command = [str(BIN / "gradd"), "sessions", *[r.addr for r in replicas], "--json"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return {row["session"]: (row["server"], row["steps"]) for row in rows}


def _train(s, steps: int, w=None) -> float:
    """`steps` steps of a tiny regression of w (a new one unless given); the last loss."""
    w = s.tensor([0.5, -0.5], requires_grad=True) if w is None else w
    x = s.tensor([1.0, 2.0])
    for _ in range(steps):
        loss = ((w * x).sum() - 3.0) ** 2
        loss.backward()
        with s.no_grad():
            w -= 0.05 * w.grad
        w.grad.zero_()
    return float(loss.item())


@pytest.mark.timeout(600)
def test_sessions_spread_over_the_replicas_and_stay_on_theirs(replicas, proxy):
    sessions = [gradd.connect(proxy.addr, timeout=60, label=f"p{i}") for i in range(SESSIONS)]
    try:
        # Interleaved: each round sends one more step of every session through the proxy.
        for _ in range(3):
            for s in sessions:
                _train(s, 2)
        losses = {s.id: _train(s, 1) for s in sessions}
        listed = _listed(replicas)
        servers = {s.id: listed[s.id][0] for s in sessions}
        assert all(listed[s.id][1] == 7 for s in sessions), listed  # every step on one replica
        spread = Counter(servers.values())
        assert sorted(spread) == sorted(r.addr for r in replicas), spread
        assert len(set(losses.values())) == 1  # the same training everywhere
        # Again later, with a 64 MiB tensor both ways: still the same replica.
        big = np.arange(16 << 20, dtype=np.float32)
        for s in sessions[:2]:
            t = s.tensor(big)
            np.testing.assert_array_equal((t + 1).numpy(), big + 1)
        after = _listed(replicas)
        assert {s.id: after[s.id][0] for s in sessions} == servers
        # The gradd command's session calls carry the session id too: one session per replica.
        env = {**os.environ, "GRADD_ADMIN_TOKEN": ADMIN}
        for server in sorted(set(servers.values())):
            s = next(s for s in sessions if servers[s.id] == server)
            y = s.tensor([1.0], requires_grad=True) * 2
            s.synchronize()
            graph = [str(BIN / "gradd"), "graph", proxy.addr, s.id, y.handle]
            out = subprocess.run(graph, capture_output=True, text=True, timeout=60, env=env)
            assert out.returncode == 0 and "MulBackward0" in out.stdout, out.stderr
    finally:
        for s in sessions:
            s.close()


@pytest.mark.timeout(300)
def test_a_killed_replica_takes_only_its_sessions(replicas, proxy):
    # Durable sessions wait for their replica to come back: not this one, for 2 s at most.
    sessions = [gradd.connect(proxy.addr, timeout=30, reconnect_timeout=2) for _ in range(12)]
    listed = _listed(replicas)
    doomed = {s.id for s in sessions if listed[s.id][0] == replicas[2].addr}
    try:
        for s in sessions:
            _train(s, 1)
        assert doomed and len(doomed) < len(sessions), listed
        replicas[2].proc.kill()
        replicas[2].proc.wait()
        for s in sessions:
            if s.id in doomed:
                with pytest.raises(gradd.UnavailableError):
                    _train(s, 1)
            else:
                assert _train(s, 1) >= 0  # the others never notice
    finally:
        for s in sessions:
            if s.id not in doomed:
                s.close()
        _restart(replicas, 2, replicas[0].folder)


@pytest.mark.timeout(300)
def test_a_restarted_replica_resumes_its_sessions(replicas, proxy):
    sessions = [gradd.connect(proxy.addr, timeout=30) for _ in range(12)]
    listed = _listed(replicas)
    moved = {s.id for s in sessions if listed[s.id][0] == replicas[1].addr}
    assert moved and len(moved) < len(sessions), listed
    try:
        weights = [s.tensor([0.5, -0.5], requires_grad=True) for s in sessions]
        for s, w in zip(sessions, weights):
            _train(s, 3, w)
            s.synchronize()
        _restart(replicas, 1, replicas[0].folder)
        # Every session, the restarted replica's too, goes on where it was: the same weights
        # as the sessions that were never interrupted, to the bit.
        for s, w in zip(sessions, weights):
            _train(s, 3, w)
        final = [w.tolist() for w in weights]
        assert final == [final[0]] * len(sessions)
        after = _listed(replicas)
        assert all(after[s.id] == (listed[s.id][0], 6) for s in sessions)
    finally:
        for s in sessions:
            try:
                s.close()
            except gradd.GraddError:
                pass
