"""The benchmarks still run and report every row (a smoke test: no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_runs_and_reports() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for row in (
        "gradd.engine",  # bench_engine: the loop and the MLP step
        "CNN step, digits batch",  # bench_conv
        "digits CNN epoch",  # bench_training: the examples' models with nn and optim
        "digits MLP epoch",
        "gradd embedded",
        "gradd remote",  # bench_sdk, through a real server
        "512 op(s)/request",
        "one-op Execute round trip",
        "64 MiB up+down, raw echo",  # bench_server
        "server overhead per command, lean tape",
        "attacked p99 / quiet p99",  # bench_load
    ):
        assert row in out, f"{row!r} missing from the benchmarks' report:\n{out}"
    assert out.count(" ms ") >= 8
