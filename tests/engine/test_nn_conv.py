"""Convolutions and pools against PyTorch: values, gradients (first and second order), grad_fn
names, PyTorch's errors, over many stride/padding/dilation/groups combinations; and the memory
meter refusing a convolution whose column buffer would not fit."""

from __future__ import annotations

import gradd.engine as ge
import numpy as np
import pytest
from gradd.engine.memory_meter import MemoryMeter, SessionMemoryError, metering

torch = pytest.importorskip("torch")

F = ge.functional
TF = torch.nn.functional
RTOL, ATOL = 1e-10, 1e-12


def run_both(fn, *arrays: np.ndarray, order: int = 2, names: bool = True) -> None:
    """``fn(F, *tensors)`` in gradd and torch (float64, all requiring grad): the values, the
    grad_fn names, the gradients, and (order 2) the gradients of the gradients' sum of squares.
    ``names=False``: torch pads an even 'same' kernel by a node of its own (ConstantPadNd)."""
    ours = [ge.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = fn(F, *ours), fn(TF, *theirs)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), RTOL, ATOL)
    assert out.grad_fn.name() == tout.grad_fn.name()
    v = np.random.default_rng(0).standard_normal(tout.shape)
    grads = ge.autograd.grad(out, ours, ge.tensor(v), create_graph=order > 1)
    tgrads = torch.autograd.grad(tout, theirs, torch.tensor(v), create_graph=order > 1)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), RTOL, ATOL)
        if order > 1 and names:
            assert g.grad_fn.name() == tg.grad_fn.name()
    if order > 1:
        total = sum((g * g).sum() for g in grads)
        ttotal = sum((g * g).sum() for g in tgrads)
        second = ge.autograd.grad(total, ours, allow_unused=True)
        tsecond = torch.autograd.grad(ttotal, theirs, allow_unused=True)
        for g, tg in zip(second, tsecond):
            if tg is None:
                assert g is None or not g.detach().numpy().any()
            else:
                np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), RTOL, ATOL)


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape) * 31 + len(shape)).uniform(-1, 1, shape)


CONV2D = [
    dict(),
    dict(padding=1),
    dict(stride=2),
    dict(stride=(2, 1), padding=(1, 2)),
    dict(dilation=2, padding=2),
    dict(dilation=(1, 2), stride=(1, 2)),
    dict(padding="same"),
    dict(padding="same", dilation=2),
    dict(padding="valid", stride=3),
]


@pytest.mark.parametrize("kw", CONV2D, ids=[str(k) for k in CONV2D])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(kw: dict, groups: int, bias: bool) -> None:
    arrays = [rand(2, 4, 7, 6), rand(6, 4 // groups, 3, 2)] + ([rand(6)] if bias else [])

    def fn(f, x, w, b=None):
        return f.conv2d(x, w, b, groups=groups, **kw)

    run_both(fn, *arrays, names=kw.get("padding") != "same")  # the kernel's width is even


@pytest.mark.parametrize(
    "kw", [dict(), dict(stride=2, padding=1), dict(dilation=3), dict(groups=3, padding="same")]
)
def test_conv1d_matches_torch(kw: dict) -> None:
    w = rand(6, 6 // kw.get("groups", 1), 3)
    run_both(lambda f, x, w, b: f.conv1d(x, w, b, **kw), rand(2, 6, 11), w, rand(6))


def test_unbatched_and_even_same_padding_values() -> None:
    run_both(lambda f, x, w: f.conv2d(x, w, padding=1), rand(3, 5, 5), rand(2, 3, 3, 3))
    run_both(lambda f, x, w: f.conv1d(x, w), rand(3, 5), rand(2, 3, 2))
    # An even kernel with "same": torch pads by a ConstantPadNd node first; the values agree.
    x, w = rand(1, 2, 5, 6), rand(3, 2, 2, 4)
    ours = F.conv2d(ge.tensor(x), ge.tensor(w), padding="same")
    theirs = TF.conv2d(torch.tensor(x), torch.tensor(w), padding="same")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), RTOL, ATOL)


def test_float32_and_integer_convolutions() -> None:
    x = rand(2, 3, 6, 6).astype(np.float32)
    w = rand(4, 3, 3, 3).astype(np.float32)
    ours = F.conv2d(ge.tensor(x), ge.tensor(w), padding=1)
    assert ours.dtype is ge.float32
    np.testing.assert_allclose(ours.numpy(), TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    xi, wi = np.arange(48).reshape(1, 3, 4, 4), np.ones((2, 3, 2, 2), np.int64)
    ours = F.conv2d(ge.tensor(xi), ge.tensor(wi))
    assert ours.dtype is ge.int64
    assert ours.tolist() == TF.conv2d(torch.tensor(xi), torch.tensor(wi)).tolist()


POOLS = [
    lambda f, x: f.max_pool2d(x, 2),
    lambda f, x: f.max_pool2d(x, 3, stride=2, padding=1),
    lambda f, x: f.max_pool2d(x, (3, 2), stride=1, dilation=(1, 2)),
    lambda f, x: f.max_pool2d(x, 3, stride=2, ceil_mode=True),
    lambda f, x: f.max_pool2d(x, 2, padding=1, ceil_mode=True),
    lambda f, x: f.avg_pool2d(x, 2),
    lambda f, x: f.avg_pool2d(x, 3, stride=2, padding=1),
    lambda f, x: f.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
    lambda f, x: f.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
    lambda f, x: f.avg_pool2d(x, 3, 2, 1, True, False),
    lambda f, x: f.avg_pool2d(x, 2, 1, 1, divisor_override=3),
    lambda f, x: f.adaptive_avg_pool2d(x, 3),
    lambda f, x: f.adaptive_avg_pool2d(x, (2, 4)),
    lambda f, x: f.adaptive_avg_pool2d(x, (None, 3)),
    lambda f, x: f.adaptive_avg_pool2d(x, 1),
    lambda f, x: f.adaptive_avg_pool2d(x, (7, 9)),
]


@pytest.mark.parametrize("i", range(len(POOLS)))
@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (3, 5, 5)])
def test_pools_match_torch(i: int, shape: tuple) -> None:
    # An output of 1x1 is a mean (MeanBackward1) in both, linear: its gradient by a constant
    # gradient is a constant (in gradd without a grad_fn), so only its first order is compared.
    run_both(POOLS[i], rand(*shape), order=1 if i == 14 else 2)


