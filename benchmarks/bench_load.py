"""Honest sessions training while hostile clients attack the same gradd-server.

Run: `.venv/bin/python benchmarks/bench_load.py` (`--quick` for a short run). It starts one
`gradd-server --max-session-bytes 64M` on loopback and runs two phases of the same length:

1. **quiet**: honest sessions (spread over client processes, one thread each) train the
   article's model: forward, backward, a no_grad update, zeroed grads, then `loss.item()`, a
   round trip; each step's latency is recorded;
2. **attacked**: the same, while attacker processes repeat the attacks of the "holds under
   attack" issue, each bounded in count and time, all against loopback: unparseable bodies
   (a varint that never ends), idle streams without a token and with one (to a session's
   allowance), watchers that never read, unauthenticated 64 MiB bodies, op arguments of the
   wrong type, 5 MB labels and op names, and memory attacks against a 64 MiB session
   (broadcasting to 1.6 GB, views of released bases, big fetches in one batch).

It prints the honest p50/p99 step latency of both phases and their ratio (goal: p99 within 2x),
honest errors (goal: none), attacks made and how they were answered, and the server's peak
resident memory (VmHWM from /proc). Timings are medians/percentiles of one run on a noisy
machine: compare phases of the same run, not runs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "server"))

ATTACKS = (
    "garbage",
    "idle_streams",
    "silent_watchers",
    "big_bodies",
    "bad_arguments",
    "long_names",
    "memory",
)


MIN_STEPS = 3  # per honest session and phase


def _honest(addr: str, sessions: int, seconds: float, out: mp.Queue) -> None:
    """One client process: `sessions` threads, each training its own session."""
    import gradd
    import numpy as np
    from common import article_data

    x_np, y_np = article_data()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def train() -> None:
        mine: list[float] = []
        try:
            with gradd.connect(addr, timeout=60, label="honest") as s:
                x, y = s.tensor(x_np), s.tensor(y_np)
                b = s.randn(1, requires_grad=True)
                w = s.randn(1, requires_grad=True)
                # A few steps even past the deadline: on a loaded machine, connecting can take
                # the whole phase, and a phase without steps has no latencies to report.
                while time.monotonic() < deadline or len(mine) < MIN_STEPS:
                    start = time.perf_counter()
                    loss = ((y - (b + w * x)) ** 2).mean()
                    loss.backward()
                    with s.no_grad():
                        b -= 0.1 * b.grad
                        w -= 0.1 * w.grad
                    b.grad.zero_(), w.grad.zero_()
                    assert np.isfinite(loss.item())
                    mine.append(time.perf_counter() - start)
        except Exception as exc:  # an honest error is the benchmark's finding, not a crash
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=train) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, errors))


def _attack(kind: str, addr: str, seconds: float, out: mp.Queue) -> None:
    """One attacker process repeating one attack until its time is up; tallies of the answers."""
    import grpc
    import numpy as np
    from gradd.v1 import command_pb2 as cpb
    from gradd.v1 import service_pb2 as spb
    from server_harness import Client, Tensor, op, tensor

    client = Client(addr)
    tally: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    held: list = []

    def call(fn) -> None:  # noqa: ANN001
        try:
            fn()
            tally["OK"] += 1
        except grpc.RpcError as err:
            tally[err.code().name] += 1

    def raw(method: str):  # noqa: ANN202
        return client.channel.unary_unary(
            f"/gradd.v1.AutogradService/{method}",
            request_serializer=None,
            response_deserializer=None,
        )

    session = client.session(limits=spb.SessionLimits(max_bytes=64 << 20), label="attacker")
    md = session.md
    session.execute(tensor("x", np.ones(3, np.float32)))
    while time.monotonic() < deadline:
        if kind == "garbage":
            body = b"\x0a\x02ab" + b"\x18" + b"\xff" * 600_000
            call(lambda body=body: raw("Execute")(body, metadata=md, timeout=30))
        elif kind == "idle_streams":
            for metadata in ((), (("authorization", "Bearer nope"),), md, md, md):
                pending: queue.SimpleQueue = queue.SimpleQueue()
                stream = client.stub.ExecuteStream(iter(pending.get, None), metadata=metadata)
                held.append((pending, stream))
                call(lambda stream=stream: next(stream) if len(held) % 5 < 2 else None)
            time.sleep(0.2)
            while len(held) > 40:
                pending, stream = held.pop(0)
                pending.put(None)
                stream.cancel()
        elif kind == "silent_watchers":
            for _ in range(8):
                watch = client.stub.Watch(spb.WatchRequest(session_id=session.id), metadata=md)
                held.append(watch)
            call(lambda: [session.execute(op("add", Tensor("x"), 1.0, outs=["x"])) for _ in "ab"])
            time.sleep(0.2)
            while len(held) > 16:
                held.pop(0).cancel()
        elif kind == "big_bodies":
            body = (
                cpb.ExecuteRequest(
                    session_id=session.id,
                    commands=[cpb.Command(tensor=cpb.CreateTensor(out="t", data={"dtype": 4}))],
                ).SerializeToString()
                + b"\x1a\x00"
                + bytes(64 << 20)
            )
            call(lambda body=body: raw("Execute")(body, timeout=30))  # no token
        elif kind == "bad_arguments":
            for name, args in (("neg", (1,)), ("sum", (None,)), ("mm", (Tensor("x"), 99))):
                call(lambda name=name, args=args: session.execute(op(name, *args, outs=["r"])))
            call(lambda: session.execute(op("mse_loss", Tensor("x"), "abc", outs=["r"])))
        elif kind == "long_names":
            label = "L" * (5 << 20)
            request = spb.CreateSessionRequest(label=label)
            call(lambda request=request: client.stub.CreateSession(request, timeout=30))
            call(lambda: session.execute(op("x" * 100_000, Tensor("x"), outs=["r"])))
        elif kind == "memory":
            column, row = np.ones((20000, 1), np.float32), np.ones((1, 20000), np.float32)
            call(lambda c=column, r=row: session.execute(tensor("c", c), tensor("r", r)))
            call(lambda: session.execute(op("add", Tensor("c"), Tensor("r"), outs=["big"])))
            call(lambda: session.execute(op("add", Tensor("c"), Tensor("r"))))
            big = np.ones(12 << 20, np.float32)  # 48 MiB: a view of it outlives its handle
            narrow = op("getitem", Tensor("b"), slice(0, 1), outs=["view"])  # b[0:1]
            call(lambda b=big, n=narrow: session.execute(tensor("b", b), n))
            fetches = [cpb.Command(fetch=cpb.Fetch(handle="b")) for _ in range(5)]
            call(lambda fetches=fetches: session.execute(*fetches))
            call(lambda: session.execute(cpb.Command(release=cpb.Release(handles=["b", "c"]))))
        if kind != "memory" and not held:
            time.sleep(0.01)  # an attack a loop: bounded in count by the loop's own pace
        if kind in ("bad_arguments", "long_names", "garbage"):
            call(lambda: session.execute(tensor("x", np.ones(3, np.float32))))
    for item in held:
        if isinstance(item, tuple):
            item[0].put(None)
            item[1].cancel()
        else:
            item.cancel()
    client.close()
    out.put((kind, dict(tally)))


def _phase(addr: str, args: argparse.Namespace, attacked: bool) -> tuple[list, list, dict]:
    ctx = mp.get_context("spawn")  # gRPC and fork do not mix
    out = ctx.Queue()
    per_process = max(1, args.sessions // args.processes)
    honest = [
        ctx.Process(target=_honest, args=(addr, per_process, args.seconds, out))
        for _ in range(args.processes)
    ]
    attackers = [
        ctx.Process(target=_attack, args=(kind, addr, args.seconds, out))
        for kind in (ATTACKS if attacked else ())
    ]
    for p in honest + attackers:
        p.start()
    latencies, errors, answers = [], [], {}
    for _ in honest + attackers:
        item = out.get(timeout=args.seconds * 10 + 300)
        if isinstance(item[0], str):
            answers[item[0]] = item[1]
        else:
            latencies += item[0]
            errors += item[1]
    for p in honest + attackers:
        p.join(timeout=60)
    return latencies, errors, answers


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a smoke test)")
    parser.add_argument("--sessions", type=int, default=64, help="honest sessions")
    parser.add_argument("--processes", type=int, default=4, help="honest client processes")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.processes, args.seconds = 8, 2, 3.0
    from server_harness import ServerProcess

    log = Path("/tmp") / f"gradd-bench-load-{int(time.time())}.log"
    sessions = str(args.sessions + 2 * len(ATTACKS) + 8)
    server = ServerProcess(log, "--max-session-bytes", "64M", "--max-sessions", sessions)
    try:
        quiet, quiet_errors, _ = _phase(server.addr, args, attacked=False)
        quiet_peak = _peak_rss_mib(server.proc.pid)
        loud, loud_errors, answers = _phase(server.addr, args, attacked=True)
        peak = _peak_rss_mib(server.proc.pid)
        internal = server.log().count("INTERNAL")
    finally:
        server.stop()
    print(f"\n{args.sessions} honest sessions, {args.seconds:.0f} s a phase")
    for name, lat, errs in (("quiet", quiet, quiet_errors), ("attacked", loud, loud_errors)):
        p50 = statistics.median(lat) * 1e3 if lat else float("nan")
        p99 = _percentile(lat, 99) * 1e3
        print(f"  {name:<9} {len(lat):7d} steps   p50 {p50:8.2f} ms   p99 {p99:8.2f} ms", end="")
        print(f"   honest errors {len(errs)}")
    ratio = _percentile(loud, 99) / _percentile(quiet, 99)
    print(f"  attacked p99 / quiet p99: {ratio:.2f}x (goal <= 2x)")
    print(f"  server peak RSS: {quiet_peak:.0f} MiB quiet, {peak:.0f} MiB after the attacks")
    print(f"  INTERNAL statuses in the server's log: {internal}")
    for kind in ATTACKS:
        print(f"  attack {kind:<16} answers {answers.get(kind, {})}")
    for error in sorted(set(quiet_errors + loud_errors))[:5]:
        print(f"  honest error: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
