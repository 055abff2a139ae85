"""The SDK against PyTorch CPU eager (one thread), measured in one run.

The article's loop (200 epochs, 80 points) and an MLP step (784-256-10, batch 256, float32,
forward + backward + SGD update, 20 steps) through: PyTorch, gradd embedded (the engine in this
process) and gradd remote (a gradd-server subprocess on loopback, started here). Medians;
remote times include waiting until the server has applied everything (``s.synchronize()``).
Goals (issue 4): remote loop and embedded loop within 1.5x of PyTorch, remote MLP step 1.3x;
(issue 11) the loop compiled (``s.compile``, traced on its first epoch): remote 1.0x, embedded
0.7x; the MLP step compiled, remote, 1.05x.

Run: ``.venv/bin/python benchmarks/bench_sdk.py`` (``--quick`` for fewer repeats;
``--profile`` adds the client's per-op cost breakdown).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread in this process and the server, as torch.set_num_threads(1) gives PyTorch.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, os.path.dirname(__file__))

import gradd  # noqa: E402
from common import article_data, median_time, report, torch_or_none  # noqa: E402
from workloads import (  # noqa: E402
    EPOCHS,
    STEPS,
    article_loop,
    compiled_article_loop,
    compiled_mlp_steps,
    mlp_setup,
    mlp_steps,
)


def start_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    """A gradd-server on a free loopback port (one BLAS thread, like everything here)."""
    log = tmp / "gradd-server.log"
    server = Path(sys.executable).parent / "gradd-server"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(server), "--port", "0"], stdout=out, stderr=out)
    for _ in range(600):
        found = re.search(r"listening on \S+:(\d+)", log.read_text(errors="replace"))
        if found:
            return proc, f"127.0.0.1:{found.group(1)}"
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"gradd-server did not start:\n{log.read_text()}")


def synced(s, fn):  # noqa: ANN001, ANN201
    """``fn`` then wait until the session has applied everything it queued."""

    def run() -> None:
        fn()
        s.synchronize()

    return run


def client_side(s, fn, repeat: int = 7) -> float:  # noqa: ANN001
    """Median time ``fn`` keeps the caller busy, the server idle at its start (it then works
    in parallel): the client's share of a remote loop."""
    times = []
    for _ in range(repeat):
        s.synchronize()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    s.synchronize()
    return statistics.median(times)


def profile_client(remote) -> None:  # noqa: ANN001
    """Where the client's time goes in the article's loop (the server's work overlaps it)."""
    import cProfile
    import pstats

    x, y = (remote.tensor(a) for a in article_data())
    profile = cProfile.Profile()
    profile.enable()
    article_loop(remote, x, y)
    profile.disable()
    remote.synchronize()
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--profile", action="store_true", help="profile the client's loop")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    torch = torch_or_none()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sdk-"))
    proc, target = start_server(tmp)
    try:
        embedded, remote = gradd.connect(), gradd.connect(target)
        x, y = article_data()
        rows: dict[str, float] = {}
        if torch is not None:
            tx, ty = torch.tensor(x), torch.tensor(y)
            rows["torch"] = median_time(lambda: article_loop(torch, tx, ty), repeat)
        ex, ey = embedded.tensor(x), embedded.tensor(y)
        rows["gradd embedded"] = median_time(lambda: article_loop(embedded, ex, ey), repeat)
        rx, ry = remote.tensor(x), remote.tensor(y)
        loop = synced(remote, lambda: article_loop(remote, rx, ry))
        rows["gradd remote"] = median_time(loop, repeat)
        rows["  (remote: client side)"] = client_side(remote, lambda: article_loop(remote, rx, ry))
        loop = synced(remote, lambda: compiled_article_loop(remote, rx, ry))
        rows["gradd remote compiled"] = median_time(loop, repeat)
        loop = lambda: compiled_article_loop(embedded, ex, ey)  # noqa: E731
        rows["gradd embedded compiled"] = median_time(loop, repeat)
        report(
            f"article loop, {EPOCHS} epochs (goals: embedded, remote <= 1.5x torch; "
            "remote compiled <= 1.0x, embedded compiled <= 0.7x)",
            rows,
        )

        rows = {}
        if torch is not None:
            import torch.nn.functional as TF  # noqa: N812

            ts = mlp_setup(torch)
            rows["torch"] = median_time(lambda: mlp_steps(torch, TF, ts), repeat) / STEPS
        es = mlp_setup(embedded)
        rows["gradd embedded"] = (
            median_time(lambda: mlp_steps(embedded, embedded.functional, es), repeat) / STEPS
        )
        rs = mlp_setup(remote)
        steps = synced(remote, lambda: mlp_steps(remote, remote.functional, rs))
        rows["gradd remote"] = median_time(steps, repeat) / STEPS
        steps = synced(remote, lambda: compiled_mlp_steps(remote, remote.functional, rs))
        rows["gradd remote compiled"] = median_time(steps, repeat) / STEPS
        report(
            "MLP step 784-256-10, batch 256, per step (goals: remote <= 1.3x torch, "
            "remote compiled <= 1.05x)",
            rows,
        )
        if args.profile:
            profile_client(remote)
        remote.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
