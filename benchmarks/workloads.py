"""The workloads every benchmark times, written once for torch and every kind of gradd session."""

from __future__ import annotations

import numpy as np

EPOCHS, STEPS = 200, 20


def article_loop(lib, x, y, epochs: int = EPOCHS):  # noqa: ANN001, ANN201
    """The article's loop, as printed; ``lib`` is torch or a gradd session."""
    lib.manual_seed(42)
    b = lib.randn(1, requires_grad=True, dtype=lib.float)
    w = lib.randn(1, requires_grad=True, dtype=lib.float)
    lr = 0.1
    for _ in range(epochs):
        yhat = b + w * x
        error = y - yhat
        loss = (error**2).mean()
        loss.backward()
        with lib.no_grad():
            b -= lr * b.grad
            w -= lr * w.grad
        b.grad.zero_(), w.grad.zero_()
    return b, w


def mlp_setup(lib, batch: int = 256):  # noqa: ANN001, ANN201
    rng = np.random.RandomState(0)
    x = lib.tensor(rng.rand(batch, 784).astype(np.float32))
    target = lib.tensor(rng.randint(0, 10, batch).astype(np.int64))
    w1 = lib.tensor((rng.randn(256, 784) * 0.05).astype(np.float32), requires_grad=True)
    b1 = lib.tensor(np.zeros(256, np.float32), requires_grad=True)
    w2 = lib.tensor((rng.randn(10, 256) * 0.05).astype(np.float32), requires_grad=True)
    b2 = lib.tensor(np.zeros(10, np.float32), requires_grad=True)
    return x, target, [w1, b1, w2, b2]


def mlp_steps(lib, F, setup, steps: int = STEPS):  # noqa: ANN001, ANN201, N803
    """Forward, backward and an SGD update, ``steps`` times."""
    x, target, params = setup
    w1, b1, w2, b2 = params
    for _ in range(steps):
        h = F.relu(F.linear(x, w1, b1))
        loss = F.cross_entropy(F.linear(h, w2, b2), target)
        loss.backward()
        with lib.no_grad():
            for p in params:
                p -= 0.01 * p.grad
                p.grad.zero_()
    return loss
