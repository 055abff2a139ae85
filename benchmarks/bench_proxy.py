"""gradd-server through nginx against the same server direct: small ops, round trips, 64 MiB.

Run: `.venv/bin/python benchmarks/bench_proxy.py` (`--quick` for a short run). It starts one
`gradd-server` and nginx with the shipped configuration (deploy/nginx/nginx.conf, its three
upstream entries all pointing at that one server, so both paths end in the same process), then
times each workload direct and through the proxy in turns and prints medians and the proxy's
throughput as a share of direct (goal: under 10% lower, i.e. >= 90%):

- small ops streamed over ExecuteStream, one op per request (the protocol's cheapest call);
- the SDK's article loop (forward, backward, update, zero_grad; pipelined as the SDK sends);
- one-op unary Execute round trips;
- 64 MiB up + down (Execute with the tensor, then Fetch).

Needs Debian's nginx (`apt-get install nginx-light`); without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

import gradd
import grpc
import numpy as np
from bench_server import OPTIONS, small_ops, start_gradd
from common import article_data, interleaved_medians
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from gradd.v1 import service_pb2_grpc as spb_grpc
from gradd.v1 import tensor_pb2 as tpb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ops"))
from nginx_proxy import NginxProxy, unusable_reason  # noqa: E402

MiB = 1 << 20


class Route:
    """One way to the server (direct or through nginx) with its own session."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(address, options=OPTIONS)
        self.stub = spb_grpc.AutogradServiceStub(self.channel)
        sid = uuid.uuid4().hex
        route = (("x-gradd-session", sid),)
        created = self.stub.CreateSession(
            spb.CreateSessionRequest(seed=0, session_id=sid), metadata=route, timeout=30
        )
        self.sid = created.session_id
        self.md = (("authorization", f"Bearer {created.token}"), *route)
        one = tpb.TensorData(float_values=[1.0], shape=[1])
        tensors = [cpb.Command(tensor=cpb.CreateTensor(out=h, data=one)) for h in ("a", "b")]
        self.stub.Execute(
            cpb.ExecuteRequest(session_id=self.sid, commands=tensors), metadata=self.md
        )

    def stream_ops(self, n: int) -> None:
        requests = [
            cpb.ExecuteRequest(session_id=self.sid, sequence=i, commands=small_ops(1))
            for i in range(n)
        ]
        for reply in self.stub.ExecuteStream(iter(requests), metadata=self.md):
            assert not reply.HasField("error"), reply.error

    def round_trips(self, n: int) -> None:
        request = cpb.ExecuteRequest(session_id=self.sid, commands=small_ops(1))
        for _ in range(n):
            self.stub.Execute(request, metadata=self.md)

    def big(self, upload: bytes) -> None:
        execute = self.channel.unary_unary("/gradd.v1.AutogradService/Execute")
        fetch = self.channel.unary_unary("/gradd.v1.AutogradService/Fetch")
        execute(upload, metadata=self.md)
        answer = fetch(spb.FetchRequest(session_id=self.sid, handle="big").SerializeToString(),
                       metadata=self.md)  # fmt: skip
        assert len(answer) > 64 * MiB

    def upload(self, array: np.ndarray) -> bytes:
        data = tpb.TensorData(dtype=tpb.FLOAT32, shape=array.shape, raw=array.tobytes())
        command = cpb.Command(tensor=cpb.CreateTensor(out="big", data=data))
        return cpb.ExecuteRequest(session_id=self.sid, commands=[command]).SerializeToString()


def article_loop(target: str, epochs: int):  # noqa: ANN201 - returns a callable
    """The article's training loop on an SDK session at target, `epochs` epochs per call."""
    s = gradd.connect(target, seed=42)
    x_np, y_np = article_data()
    x, y = s.tensor(x_np), s.tensor(y_np)
    b = s.randn(1, requires_grad=True)
    w = s.randn(1, requires_grad=True)

    def run() -> None:
        for _ in range(epochs):
            loss = ((y - (b + w * x)) ** 2).mean()
            loss.backward()
            with s.no_grad():
                b.sub_(0.1 * b.grad)
                w.sub_(0.1 * w.grad)
            b.grad.zero_()
            w.grad.zero_()
        s.synchronize()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    reason = unusable_reason()
    if reason:
        print(f"gradd through nginx: skipped ({reason})")
        return
    work = Path(tempfile.mkdtemp(prefix="gradd-bench-proxy-"))
    server, port = start_gradd(work / "gradd-server.log")
    proxy = NginxProxy([port, port, port], work / "nginx")
    try:
        direct, through = Route(f"127.0.0.1:{port}"), Route(proxy.addr)
        repeat = 3 if args.quick else 7
        n_ops = 1_000 if args.quick else 5_000
        n_trips = 200 if args.quick else 1_000
        epochs = 100 if args.quick else 400
        array = np.random.default_rng(0).standard_normal(16 * MiB, dtype=np.float32)
        uploads = {p: p.upload(array) for p in (direct, through)}
        loops = {p: article_loop(p.address, epochs) for p in (direct, through)}
        workloads = [
            (f"ExecuteStream, 1 op/request ({n_ops:,})", n_ops, "ops/s", Route.stream_ops),
            (f"SDK article loop ({epochs} epochs)", epochs, "epochs/s", lambda p, _: loops[p]()),
            (f"one-op Execute ({n_trips:,} calls)", n_trips, "calls/s", Route.round_trips),
            ("64 MiB up+down", 128, "MiB/s", lambda p, _: p.big(uploads[p])),
        ]
        print(f"gradd through nginx vs direct ({os.cpu_count()} CPUs, medians of {repeat})")
        for name, amount, unit, run in workloads:
            rows = interleaved_medians(
                {
                    "direct": lambda r=run, n=amount: r(direct, n),
                    "nginx": lambda r=run, n=amount: r(through, n),
                },
                repeat=repeat,
            )
            rate = {k: amount / v for k, v in rows.items()}
            share = rate["nginx"] / rate["direct"]
            print(
                f"  {name:<38} direct {rate['direct']:>9,.0f} {unit:<8} nginx "
                f"{rate['nginx']:>9,.0f} {unit:<8} = {share:4.0%} of direct (goal >= 90%)"
            )
    finally:
        proxy.stop()
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
