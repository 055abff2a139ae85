"""Durable sessions (`--state-dir`): what a snapshot costs, and how long a restart takes.

1. A session holding 1 GiB (`--quick`: 64 MiB) of float32 tensors, in-process: the capture
   under the session's lock (the arrays copied), the write (safetensors, fsync, SHA-256,
   manifest), and the restore a starting server does (read, verify, rebuild).
2. The MLP training step through a real server without a state directory, with
   `--checkpoint-every 30` (the default) and with `--checkpoint-every 1`: medians of the same
   steps timed in turns; the goal is under 2% for the default.
3. Restart to resumed session: a server with an MLP session is SIGKILLed and started again on
   the same port and state directory; from the new process's start to the script's next answer
   (the SDK reconnected, the session restored and the kept batches replayed).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent / "tests" / "server")]

import gradd  # noqa: E402
import gradd.engine as ge  # noqa: E402
from common import interleaved_medians  # noqa: E402
from gradd.server.session import Session  # noqa: E402
from gradd.server.session_snapshot import capture, restore  # noqa: E402
from gradd.server.state_dir import StateDir  # noqa: E402
from server_harness import DurableServer, ServerProcess  # noqa: E402
from workloads import mlp_setup, mlp_steps  # noqa: E402

MIB = 1 << 20
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1"}  # as every server benchmark here (2-core machines)


def _session(name: str, limit: int) -> Session:
    return Session(
        name, b"", device="cpu", seed=1, max_bytes=limit, max_tensors=1000, idle_ttl=60,
        label="", max_watchers=1,
    )  # fmt: skip


def snapshot_cost(total: int, folder: Path) -> None:
    """Capture, write and restore a session holding `total` bytes."""
    s = _session("bench-1g", 4 * total)
    chunk = min(total, 128 * MIB)
    rng = np.random.default_rng(0)
    for i in range(total // chunk):
        s.table.bind_one(f"t{i}", ge.tensor(rng.standard_normal(chunk // 4, np.float32)))
    state = StateDir(folder)
    state.write_created({"session_id": s.id, "durable_sequence": 0})
    manifest = {"session_id": s.id}
    with s.lock:
        t0 = time.perf_counter()
        snap = capture(s)
        held = time.perf_counter() - t0
    t0 = time.perf_counter()
    written = state.write_snapshot(manifest, snap)
    write = time.perf_counter() - t0
    del snap
    t0 = time.perf_counter()
    ((_, body, arrays),) = state.load_all()
    fresh = _session("bench-1g", 4 * total)
    with fresh.lock:
        restore(fresh, body, arrays)
    back = time.perf_counter() - t0
    assert len(fresh.table) == len(s.table)
    size = f"{total / MIB:.0f} MiB"
    print(f"\nsnapshot of a session holding {size} ({written / MIB:.0f} MiB written)")
    print(f"  capture under the session's lock  {held * 1e3:9.1f} ms")
    print(f"  write (safetensors, fsync, hash)  {write * 1e3:9.1f} ms")
    print(f"  restore on start (read, verify)   {back * 1e3:9.1f} ms")


def step_overhead(folder: Path, repeat: int, steps: int) -> None:
    """Median time of `steps` MLP steps through servers with and without a state directory."""
    servers = {
        "no state dir": ServerProcess(folder / "plain.log", env=ONE_THREAD),
        "--checkpoint-every 30": ServerProcess(
            folder / "every30.log",
            *("--state-dir", str(folder / "s30"), "--checkpoint-every", "30"),
            env=ONE_THREAD,
        ),
        "--checkpoint-every 1": ServerProcess(
            folder / "every1.log",
            *("--state-dir", str(folder / "s1"), "--checkpoint-every", "1"),
            env=ONE_THREAD,
        ),
    }
    try:
        fns = {}
        for name, server in servers.items():
            s = gradd.connect(server.addr)
            setup = mlp_setup(s)

            def run(s=s, setup=setup) -> None:
                mlp_steps(s, s.functional, setup, steps)
                s.synchronize()

            fns[name] = run
        rows = interleaved_medians(fns, repeat)
    finally:
        for server in servers.values():
            server.stop()
    base = rows["no state dir"]
    print(f"\nMLP 784-256-10 training, {steps} steps through a server (goal: < 2% for 30 s)")
    for name, secs in rows.items():
        print(f"  {name:<22} {secs / steps * 1e3:9.3f} ms/step   {secs / base - 1:+6.1%}")


def restart_time(folder: Path) -> None:
    """SIGKILL, start again, and time until the script's next answer."""
    folder.mkdir()
    server = DurableServer(folder, "--checkpoint-every", "0.5", env=ONE_THREAD)
    try:
        s = gradd.connect(server.addr)
        setup = mlp_setup(s)
        mlp_steps(s, s.functional, setup, 5)
        s.synchronize()
        time.sleep(1.0)  # a periodic snapshot has been taken
        mlp_steps(s, s.functional, setup, 3)  # kept by the client, replayed after the restart
        s.synchronize()
        server.proc.proc.send_signal(signal.SIGKILL)
        server.proc.proc.wait()
        t0 = time.perf_counter()
        server.start()
        listening = time.perf_counter() - t0
        loss = mlp_steps(s, s.functional, setup, 1)
        loss.item()
        resumed = time.perf_counter() - t0
        s.close()
    finally:
        server.stop()
    print("\nrestart after SIGKILL (MLP session, 3 steps replayed)")
    print(f"  new server listening              {listening * 1e3:9.1f} ms")
    print(f"  script's next answer              {resumed * 1e3:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB, 3 rounds (a smoke test)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-durable-"))
    try:
        snapshot_cost((64 if args.quick else 1024) * MIB, tmp / "snap")
        step_overhead(tmp, repeat=3 if args.quick else 9, steps=20 if args.quick else 60)
        restart_time(tmp / "restart")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
