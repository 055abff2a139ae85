"""The container deployment, for real: build the CPU image, start docker-compose.yml with
podman-compose, ask the health service and train through the published port from the host, run
the compose file's example client, stop the server with SIGTERM; build the CUDA image.

Needs root, podman, runc, debootstrap and podman-compose (.ci/run provisions them); skips with
the reason elsewhere. The tests of the stack run in file order: the SIGTERM test stops it last.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from podman_env import Podman, unusable_reason

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "linear_regression.py"
GRACE_S = 60  # docker-compose.yml's stop_grace_period
CUDA_TEST = os.environ.get("GRADD_CUDA_IMAGE_TEST", "1") != "0"

pytestmark = pytest.mark.skipif(
    unusable_reason() is not None, reason=f"container tests skipped: {unusable_reason()}"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    podman: Podman
    project: str
    port: int
    metrics_port: int

    def container(self, service: str) -> str:
        """The container podman-compose made for a service of this project."""
        out = self.podman.run(
            "ps", "--all", "--format", "{{.Names}}",
            "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).stdout.split()  # fmt: skip
        assert len(out) == 1, f"expected one container for {service}, got {out}"
        return out[0]

    def state(self, service: str) -> dict:
        inspect = self.podman.run("inspect", self.container(service)).stdout
        return json.loads(inspect)[0]["State"]

    def logs(self, service: str) -> str:
        out = self.podman.run("logs", self.container(service), check=False)
        return out.stdout + out.stderr


@pytest.fixture(scope="module")
def podman(container_timings):
    env = Podman()
    try:
        try:
            env.ensure_base_image()
        except (AssertionError, subprocess.SubprocessError, OSError) as exc:
            # Making the base image is provisioning (debootstrap from the Debian mirror).
            pytest.skip(f"container tests skipped: could not make debian:bookworm: {exc}")
        yield env
    finally:
        env.close()
        container_timings.update(env.timings)


@pytest.fixture(scope="module")
def stack(podman):
    stack = Stack(podman, f"gradd-test-{os.getpid()}", _free_port(), _free_port())
    env = {"GRADD_HOST_PORT": str(stack.port), "GRADD_METRICS_HOST_PORT": str(stack.metrics_port)}
    try:
        podman.timed("build CPU image", _build, stack, env)
        podman.timed("compose up", podman.compose, stack.project, "up", "-d", env=env)
        podman.timed("server healthy", _wait_serving, f"127.0.0.1:{stack.port}", stack)
        yield stack
    finally:
        down = ("down", "--volumes", "--timeout", "5")
        podman.timed("compose down", podman.compose, stack.project, *down, env=env)


def _build(stack: Stack, env: dict[str, str]) -> None:
    stack.podman.compose(stack.project, "build", "gradd", env=env, timeout=1800)
    stack.podman.tag_builder("Dockerfile", "localhost/gradd:latest")


def _health(target: str, timeout: float = 5) -> int:
    with grpc.insecure_channel(target) as channel:
        request = health_pb2.HealthCheckRequest()
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout).status


def _wait_serving(target: str, stack: Stack, limit_s: float = 90) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        try:
            status = _health(target, timeout=2)
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError as exc:
            status = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"server in the container not SERVING after {limit_s} s: {status}\n"
                f"--- its log\n{stack.logs('gradd')[-4000:]}"
            )
        time.sleep(0.5)


@pytest.mark.timeout(1800)
def test_image_is_non_root_with_healthcheck_and_exec_form_cmd(stack):
    image = json.loads(stack.podman.run("image", "inspect", "localhost/gradd:latest").stdout)[0]
    assert image["Healthcheck"]["Test"][:2] == ["CMD", "python"]
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert "50051/tcp" in config["ExposedPorts"]
    assert config["Cmd"] == ["gradd-server"]
    assert config.get("StopSignal", "SIGTERM") == "SIGTERM"
    uid = stack.podman.run("exec", stack.container("gradd"), "id", "-u").stdout.strip()
    assert uid == "10001"


def test_health_service_is_serving_through_the_published_port(stack):
    assert _health(f"127.0.0.1:{stack.port}") == health_pb2.HealthCheckResponse.SERVING


def test_metrics_endpoint_is_published(stack):
    url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        assert "gradd_" in reply.read().decode()


def test_container_healthcheck_passes(stack):
    # podman runs health checks from systemd timers, absent here: run the compose one by hand.
    out = stack.podman.run("healthcheck", "run", stack.container("gradd"), check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert stack.state("gradd")["Health"]["Status"] == "healthy"


def article_data() -> tuple[np.ndarray, np.ndarray]:
    """The article's 80 training points of y = 1 + 2x + noise (as its book makes them)."""
    rng = np.random.RandomState(42)
    x = rng.rand(100, 1)
    y = 1 + 2 * x + 0.1 * rng.randn(100, 1)
    idx = np.arange(100)
    rng.shuffle(idx)
    return x[idx[:80]], y[idx[:80]]


