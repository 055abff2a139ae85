"""The CUDA path on the CPU stand-in for CuPy (tests/cuda_standin): no hidden host round trips,
PyTorch's device rules. These run in every `make test`; the stand-in is the cuda device only
inside each test."""

from __future__ import annotations

import sys
from pathlib import Path

import gradd
import gradd.engine as ge
import gradd.engine.device as device_module
import numpy as np
import pytest
from gradd.server import answer_bytes

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cuda_standin"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cupy_standin  # noqa: E402
from workloads import article_loop, mlp_setup, mlp_steps  # noqa: E402


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


# -- the training steps: zero implicit transfers ------------------------------------------------


def test_mlp_step_moves_nothing_between_host_and_device(cp) -> None:
    session = gradd.connect(device="cuda")
    setup = mlp_setup(session)  # 784-256-10, batch 256: the uploads happen here
    with cp.counting() as moved:
        loss = mlp_steps(session, session.functional, setup, steps=3)  # forward, backward, SGD
        assert moved.snapshot() == cp.Transfers().snapshot()  # nothing, either way
        value = loss.item()
    assert moved.to_host == 1 and moved.to_host_bytes == 4 and moved.implicit_to_host == 0
    assert np.isfinite(value) and setup[2][0].is_cuda


def test_article_loop_moves_nothing_between_host_and_device(cp) -> None:
    session = gradd.connect(device="cuda")
    rng = np.random.default_rng(0)
    x_np = rng.random((80, 1), dtype=np.float32)
    x, y = session.tensor(x_np), session.tensor(1 + 2 * x_np)
    with cp.counting() as moved:
        b, w = article_loop(session, x, y)  # 200 epochs, randn on the device included
        assert moved.snapshot() == cp.Transfers().snapshot()
        fetched = (b.item(), w.item())
    assert moved.to_host == 2 and moved.implicit_to_host == 0
    assert abs(fetched[0] - 1) < 0.2 and abs(fetched[1] - 2) < 0.4


def test_dropout_draws_its_mask_on_the_device(cp) -> None:
    x = ge.ones(64, 64, device="cuda", requires_grad=True)
    with cp.counting() as moved:
        y = ge.functional.dropout(x, 0.5)
        y.sum().backward()
    assert moved.to_device == 0 and moved.to_host == 0
    kept = y.detach().cpu().numpy()
    assert set(np.unique(kept)) <= {0.0, 2.0} and 0.3 < (kept > 0).mean() < 0.7
    np.testing.assert_array_equal(x.grad.cpu().numpy(), kept)


def test_device_randoms_follow_the_seed(cp) -> None:
    def draw(seed: int) -> np.ndarray:
        g = ge.Generator().manual_seed(seed)
        parts = [ge.randn(5, generator=g, device="cuda"), ge.rand(5, generator=g, device="cuda")]
        parts.append(ge.randint(0, 9, (5,), generator=g, device="cuda").float())
        return np.concatenate([p.cpu().numpy() for p in parts])

    assert np.array_equal(draw(3), draw(3)) and not np.array_equal(draw(3), draw(4))
    with cp.counting() as moved:
        ge.randperm(10, device="cuda"), ge.zeros(3, device="cuda"), ge.arange(4, device="cuda")
    assert moved.to_device == 0


def test_the_cpu_stream_is_untouched_by_device_draws(cp) -> None:
    g = ge.Generator().manual_seed(7)
    ge.randn(100, generator=g, device="cuda")
    assert np.array_equal(
        ge.randn(5, generator=g).numpy(),
        ge.randn(5, generator=ge.Generator().manual_seed(7)).numpy(),
    )


# -- PyTorch's device rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "devices"),
    [
        (lambda: ge.ones(2, device="cuda") + ge.ones(2), "cuda:0 and cpu"),
        (lambda: ge.ones(2) * ge.ones(2, device="cuda"), "cpu and cuda:0"),
        (lambda: ge.ones(2, 2, device="cuda") @ ge.ones(2, 2), "cuda:0 and cpu"),
        (lambda: ge.cat([ge.ones(2, device="cuda"), ge.ones(2)]), "cuda:0 and cpu"),
        (lambda: ge.ones(2, device="cuda:1").add_(ge.ones(2, device="cuda")), "cuda:1 and cuda:0"),
    ],
    ids=["add", "mul", "matmul", "cat", "add_"],
)
def test_mixing_devices_is_pytorchs_error(cp, program, devices: str) -> None:
    with pytest.raises(RuntimeError) as err:
        program()
    assert str(err.value) == (
        f"Expected all tensors to be on the same device, but found at least two devices, {devices}!"
    )


def test_copy_crosses_devices_both_ways(cp) -> None:
    src = ge.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    dst = ge.zeros(2)
    with ge.no_grad():
        dst.copy_(src)
    assert dst.tolist() == [1.0, 2.0] and not dst.is_cuda
    back = ge.zeros(2, device="cuda").requires_grad_()
    out = back * 1
    out.copy_(ge.tensor([3.0, 4.0], requires_grad=True))
    assert out.is_cuda and out.tolist() == [3.0, 4.0]
    leaf = ge.tensor([5.0, 6.0], requires_grad=True)
    moved = ge.zeros(2, device="cuda") * 1
    moved.copy_(leaf)
    moved.sum().backward()
    assert not leaf.grad.is_cuda and leaf.grad.tolist() == [1.0, 1.0]


