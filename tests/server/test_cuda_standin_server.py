"""A gradd-server on device cuda backed by the CuPy stand-in (tests/cuda_standin): training
through it moves only what the client sends and fetches. Runs in every `make test`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import gradd
import numpy as np
from server_harness import ROOT, ServerProcess

sys.path.insert(0, str(ROOT / "benchmarks"))
from workloads import mlp_setup, mlp_steps  # noqa: E402

STANDIN = str(ROOT / "tests" / "cuda_standin")


def transfers(probe: Path) -> dict:
    """The server's host-device transfer counts so far (its stand-in answers the probe)."""
    ask = Path(f"{probe}.ask")
    ask.touch()
    deadline = time.monotonic() + 30
    while ask.exists():
        assert time.monotonic() < deadline, "the server did not answer the transfer probe"
        time.sleep(0.01)
    return json.loads(probe.read_text())


def test_remote_mlp_training_on_cuda_moves_only_uploads_and_fetches(tmp_path: Path) -> None:
    probe = tmp_path / "transfers.json"
    paths = [STANDIN, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {
        "GRADD_CUDA_STANDIN": "1",
        "GRADD_CUDA_STANDIN_PROBE": str(probe),
        "PYTHONPATH": os.pathsep.join(paths),
    }
    server = ServerProcess(tmp_path / "server.log", "--device", "cuda", env=env)
    try:
        session = gradd.connect(server.addr, timeout=60)
        setup = mlp_setup(session)  # x, target and four parameters: six uploads
        first = mlp_steps(session, session.functional, setup, steps=1).item()
        before = transfers(probe)
        sizes = [t.numel() * t.element_size() for t in (*setup[:2], *setup[2])]
        assert before["to_device"] == 6 and before["to_device_bytes"] == sum(sizes)
        assert before["to_host"] == 1 and before["implicit_to_host"] == 0
        last = mlp_steps(session, session.functional, setup, steps=3).item()
        after = transfers(probe)
        moved = {k: after[k] - before[k] for k in after}
        assert moved == {  # 3 steps of forward, backward and update; then one 4-byte fetch
            "to_host": 1,
            "implicit_to_host": 0,
            "to_device": 0,
            "to_host_bytes": 4,
            "to_device_bytes": 0,
        }
        assert np.isfinite(first) and last < first and str(session.device) == "cuda:0"
        session.close()
    finally:
        server.stop()