POOLS_1D = [
    lambda f, x: f.max_pool1d(x, 3, 2, 1),
    lambda f, x: f.max_pool1d(x, 2, dilation=2, ceil_mode=True),
    lambda f, x: f.avg_pool1d(x, 3, 2, 1),
    lambda f, x: f.avg_pool1d(x, 3, 2, 1, True, False),
    lambda f, x: f.adaptive_avg_pool1d(x, 4),
]


@pytest.mark.parametrize("i", range(len(POOLS_1D)))
@pytest.mark.parametrize("shape", [(2, 3, 9), (3, 8)])
def test_1d_pools_match_torch(i: int, shape: tuple) -> None:
    run_both(POOLS_1D[i], rand(*shape))


def test_max_pool2d_indices_ties_and_nan() -> None:
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, np.nan, 5.0], [0.0, 0.0, 1.0, 1.0],
                    [0.0, 0.0, 1.0, 1.0]]]])  # fmt: skip
    out, idx = F.max_pool2d(ge.tensor(x), 2, return_indices=True)
    tout, tidx = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    assert idx.dtype is ge.int64
    assert idx.tolist() == tidx.tolist()
    out, idx = F.max_pool2d(ge.tensor(x), 3, 1, 1, 1, True, True)
    tout, tidx = TF.max_pool2d(torch.tensor(x), 3, 1, 1, 1, True, True)
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    assert idx.tolist() == tidx.tolist()


def test_pools_on_integers() -> None:
    x = np.arange(-8, 17).reshape(1, 1, 5, 5) * 3
    for fn in (lambda f, t: f.max_pool2d(t, 2, ceil_mode=True),
               lambda f, t: f.avg_pool2d(t, 3, padding=1)):  # fmt: skip
        assert fn(F, ge.tensor(x)).tolist() == fn(TF, torch.tensor(x)).tolist()


