"""pytest plugin for ``make test-cuda-standin``: the suites run with device ``cuda`` on the CuPy
stand-in (cupy_standin.py), or on the real CuPy with GRADD_CUDA_STANDIN=0 (``make gpu-check``).

It installs the stand-in in this process, makes ``cuda`` the default device of tensors and
embedded sessions (``set_default_device``) and of the sessions of test servers
(``GRADD_DEVICE``), passes the stand-in on to subprocesses (``PYTHONPATH`` with
sitecustomize.py), and deselects the tests marked ``cpu_only(reason)``, listing each reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


# Set on import, before any conftest reads them (the server harness reads GRADD_DEVICE).
STANDIN = os.environ.setdefault("GRADD_CUDA_STANDIN", "1") == "1"
os.environ["GRADD_DEVICE"] = "cuda:0"  # suites on one GPU; test_cuda_placement spreads
_paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
if str(HERE) not in _paths:
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, _paths)])


def pytest_configure(config: pytest.Config) -> None:
    from gradd.engine import device

    if STANDIN:
        import cupy_standin

        cupy_standin.install()
    elif not device.cuda_is_available():
        raise pytest.UsageError("GRADD_CUDA_STANDIN=0 needs CuPy and an NVIDIA GPU")
    device.set_default_device("cuda")
    config.stash[_DESELECTED] = []


_DESELECTED = pytest.StashKey[list]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, dropped = [], []
    for item in items:
        mark = item.get_closest_marker("cpu_only")
        if mark is None:
            keep.append(item)
        else:
            dropped.append(item)
            config.stash[_DESELECTED].append(f"{item.nodeid}: {mark.args[0]}")
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reasons = terminalreporter.config.stash[_DESELECTED]
    if reasons:
        terminalreporter.section("CPU-only tests, not run on cuda")
        for line in reasons:
            terminalreporter.write_line(line)