def test_cuda_ordinals_are_honoured(cp) -> None:
    a = ge.ones(2, device="cuda:1", requires_grad=True)
    b = (a * 3).exp()
    assert str(a.device) == "cuda:1" and b.device is a.device and b._data.device.id == 1
    assert (
        repr(a.device) == "device(type='cuda', index=1)" and str(ge.get_device("cuda")) == "cuda:0"
    )
    b.sum().backward()
    assert a.grad.device is a.device and a.grad._data.device.id == 1
    c = a.detach().to("cuda:0")
    assert c.device is ge.get_device("cuda:0") and c._data.device.id == 0
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        ge.ones(1, device="cuda:2")


def test_to_host_asks_the_arrays_own_module(cp) -> None:
    t = ge.arange(6, device="cuda")
    with cp.counting() as moved:
        host = device_module.to_host(t._data)
    assert type(host) is np.ndarray and host.tolist() == list(range(6)) and moved.to_host == 1


def test_an_upload_is_one_copy(cp) -> None:
    data = np.arange(6, dtype=np.float32)
    with cp.counting() as moved:
        t = ge.tensor(data, device="cuda")
    assert moved.to_device == 1 and moved.to_device_bytes == data.nbytes
    data[0] = 99  # the device holds its own copy
    assert t.tolist()[0] == 0


def test_a_large_upload_is_staged_in_pinned_chunks(cp, monkeypatch) -> None:
    from gradd.engine import staged_upload

    # A small ring (4 chunks of 1 KiB, 2 threads) over 10.5 chunks: every buffer is reused.
    monkeypatch.setattr(staged_upload, "STAGED_FROM", 4096)
    monkeypatch.setattr(staged_upload, "CHUNK", 1024)
    monkeypatch.setattr(staged_upload, "THREADS", 2)
    monkeypatch.setattr(staged_upload, "_stagers", {})
    data = np.random.default_rng(0).standard_normal((21, 256)).astype(np.float32)
    with cp.counting() as moved:
        t = ge.tensor(data[:, ::2], device="cuda")  # strided (made contiguous first): 10,752 bytes
    assert moved.to_device == 11 and moved.to_device_bytes == data.nbytes // 2
    assert moved.to_host == 0
    np.testing.assert_array_equal(t.detach().cpu().numpy(), data[:, ::2])
    small = ge.tensor(np.ones(1000, np.float32), device="cuda")  # under STAGED_FROM: one copy
    assert small.sum().item() == 1000


def test_a_one_element_fetch_syncs_once(cp) -> None:
    t = ge.tensor([2.5], device="cuda")
    with cp.counting() as moved:
        chunks = answer_bytes.tensor_value("h", t)
    assert moved.to_host == 1 and b"".join(bytes(c) for c in chunks)


def test_repr_copies_only_what_it_prints(cp) -> None:
    t = ge.arange(200_000, device="cuda").reshape(200, 1000).float()
    with cp.counting() as moved:
        text = repr(t)
    assert moved.to_host == 1 and moved.to_host_bytes == 6 * 6 * 4
    assert text.endswith("device='cuda:0')") and "..." in text


# -- the stand-in itself: CuPy's rules -------------------------------------------------------------


def test_the_standin_refuses_what_cupy_refuses(cp) -> None:
    a = cp.asarray(np.arange(3.0))
    for implicit in (np.asarray, float, bool, int, lambda x: x + np.ones(3)):
        with pytest.raises(TypeError):
            implicit(a[0] if implicit in (float, bool, int) else a)
    with pytest.raises(TypeError, match="atomicAdd"):
        cp.add.at(cp.zeros(3, dtype=np.int64), cp.asarray(np.array([0, 0])), 1)
    with cp.counting() as moved:
        assert a.get().tolist() == [0.0, 1.0, 2.0] and cp.asnumpy(a).sum() == 3.0
        assert isinstance(a.sum(), cp.ndarray) and a.sum().item() == 3.0
    assert moved.to_host == 3 and moved.to_device == 0
    with cp.cuda.Device(1), pytest.raises(ValueError, match="Array device must be same"):
        a + 1


_RNG = np.random.default_rng(0)
LARGE = {
    "1d": np.arange(2000, dtype=np.float32),
    "2d": _RNG.standard_normal((40, 50)).astype(np.float32),
    "3d": _RNG.standard_normal((3, 400, 5)),
    "long": np.arange(1200).reshape(30, 40),
    "bool": _RNG.random((20, 60)) > 0.5,
    "tiny": _RNG.standard_normal((2, 2000)).astype(np.float32) * 1e-6,
    "wrapped": _RNG.standard_normal(30).astype(np.float32) * 1000,
}


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_tensors_print_as_pytorchs_summary(cp, name: str) -> None:
    torch = pytest.importorskip("torch")
    expected = repr(torch.tensor(LARGE[name]))
    assert repr(ge.tensor(LARGE[name], device="cpu")) == expected
    on_gpu = repr(ge.tensor(LARGE[name], device="cuda"))  # device= comes before dtype=
    assert on_gpu.count(", device='cuda:0'") == 1
    assert on_gpu.replace(", device='cuda:0'", "") == expected
