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


def compiled_article_loop(lib, x, y, epochs: int = EPOCHS):  # noqa: ANN001, ANN201
    """The article's loop with its step compiled (``lib.compile``: a session's, or torch's):
    the step is traced on the first epoch and replayed on the others."""
    lib.manual_seed(42)
    b = lib.randn(1, requires_grad=True, dtype=lib.float)
    w = lib.randn(1, requires_grad=True, dtype=lib.float)

    @lib.compile
    def step(x, y, lr):  # noqa: ANN001, ANN202
        yhat = b + w * x
        error = y - yhat
        loss = (error**2).mean()
        loss.backward()
        with lib.no_grad():
            b.sub_(lr * b.grad)
            w.sub_(lr * w.grad)
        b.grad.zero_(), w.grad.zero_()
        return loss

    for _ in range(epochs):
        step(x, y, 0.1)
    return b, w


def compiled_mlp_steps(lib, F, setup, steps: int = STEPS):  # noqa: ANN001, ANN201, N803
    """``mlp_steps`` with the step compiled."""
    x, target, params = setup
    w1, b1, w2, b2 = params

    @lib.compile
    def step(x, target, lr):  # noqa: ANN001, ANN202
        h = F.relu(F.linear(x, w1, b1))
        loss = F.cross_entropy(F.linear(h, w2, b2), target)
        loss.backward()
        with lib.no_grad():
            for p in params:
                p.sub_(lr * p.grad)
                p.grad.zero_()
        return loss

    for _ in range(steps):
        loss = step(x, target, 0.01)
    return loss


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
