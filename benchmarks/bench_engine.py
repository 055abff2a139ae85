"""Engine speed vs PyTorch CPU eager (one thread), measured in the same run.

The article's loop (200 epochs, 80 points) and an MLP step (784-256-10, batch 256, float32,
forward + backward + SGD update). Goals (issue 2): loop within 1.5x, MLP step within 1.2x.
Run: ``.venv/bin/python benchmarks/bench_engine.py``.
"""

from __future__ import annotations

import os
import sys

# One BLAS thread, as torch.set_num_threads(1) gives PyTorch: compare like with like.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, os.path.dirname(__file__))

import gradd.engine as ge  # noqa: E402
import numpy as np  # noqa: E402
from common import article_data, median_time, report, torch_or_none  # noqa: E402


def article_loop(lib, x, y, epochs: int = 200):  # noqa: ANN001, ANN201
    """The article's training loop, written once for torch and gradd.engine."""
    lib.manual_seed(42)
    xt, yt = lib.tensor(x), lib.tensor(y)
    b = lib.randn(1, requires_grad=True, dtype=lib.float)
    w = lib.randn(1, requires_grad=True, dtype=lib.float)
    lr = 0.1
    for _ in range(epochs):
        yhat = b + w * xt
        error = yt - yhat
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


def mlp_steps(lib, F, setup, steps: int = 20):  # noqa: ANN001, ANN201, N803
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


def main() -> None:
    torch = torch_or_none()
    x, y = article_data()
    rows = {}
    if torch is not None:
        rows["torch"] = median_time(lambda: article_loop(torch, x, y))
    rows["gradd.engine"] = median_time(lambda: article_loop(ge, x, y))
    report("article loop, 200 epochs (goal: gradd.engine <= 1.5x torch)", rows)

    rows = {}
    steps = 20
    if torch is not None:
        import torch.nn.functional as TF

        s = mlp_setup(torch)
        rows["torch"] = median_time(lambda: mlp_steps(torch, TF, s, steps), repeat=5) / steps
    s = mlp_setup(ge)
    rows["gradd.engine"] = (
        median_time(lambda: mlp_steps(ge, ge.functional, s, steps), repeat=5) / steps
    )
    report("MLP step 784-256-10, batch 256 (per step; goal: <= 1.2x torch)", rows)


if __name__ == "__main__":
    main()