@pytest.mark.timeout(300)
def test_trains_the_article_model_from_the_host_with_the_sdk(stack):
    gradd = pytest.importorskip("gradd")
    try:
        from gradd.remote_session import RemoteSession  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the SDK's gradd.connect(target) is not importable yet: {exc}")
    x_train, y_train = article_data()
    s = gradd.connect(f"127.0.0.1:{stack.port}", timeout=60)
    try:
        s.manual_seed(42)
        b = s.randn(1, requires_grad=True, dtype=s.float)
        w = s.randn(1, requires_grad=True, dtype=s.float)
        x, y = s.from_numpy(x_train).float(), s.tensor(y_train).float()
        for _ in range(200):
            loss = ((y - (b + w * x)) ** 2).mean()
            loss.backward()
            with s.no_grad():
                b -= 0.1 * b.grad
                w -= 0.1 * w.grad
            b.grad.zero_()
            w.grad.zero_()
        # PyTorch 2.13's b and w after the same 200 epochs (tests/sdk/test_article.py).
        assert b.item() == pytest.approx(1.0522773265838623, rel=1e-5)
        assert w.item() == pytest.approx(1.9127354621887207, rel=1e-5)
    finally:
        s.close()


@pytest.mark.timeout(300)
def test_trains_the_article_model_from_the_host_with_raw_commands(stack):
    # The server tests' helpers (tests/server, on sys.path by tests/conftest.py): the article's
    # regression as gradd.v1 commands, whatever the state of the SDK.
    article = pytest.importorskip("article_commands")
    harness = pytest.importorskip("server_harness")
    from gradd.v1 import command_pb2 as cpb

    client = harness.Client(f"127.0.0.1:{stack.port}")
    try:
        session = client.session(seed=42)
        x_train, y_train = article.data()

        def batches():
            yield cpb.ExecuteRequest(
                session_id=session.id, commands=article.setup(x_train, y_train)
            )
            for i in range(200):
                yield cpb.ExecuteRequest(
                    session_id=session.id, sequence=i, commands=article.epoch()
                )

        replies = list(session.stub.ExecuteStream(batches(), metadata=session.md, timeout=120))
        assert not any(r.HasField("error") for r in replies), replies
        b, w = session.array("b")[0], session.array("w")[0]
        assert abs(b - 1) < 0.1 and abs(w - 2) < 0.2, (b, w)
        session.close()
    finally:
        client.close()


@pytest.mark.timeout(600)
def test_compose_example_client_trains_and_exits_zero(stack):
    if not EXAMPLE.exists():
        pytest.skip("examples/linear_regression.py (comes with the SDK) does not exist yet")
    trainer = stack.container("trainer")
    out = stack.podman.run("wait", trainer, timeout=540).stdout.strip()
    assert out == "0", f"trainer exited {out}\n{stack.logs('trainer')[-4000:]}"


def test_sigterm_stops_the_server_gracefully_with_exit_zero(stack):
    start = time.monotonic()
    # `stop` sends the stop signal (SIGTERM) and waits stop_grace_period before SIGKILL.
    stack.podman.compose(stack.project, "stop", "gradd", timeout=GRACE_S + 30)
    elapsed = time.monotonic() - start
    state = stack.state("gradd")
    assert state["ExitCode"] == 0, f"exit {state['ExitCode']}\n{stack.logs('gradd')[-4000:]}"
    assert elapsed < GRACE_S, f"took {elapsed:.1f} s, the grace period is {GRACE_S} s"


@pytest.mark.skipif(not CUDA_TEST, reason="GRADD_CUDA_IMAGE_TEST=0 (make test-cuda-image runs it)")
@pytest.mark.timeout(3600)
def test_cuda_image_builds_with_cupy_and_the_cuda_runtime(podman):
    podman.timed(
        "build CUDA image", podman.build, "Dockerfile.cuda", "localhost/gradd-cuda:latest", 3300
    )
    # No GPU here: check that CuPy imports and finds the CUDA libraries it loads at run time.
    probe = (
        "import cupy, cuda.pathfinder as pf; print(cupy.__version__); "
        "[pf.load_nvidia_dynamic_lib(n) for n in ('cudart', 'nvrtc', 'cublas', 'curand')]"
    )
    image = "localhost/gradd-cuda:latest"
    out = podman.run("run", "--rm", "--network", "none", image, "python", "-c", probe)
    assert out.stdout.strip()
    config = json.loads(podman.run("image", "inspect", image).stdout)[0]
    assert "GRADD_DEVICE=cuda" in config["Config"]["Env"]
    assert config["Config"]["User"] == "10001:10001"
    # Without a GPU the server refuses its default device in one line, not with a traceback.
    out = podman.run("run", "--rm", "--network", "none", image, check=False, timeout=120)
    assert out.returncode != 0 and "cuda" in out.stderr and "Traceback" not in out.stderr
