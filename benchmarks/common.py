"""Shared helpers for the benchmarks: the article's data, timing by medians, ratio tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def article_data() -> tuple[np.ndarray, np.ndarray]:
    """The article's synthetic data: 80 training points of y = 1 + 2x + noise."""
    rng = np.random.RandomState(42)
    x = rng.rand(100, 1)
    y = 1 + 2 * x + 0.1 * rng.randn(100, 1)
    idx = np.arange(100)
    rng.shuffle(idx)
    return x[idx[:80]].astype(np.float32), y[idx[:80]].astype(np.float32)


def median_time(fn: Callable[[], object], repeat: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds (the machines are noisy: medians, never means)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeat: int = 7, warmup: int = 1
) -> dict[str, float]:
    """Median wall time of each of ``fns``, timed in turns (one of each per round), so that a
    shared machine's load, which comes and goes, weighs on every row alike and not on one."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def report(title: str, rows: dict[str, float], baseline: str = "torch") -> None:
    """Print medians in ms and each row's ratio to the baseline."""
    base = rows.get(baseline)
    print(f"\n{title}")
    for name, secs in rows.items():
        ratio = f"{secs / base:5.2f}x" if base else "  n/a"
        print(f"  {name:<22} {secs * 1e3:9.2f} ms   {ratio} vs {baseline}")


def torch_or_none():  # noqa: ANN201 - returns the module or None
    """PyTorch, pinned to one thread so the comparison is fair, or None if not installed."""
    try:
        import torch
    except ImportError:
        print("torch is not installed (pip install gradd[reference]): no baseline")
        return None
    torch.set_num_threads(1)
    return torch
