"""`make demo`: gradd end to end. Starts a gradd-server on a free loopback port, trains the
article's linear regression through it with the SDK (the loss every 20 epochs), prints the
final b and w, draws the article's graph with make_dot, and stops the server cleanly.

    python examples/demo.py [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gradd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from linear_regression import check, train  # noqa: E402 - the article's loop, written once


def start_server(log_path: Path) -> tuple[subprocess.Popen, str]:
    """`gradd-server --port 0` (a free port); its address once it is listening."""
    server = shutil.which("gradd-server") or str(Path(sys.executable).parent / "gradd-server")
    log = open(log_path, "wb")  # noqa: SIM115 - the server writes to it until it stops
    proc = subprocess.Popen([server, "--host", "127.0.0.1", "--port", "0"], stderr=log, stdout=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening on [\d.]+:(\d+)", log_path.read_text(errors="replace"))
        if found:
            return proc, f"127.0.0.1:{found.group(1)}"
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"gradd-server did not start:\n{log_path.read_text(errors='replace')}")


def wait_healthy(target: str, timeout: float = 30) -> None:
    """Poll the standard gRPC health service until the server says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


def draw_graph(s: gradd.Session, out: Path) -> None:
    """The article's first picture: make_dot(yhat) for its Steps 0 and 1."""
    s.manual_seed(42)
    b = s.randn(1, requires_grad=True, dtype=s.float)
    w = s.randn(1, requires_grad=True, dtype=s.float)
    x = s.rand(80, 1)
    yhat = b + w * x
    picture = gradd.make_dot(yhat, params={"b": b, "w": w})
    print("make_dot(yhat):", ", ".join(n.label.replace("\n", " ") for n in picture.nodes))
    if shutil.which("dot") is None:
        print("(install Graphviz's `dot` to render it; the DOT text follows)")
        print(picture.source)
        return
    path = picture.render(out / "article_graph", format="svg")
    print(f"rendered the graph to {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--out", default="out", help="where the graph picture goes")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = Path(tempfile.mkdtemp(prefix="gradd-demo-")) / "gradd-server.log"
    proc, target = start_server(log_path)
    try:
        wait_healthy(target)
        print(f"gradd-server {target} (pid {proc.pid}) is SERVING")
        with gradd.connect(target, label="demo") as s:
            print(f"session {s.id}: the article's loop, {args.epochs} epochs, lr 0.1")
            start = time.perf_counter()
            b, w = train(s, args.epochs, print_every=20)
            b_final, w_final = b.item(), w.item()
            print(f"trained in {time.perf_counter() - start:.2f} s")
            print(f"final b = {b_final:.4f}, w = {w_final:.4f}   (true: b = 1, w = 2)")
            print(b, w)
            draw_graph(s, out)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    print(f"gradd-server stopped (exit {code})")
    problem = check(b_final, w_final, args.epochs)
    if problem or code != 0:
        print(f"FAILED: {problem or f'server exit status {code}'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    sys.exit(main())
