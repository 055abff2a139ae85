"""The article's linear regression (b + w * x, MSE, lr 0.1) as raw gradd.v1 commands."""

from __future__ import annotations

import numpy as np
from gradd.v1 import command_pb2 as cpb
from server_harness import Tensor, op, tensor

LR = 0.1
b, w, x, y = Tensor("b"), Tensor("w"), Tensor("x"), Tensor("y")


def data(n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """The article's synthetic data: y = 1 + 2x + noise, x in [0, 1), float32 (n, 1)."""
    rng = np.random.default_rng(42)
    x_train = rng.random((n, 1)).astype(np.float32)
    y_train = (1 + 2 * x_train + 0.1 * rng.standard_normal((n, 1))).astype(np.float32)
    return x_train, y_train


def setup(x_train: np.ndarray, y_train: np.ndarray) -> list[cpb.Command]:
    """`torch.manual_seed(42)`, b and w from randn, and the data."""
    randn = [
        cpb.Command(factory=cpb.Factory(out=h, kind="randn", shape=[1], requires_grad=True))
        for h in ("b", "w")
    ]
    return [
        cpb.Command(manual_seed=cpb.ManualSeed(seed=42)),
        *randn,
        tensor("x", x_train),
        tensor("y", y_train),
    ]


def epoch() -> list[cpb.Command]:
    """Forward, MSE, backward, `with no_grad: p -= lr * p.grad`, then zero the grads."""
    return [
        op("mul", w, x, outs=["wx"]),
        op("add", b, Tensor("wx"), outs=["yhat"]),
        op("sub", y, Tensor("yhat"), outs=["error"]),
        op("pow", Tensor("error"), 2, outs=["sq"]),
        op("mean", Tensor("sq"), outs=["loss"]),
        cpb.Command(backward=cpb.Backward(handle="loss")),
        *update("b"),
        *update("w"),
        cpb.Command(zero_grad=cpb.ZeroGrad(handles=["b", "w"])),
    ]


def update(param: str) -> list[cpb.Command]:
    """`param -= LR * param.grad` under no_grad."""
    grad, step = f"{param}.grad", f"{param}.step"
    return [
        cpb.Command(grad_of=cpb.GradOf(out=grad, handle=param)),
        op("mul", Tensor(grad), LR, outs=[step], no_grad=True),
        op("sub_", Tensor(param), Tensor(step), no_grad=True),
    ]
