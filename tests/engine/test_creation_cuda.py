"""Creation factories and ops on the CPU stand-in for CuPy: made on the device, nothing moved
from the host, no hidden syncs; right shapes and dtypes; random ones follow the seed."""

from __future__ import annotations

import sys
from pathlib import Path

import gradd.engine as ge
import gradd.engine.device as device_module
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cuda_standin"))

import cupy_standin  # noqa: E402


@pytest.fixture
def cp(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The stand-in as this test's cuda device (CPU stays the default device)."""
    monkeypatch.setattr(device_module, "_cuda_module", None)
    monkeypatch.setattr(device_module, "_cuda", {})
    monkeypatch.setattr(device_module, "_cuda_error", None)
    monkeypatch.setattr(device_module, "_default", device_module.CPU)
    device_module.register_cuda(cupy_standin)
    cupy_standin.TRANSFERS.reset()
    return cupy_standin


def made(g: ge.Generator) -> list:
    c = "cuda"
    x = ge.ones(3, 4, device=c)
    p = ge.full((2, 5), 0.5, device=c)
    with ge.use_generator(g):
        return [
            ge.linspace(0, 1, 7, device=c),
            ge.linspace(0, 10, 5, dtype=ge.int32, device=c),
            ge.logspace(0, 2, 3, device=c),
            ge.eye(3, 2, device=c),
            ge.empty(2, 2, dtype=ge.int8, device=c),
            ge.randint(10, (4,), generator=g, device=c),
            ge.randperm(6, generator=g, device=c),
            ge.normal(1.0, 2.0, (5,), generator=g, device=c),
            ge.zeros_like(x),
            ge.ones_like(x, dtype=ge.float16),
            ge.full_like(x, 3),
            ge.empty_like(x),
            ge.rand_like(x),
            ge.randn_like(x),
            ge.randint_like(x, 3, 9),
            ge.bernoulli(p),
            ge.bernoulli(p, 0.25),
            ge.normal(x, 2.0),
            ge.normal(0.5, x),
            ge.multinomial(p, 3),
            ge.multinomial(p, 4, True),
            x.new_zeros(2, 3),
            x.new_ones((2,), dtype=ge.int16),
            x.new_full((3,), 2.5),
            x.new_empty(4),
        ]


def test_made_on_the_device_without_transfers(cp) -> None:
    with cp.counting() as moved:
        out = made(ge.Generator().manual_seed(1))
    assert moved.to_device == 0
    cpu = [t.cpu() for t in out]
    assert all(t.device.type == "cuda" for t in out)
    want = made(ge.Generator().manual_seed(1))
    for a, b in zip(cpu, want):
        assert a.shape == b.shape and a.dtype is b.dtype
    assert np.array_equal(cpu[3].numpy(), np.eye(3, 2, dtype=np.float32))
    assert sorted(cpu[6].numpy().tolist()) == list(range(6))


def test_device_draws_follow_the_seed(cp) -> None:
    def values(seed: int) -> list:
        return [t.cpu().numpy() for t in made(ge.Generator().manual_seed(seed))]

    a, b, c = values(3), values(3), values(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
