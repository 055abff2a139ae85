"""Optimizer steps against PyTorch CPU eager (one thread), measured in one run.

A 10-parameter model (five 64x64 weights and their biases), gradients in place, then 20 calls
of ``opt.step()`` for SGD with momentum and for Adam: PyTorch, gradd embedded, and gradd
remote (a gradd-server on loopback; times include waiting until the server has applied the
steps, and the commands each step sent are counted). Goals (issue 12): embedded under 2x
PyTorch's ``step()``; remote, one command per ``step()`` and per ``zero_grad()``.

Run: ``.venv/bin/python benchmarks/bench_optim.py`` (``--quick`` for fewer repeats).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, os.path.dirname(__file__))

import gradd  # noqa: E402
import numpy as np  # noqa: E402
from bench_sdk import start_server, synced  # noqa: E402
from common import median_time, report, torch_or_none  # noqa: E402

STEPS = 20
OPTIMIZERS = {"SGD": {"lr": 0.01, "momentum": 0.9}, "Adam": {"lr": 1e-3}}


def model(lib) -> list:  # noqa: ANN001
    """Ten parameters with gradients: five 64x64 weights and five biases."""
    rng = np.random.RandomState(0)
    params = []
    for _ in range(5):
        for shape in ((64, 64), (64,)):
            p = lib.tensor(rng.randn(*shape).astype(np.float32), requires_grad=True)
            params.append(p)
    sum((p * p).sum() for p in params).backward()
    return params


def steps(opt) -> None:  # noqa: ANN001
    for _ in range(STEPS):
        opt.step()


def commands_per_call(remote, opt) -> tuple[int, int]:  # noqa: ANN001
    """How many commands one step() and one zero_grad(set_to_none=False) send."""
    counts = []
    push = remote._push
    for call in (opt.step, lambda: opt.zero_grad(set_to_none=False)):
        sent = []
        remote._push = lambda cmd, site, sent=sent: (sent.append(cmd), push(cmd, site))[1]
        try:
            call()
        finally:
            remote._push = push
        counts.append(len(sent))
    return counts[0], counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    torch = torch_or_none()
    tmp = Path(tempfile.mkdtemp(prefix="bench-optim-"))
    proc, target = start_server(tmp)
    try:
        embedded, remote = gradd.connect(), gradd.connect(target)
        for name, kwargs in OPTIMIZERS.items():
            rows: dict[str, float] = {}
            if torch is not None:
                topt = getattr(torch.optim, name)(model(torch), **kwargs)
                rows["torch"] = median_time(lambda o=topt: steps(o), repeat) / STEPS
            eopt = getattr(embedded.optim, name)(model(embedded), **kwargs)
            rows["gradd embedded"] = median_time(lambda o=eopt: steps(o), repeat) / STEPS
            ropt = getattr(remote.optim, name)(model(remote), **kwargs)
            run = synced(remote, lambda o=ropt: steps(o))
            rows["gradd remote"] = median_time(run, repeat) / STEPS
            step_cmds, zero_cmds = commands_per_call(remote, ropt)
            report(
                f"{name} step(), 10 parameters, per step (goal: embedded < 2x torch); remote: "
                f"{step_cmds} command per step(), {zero_cmds} per zero_grad()",
                rows,
            )
        remote.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
