"""The CUDA path: the same ops on CuPy give what NumPy gives (skipped without a GPU), and
asking for cuda where there is none is a clear RuntimeError."""

from __future__ import annotations

import gradd.engine as ge
import gradd.engine.device as device_module
import numpy as np
import pytest
from gradd.engine.random_state import DRAWING_OPS

from .engine_examples import (
    call,
    example_cases,
    instantiate,
    is_differentiable,
    materialise,
    rng_for,
    tensor_outputs,
)

needs_gpu = pytest.mark.skipif(
    not ge.cuda_is_available(), reason="needs CuPy and an NVIDIA GPU (pip install gradd[cuda])"
)


RANDOM_OPS = {"dropout"}


def _run(name: str, i: int, device: str) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """One example on ``device``: its outputs and its leaves' gradients, as NumPy arrays."""
    d = ge.OP_TABLE[name]
    case = materialise(d, d.examples[i], rng_for(name, i))
    args, kwargs, leaves = instantiate(case, device=device)
    outs = tensor_outputs(call(d, args, kwargs))
    diff = [o for o in outs if o.requires_grad]
    if diff and is_differentiable(d):
        ups = [np.random.default_rng(i).standard_normal(o.shape).astype(o.dtype.np) for o in diff]
        ge.backward(diff, [ge.tensor(u, device=o.device) for u, o in zip(ups, diff)])
    return (
        [o.detach().cpu().numpy() for o in outs],
        [None if t.grad is None else t.grad.cpu().numpy() for t in leaves],
    )


@needs_gpu
def test_every_example_on_cuda_matches_cpu() -> None:
    failures = []
    for name, i in example_cases():
        try:
            cpu_outs, cpu_grads = _run(name, i, "cpu")
            gpu_outs, gpu_grads = _run(name, i, "cuda")
            for a, b in zip(gpu_outs + gpu_grads, cpu_outs + cpu_grads):
                assert (a is None) == (b is None)
                if a is None:
                    continue
                assert a.dtype == b.dtype and a.shape == b.shape
                if name in DRAWING_OPS and name not in RANDOM_OPS:
                    continue  # each device draws its own numbers: shapes and dtypes only
                if name in RANDOM_OPS:  # each device draws its own mask: where both keep
                    a, b = a[(a != 0) & (b != 0)], b[(a != 0) & (b != 0)]  # an element, equal
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        except Exception as e:  # noqa: BLE001 - collect every op that fails, then report
            failures.append(f"{name}-{i}: {type(e).__name__}: {str(e)[:200]}")
    assert not failures, "\n".join(failures)


@needs_gpu
def test_tensors_live_on_the_gpu() -> None:
    x = ge.randn(3, 4, device="cuda", requires_grad=True)
    y = (x.relu() @ ge.ones(4, 2, device="cuda")).sum()
    assert x.is_cuda and y.device.type == "cuda" and type(y._data).__module__.startswith("cupy")
    y.backward()
    assert x.grad.is_cuda
    np.testing.assert_allclose(x.grad.cpu().numpy(), (x.detach().cpu().numpy() > 0) * 2.0)


@needs_gpu
def test_the_article_loop_on_cuda() -> None:
    rng = np.random.default_rng(0)
    x_np = rng.random((80, 1))
    y_np = 1 + 2 * x_np + 0.1 * rng.standard_normal((80, 1))
    results = {}
    for dev in ("cpu", "cuda"):
        x, y = ge.tensor(x_np, device=dev).float(), ge.tensor(y_np, device=dev).float()
        b = ge.tensor([0.3367], device=dev, requires_grad=True)
        w = ge.tensor([0.1288], device=dev, requires_grad=True)
        for _ in range(50):
            loss = ((y - (b + w * x)) ** 2).mean()
            loss.backward()
            with ge.no_grad():
                b -= 0.1 * b.grad
                w -= 0.1 * w.grad
            b.grad.zero_(), w.grad.zero_()
        results[dev] = (b.item(), w.item(), loss.item())
    np.testing.assert_allclose(results["cuda"], results["cpu"], rtol=1e-5)


@needs_gpu
def test_moving_between_devices_is_differentiable() -> None:
    x = ge.tensor([1.0, 2.0], device="cpu", requires_grad=True)
    y = x.cuda() * 3
    z = y.cpu().sum()
    assert y.grad_fn.next_functions[0][0].name() == "ToCopyBackward0"
    z.backward()
    assert x.grad.device.type == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


# -- without a GPU ------------------------------------------------------------------------------


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without CuPy (also where a GPU is present)."""
    monkeypatch.setattr(device_module, "_cuda_module", None)
    monkeypatch.setattr(device_module, "_cuda", {})
    monkeypatch.setattr(device_module, "_cuda_error", "ImportError: No module named 'cupy'")
    monkeypatch.setattr(device_module, "_default", device_module.CPU)


@pytest.mark.parametrize(
    "ask",
    [
        lambda: ge.tensor([1.0], device="cuda"),
        lambda: ge.ones(2, device="cuda:0"),
        lambda: ge.randn(2, device="cuda"),
        lambda: ge.tensor([1.0]).to("cuda"),
        lambda: ge.tensor([1.0]).cuda(),
        lambda: ge.get_device("cuda"),
    ],
    ids=["tensor", "ones", "randn", "to", "cuda", "get_device"],
)
def test_asking_for_cuda_without_it_is_a_clear_error(ask, no_cuda: None) -> None:
    with pytest.raises(RuntimeError, match="device 'cuda' is not available") as err:
        ask()
    message = str(err.value)
    assert "No module named 'cupy'" in message  # why
    assert "gradd[cuda]" in message and "device='cpu'" in message  # what to do


def test_without_cuda_everything_else_works(no_cuda: None) -> None:
    assert not ge.cuda_is_available()
    assert ge.available_devices() == ["cpu"]
    x = ge.tensor([1.0, 2.0], device="cpu", requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_an_unknown_device_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda device type"):
        ge.tensor([1.0], device="tpu")