W = np.ones((4, 3, 3, 3))
ERRORS = [
    lambda f, t: f.conv2d(t(np.ones((5, 5))), t(W)),
    lambda f, t: f.conv1d(t(np.ones((1, 3, 5, 5))), t(W)),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W[:, :2])),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 2, 2))), t(W)),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), stride=0),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), padding=-1),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), dilation=0),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), groups=0),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), groups=2),
    lambda f, t: f.conv2d(t(np.ones((1, 6, 5, 5))), t(np.ones((2, 1, 1, 1))), groups=3),
    lambda f, t: f.conv2d(t(np.ones((1, 6, 5, 5))), t(np.ones((4, 2, 1, 1))), groups=3),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), padding="same", stride=2),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), padding="full"),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W[0])),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), stride=(1, 1, 1)),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), t(np.ones(3))),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5), np.float32)), t(W)),
    lambda f, t: f.conv2d(t(np.ones((1, 3, 5, 5))), t(W), t(np.ones(4, np.float32))),
    lambda f, t: f.max_pool2d(t(np.ones((2, 3, 6, 6))), 2, padding=2),
    lambda f, t: f.max_pool2d(t(np.ones((2, 3, 6, 6))), 0),
    lambda f, t: f.max_pool2d(t(np.ones((2, 3, 6, 6))), 2, stride=-1),
    lambda f, t: f.max_pool2d(t(np.ones((2, 3, 6, 6))), 7),
    lambda f, t: f.max_pool2d(t(np.ones((6, 6))), 2),
    lambda f, t: f.max_pool2d(t(np.ones((2, 3, 6, 6))), (2, 2, 2)),
    lambda f, t: f.max_pool2d(t(np.ones((2, 3, 6, 6))), 2, dilation=0),
    lambda f, t: f.max_pool2d(t(np.ones((2, 3, 6, 6))), 2, padding=-1),
    lambda f, t: f.avg_pool2d(t(np.ones((2, 3, 6, 6))), 2, padding=2),
    lambda f, t: f.avg_pool2d(t(np.ones((2, 3, 6, 6))), 7),
    lambda f, t: f.avg_pool2d(t(np.ones((2, 3, 6, 6))), 2, divisor_override=0),
    lambda f, t: f.avg_pool2d(t(np.ones((6, 6))), 2),
    lambda f, t: f.avg_pool2d(t(np.ones((2, 3, 6, 6))), 2, stride=0),
    lambda f, t: f.adaptive_avg_pool2d(t(np.ones((2, 3, 6, 6))), (2, 2, 2)),
    lambda f, t: f.adaptive_avg_pool2d(t(np.ones((6, 6))), 2),
    lambda f, t: f.adaptive_avg_pool2d(t(np.ones((2, 3, 6, 6))), -1),
    lambda f, t: f.adaptive_avg_pool2d(t(np.ones((2, 3, 0, 6))), 2),
    lambda f, t: f.adaptive_avg_pool2d(t(np.ones((2, 3, 6, 6), np.int64)), 2),
    lambda f, t: f.max_pool1d(t(np.ones(7)), 2),
    lambda f, t: f.max_pool1d(t(np.ones((2, 3, 7))), (2, 2)),
    lambda f, t: f.max_pool1d(t(np.ones((2, 3, 7))), 2, padding=2),
    lambda f, t: f.max_pool1d(t(np.ones((2, 3, 7))), 9),
    lambda f, t: f.avg_pool1d(t(np.ones(7)), 2),
    lambda f, t: f.avg_pool1d(t(np.ones((2, 3, 7))), 2, padding=2),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors_are_pytorchs(i: int) -> None:
    with pytest.raises(Exception) as theirs:
        ERRORS[i](TF, torch.tensor)
    with pytest.raises(Exception) as ours:
        ERRORS[i](F, ge.tensor)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_a_convolution_whose_column_buffer_does_not_fit_is_refused_before_it_runs() -> None:
    meter = MemoryMeter(64 << 20)
    with metering(meter):
        x = ge.zeros(1, 64, 128, 128)  # 4 MiB; its columns for a 7x7 kernel: 196 MiB
        w = ge.zeros(1, 64, 7, 7)
        with pytest.raises(SessionMemoryError, match="op 'convolution' needs"):
            F.conv2d(x, w, padding=3)  # the result alone (64 KiB) would fit
        used = meter.used
    assert used == x.numel() * 4 + w.numel() * 4  # nothing else was allocated


@pytest.mark.parametrize(
    "call",
    [
        lambda x: F.adaptive_avg_pool2d(x, (100_000, 100_000)),
        lambda x: F.adaptive_avg_pool2d(x, (1_000_000_000, 1)),
        lambda x: F.conv2d(x, ge.zeros(1, 1, 1, 1), padding=100_000),
        lambda x: F.max_pool2d(x, (1, 200_000_001), 1, (0, 100_000_000)),
    ],
    ids=["adaptive-square", "adaptive-tall", "conv-padding", "max-pool-padding"],
)
def test_huge_pools_and_convolutions_are_refused_before_they_run(call) -> None:
    meter = MemoryMeter(64 << 20)
    with metering(meter):
        x = ge.zeros(1, 1, 4, 4)
        with pytest.raises(SessionMemoryError):
            call(x)
        assert meter.used == x.numel() * 4


# Fewer windows than kernel offsets: the window ops loop over the windows instead.
BIG_KERNELS = [
    lambda f, x, w: f.conv2d(x, w),
    lambda f, x, w: f.conv2d(x, w, stride=2, padding=(1, 0)),
    lambda f, x: f.max_pool2d(x, (6, 5), stride=1),
    lambda f, x: f.avg_pool2d(x, 5, stride=2, padding=2),
    lambda f, x: f.avg_pool2d(x, (7, 6), count_include_pad=False, padding=(3, 2)),
]


@pytest.mark.parametrize("i", range(len(BIG_KERNELS)))
def test_big_kernels_loop_over_windows(i: int) -> None:
    weight = (rand(4, 3, 5, 5),) if i < 2 else ()
    run_both(BIG_KERNELS[i], rand(2, 3, 7, 6), *weight)


def test_a_huge_kernel_costs_one_step_per_window_not_per_offset() -> None:
    # Two million offsets, one window: a Python step per offset would take minutes.
    x = np.array([[[[0.5, -1.0, 2.0]]]])
    call = lambda f, t: f.max_pool2d(t, (1, 2_000_001), 1, (0, 1_000_000), return_indices=True)  # noqa: E731
    (out, idx), (tout, tidx) = call(F, ge.tensor(x)), call(TF, torch.tensor(x))
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    assert idx.tolist() == tidx.tolist()
