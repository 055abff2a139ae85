"""The norms, embedding, padding, attention and cross-entropy ops on the CuPy stand-in: forward
and backward read nothing back from the device (no sync per step), and tensors on two devices
give PyTorch's error. Runs in every suite: the stand-in is the cuda device inside each test."""

from __future__ import annotations

import gradd.engine as ge
import numpy as np
import pytest

from .test_cuda_standin import cp  # noqa: F401 - the stand-in fixture

F = ge.functional
RNG = np.random.default_rng(23)


def _t(shape: tuple, grad: bool = True) -> ge.Tensor:
    return ge.tensor(RNG.standard_normal(shape), device="cuda", requires_grad=grad)


def _idx(values: list) -> ge.Tensor:
    return ge.tensor(np.array(values), device="cuda")


STEPS = {
    "layer_norm": lambda: F.layer_norm(_t((4, 5)), (5,), _t((5,)), _t((5,))),
    "group_norm": lambda: F.group_norm(_t((2, 4, 3)), 2, _t((4,)), _t((4,))),
    "batch_norm_train": lambda: F.batch_norm(
        _t((4, 3, 2)), _t((3,), False), _t((3,), False).abs(), _t((3,)), None, True
    ),
    "batch_norm_eval": lambda: F.batch_norm(_t((4, 3)), _t((3,), False), _t((3,), False).abs()),
    "embedding": lambda: F.embedding(
        _idx([[0, 2], [2, 1]]), _t((3, 4)), padding_idx=1, max_norm=1.0, scale_grad_by_freq=True
    ),
    "pad_reflect": lambda: F.pad(_t((1, 2, 3, 4)), (1, 2, 2, 1), "reflect"),
    "pad_circular": lambda: F.pad(_t((1, 2, 3)), (2, 1), "circular"),
    "pad_constant": lambda: F.pad(_t((2, 3)), (1, -1, 2, 0), value=0.5),
    "attention": lambda: F.scaled_dot_product_attention(
        _t((2, 3, 4)), _t((2, 5, 4)), _t((2, 5, 2)), _idx(RNG.random((3, 5)) > 0.5)
    ),
    "attention_causal": lambda: F.scaled_dot_product_attention(
        _t((2, 3, 4)), _t((2, 3, 4)), _t((2, 3, 2)), is_causal=True, dropout_p=0.2
    ),
    "cross_entropy": lambda: F.cross_entropy(
        _t((4, 3)), _idx([0, 2, -100, 1]), _t((3,), False).abs(), label_smoothing=0.1
    ),
    "cross_entropy_soft": lambda: F.cross_entropy(_t((4, 3)), _t((4, 3), False).softmax(1)),
    "nll_loss_spatial": lambda: F.nll_loss(_t((2, 3, 2, 2)), _idx(np.zeros((2, 2, 2), np.int64))),
}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_forward_and_backward_read_nothing_back(cp, name: str) -> None:  # noqa: F811
    with cp.counting() as moved:
        out = STEPS[name]()
        out.sum().backward()
    assert out.is_cuda
    assert moved.to_host == 0 and moved.implicit_to_host == 0, moved.snapshot()


def test_running_statistics_and_indices_on_another_device_are_refused(cp) -> None:  # noqa: F811
    x = _t((4, 3))
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        F.batch_norm(x, ge.zeros(3, dtype=ge.float64), ge.ones(3, dtype=ge.float64), training=True)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        F.embedding(ge.tensor([1]), _t((3, 2)), max_norm=1.0)
