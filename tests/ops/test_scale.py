"""docker-compose.yml's `scale` profile, for real: three gradd replicas behind nginx in
containers (podman-compose), driven from the host through the proxy's published port.

30 sessions opened through the proxy spread over the replicas and every call of each stays on
its replica (a call routed elsewhere would fail: the session is unknown there). A replica killed
takes only its own sessions; started again, its sessions resume (durable sessions: a strict
xfail until they exist). Needs what test_container.py needs; skips with the reason elsewhere.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass

import gradd
import pytest
from podman_env import Podman, unusable_reason

pytestmark = pytest.mark.skipif(
    unusable_reason() is not None, reason=f"container tests skipped: {unusable_reason()}"
)
ADMIN = "scale-admin-token"
REPLICAS = ("gradd-0", "gradd-1", "gradd-2")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ScaleStack:
    podman: Podman
    project: str
    port: int
    env: dict[str, str]

    @property
    def proxy(self) -> str:
        return f"127.0.0.1:{self.port}"

    def container(self, service: str) -> str:
        out = self.podman.run(
            "ps", "--all", "--format", "{{.Names}}",
            "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).stdout.split()  # fmt: skip
        assert len(out) == 1, f"expected one container for {service}, got {out}"
        return out[0]

    def sessions(self, replica: str) -> dict[str, int]:
        """The sessions a replica holds (id -> steps), by `gradd sessions` inside it."""
        out = self.podman.run(
            "exec", self.container(replica), "gradd", "sessions", "127.0.0.1:50051", "--json"
        ).stdout
        return {row["session"]: row["steps"] for row in map(json.loads, out.splitlines())}

    def where(self) -> dict[str, tuple[str, int]]:
        """Every session of every replica: id -> (replica, steps)."""
        return {
            sid: (replica, steps)
            for replica in REPLICAS
            for sid, steps in self.sessions(replica).items()
        }

    def logs(self, service: str) -> str:
        out = self.podman.run("logs", self.container(service), check=False)
        return out.stdout + out.stderr

    def start_again(self, replica: str) -> None:
        """Start a killed replica, then have nginx resolve the replicas' names again: a
        container started again may get a new address (docs/operations.md). The reload is
        graceful: running calls finish on the old workers."""
        self.podman.run("start", self.container(replica))
        self.wait_ready()
        self.podman.run("exec", self.container("nginx"), "nginx", "-s", "reload")
        time.sleep(2)  # the signal is sent; the new workers start within moments

    def wait_ready(self, limit_s: float = 120) -> None:
        """Until every replica answers ListSessions and the proxy accepts connections."""
        deadline = time.monotonic() + limit_s
        while True:
            try:
                for replica in REPLICAS:
                    self.sessions(replica)
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return
            except (AssertionError, OSError, subprocess.SubprocessError) as exc:
                if time.monotonic() > deadline:
                    logs = "\n".join(
                        f"--- {s}\n{self.logs(s)[-2000:]}" for s in (*REPLICAS, "nginx")
                    )
                    raise AssertionError(f"scale stack not ready: {exc}\n{logs}") from None
                time.sleep(1)


@pytest.fixture(scope="module")
def podman(container_timings):
    env = Podman()
    try:
        try:
            env.ensure_base_image()
        except (AssertionError, subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"container tests skipped: could not make debian:bookworm: {exc}")
        yield env
    finally:
        env.close()
        container_timings.update({f"scale: {k}": v for k, v in env.timings.items()})


@pytest.fixture(scope="module")
def stack(podman):
    port = _free_port()
    env = {"GRADD_PROXY_HOST_PORT": str(port), "GRADD_ADMIN_TOKEN": ADMIN}
    stack = ScaleStack(podman, f"gradd-scale-{os.getpid()}", port, env)
    profile = ("--profile", "scale")
    try:
        # One build of each image: the replicas share gradd:latest (podman-compose would build
        # it once per service, in parallel).
        build = ("build", "gradd-0", "nginx")
        podman.timed(
            "build", podman.compose, stack.project, *profile, *build, env=env, timeout=1800
        )
        podman.timed("up", podman.compose, stack.project, *profile, "up", "-d", "nginx", env=env)
        podman.timed("ready", stack.wait_ready)
        yield stack
    finally:
        down = ("down", "--volumes", "--timeout", "5")
        podman.timed("down", podman.compose, stack.project, *profile, *down, env=env)


def _step(s, w, x) -> None:
    loss = ((w * x).sum() - 3.0) ** 2
    loss.backward()
    with s.no_grad():
        w -= 0.05 * w.grad
    w.grad.zero_()


def _open(stack: ScaleStack, n: int, reconnect_timeout: float = 60) -> list[tuple]:
    out = []
    for i in range(n):
        s = gradd.connect(
            stack.proxy, timeout=60, label=f"scale-{i}", reconnect_timeout=reconnect_timeout
        )
        out.append((s, s.tensor([0.5, -0.5], requires_grad=True), s.tensor([1.0, 2.0])))
    return out


def _close(opened) -> None:
    for s, _, _ in opened:
        try:
            s.close()
        except gradd.GraddError:
            pass


@pytest.mark.timeout(2400)
def test_thirty_sessions_spread_over_the_replicas_and_stay_on_theirs(stack):
    opened = _open(stack, 30)
    try:
        for _ in range(4):  # interleaved: a step of every session, four times
            for s, w, x in opened:
                _step(s, w, x)
        weights = [w.tolist() for _, w, _ in opened]
        where = stack.where()
        assert all(where[s.id][1] == 4 for s, _, _ in opened), where  # all steps on one replica
        spread = Counter(where[s.id][0] for s, _, _ in opened)
        assert sorted(spread) == list(REPLICAS), spread
        assert weights == [weights[0]] * len(weights)
    finally:
        _close(opened)


@pytest.mark.timeout(600)
def test_a_killed_replica_takes_only_its_sessions(stack):
    opened = _open(stack, 12, reconnect_timeout=2)  # its replica is not coming back: 2 s at most
    where = stack.where()
    doomed = {s.id for s, _, _ in opened if where[s.id][0] == "gradd-2"}
    try:
        assert doomed and len(doomed) < len(opened), where
        stack.podman.run("kill", stack.container("gradd-2"))
        for s, w, x in opened:
            if s.id in doomed:
                with pytest.raises(gradd.UnavailableError):
                    _step(s, w, x)
                    s.synchronize()
            else:
                _step(s, w, x)
                s.synchronize()  # the others never notice
    finally:
        _close(opened)
        stack.start_again("gradd-2")


@pytest.mark.timeout(600)
def test_a_replica_killed_and_started_again_resumes_its_sessions(stack):
    opened = _open(stack, 12)
    where = stack.where()
    moved = {s.id for s, _, _ in opened if where[s.id][0] == "gradd-1"}
    try:
        assert moved and len(moved) < len(opened), where
        for s, w, x in opened:
            _step(s, w, x)
            s.synchronize()
        stack.podman.run("kill", stack.container("gradd-1"))
        stack.start_again("gradd-1")
        for s, w, x in opened:  # the restarted replica's sessions go on where they were
            _step(s, w, x)
        weights = [w.tolist() for _, w, _ in opened]
        assert weights == [weights[0]] * len(weights)
        after = stack.where()
        assert all(after[s.id] == (where[s.id][0], 2) for s, _, _ in opened)
    finally:
        _close(opened)
