"""Convolution speed vs PyTorch CPU eager (one thread), measured in the same run.

A small CNN step on a digits-sized batch (64 images of 1x8x8, float32): conv2d 1->16 3x3 pad 1,
relu, max_pool2d 2, conv2d 16->32 3x3, relu, flatten, linear 128->10, cross_entropy, forward and
backward. Goal (issue 10): gradd.engine within 1.5x of torch.
Run: ``.venv/bin/python benchmarks/bench_conv.py`` (``--quick``: fewer repeats).
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
from common import median_time, report, torch_or_none  # noqa: E402

STEPS = 20


def cnn_setup(lib, batch: int = 64):  # noqa: ANN001, ANN201
    rng = np.random.RandomState(0)
    x = lib.tensor(rng.rand(batch, 1, 8, 8).astype(np.float32))
    target = lib.tensor(rng.randint(0, 10, batch).astype(np.int64))
    shapes = [(16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (10, 128), (10,)]
    params = [
        lib.tensor((rng.randn(*s) * 0.1).astype(np.float32), requires_grad=True) for s in shapes
    ]
    return x, target, params


def cnn_steps(F, setup, steps: int = STEPS):  # noqa: ANN001, ANN201, N803
    """Forward and backward, ``steps`` times (the gradients accumulate: no update needed)."""
    x, target, (c1, b1, c2, b2, w, b) = setup
    for _ in range(steps):
        h = F.max_pool2d(F.relu(F.conv2d(x, c1, b1, padding=1)), 2)
        h = F.relu(F.conv2d(h, c2, b2))
        loss = F.cross_entropy(F.linear(h.flatten(1), w, b), target)
        loss.backward()
    return loss


def main() -> None:
    repeat = 3 if "--quick" in sys.argv else 7
    torch = torch_or_none()
    rows = {}
    if torch is not None:
        import torch.nn.functional as TF

        s = cnn_setup(torch)
        rows["torch"] = median_time(lambda: cnn_steps(TF, s), repeat=repeat) / STEPS
    s = cnn_setup(ge)
    rows["gradd.engine"] = median_time(lambda: cnn_steps(ge.functional, s), repeat=repeat) / STEPS
    report(
        "CNN step, digits batch 64x1x8x8, conv-relu-pool-conv-relu-linear (per step; "
        "goal: gradd.engine <= 1.5x torch)",
        rows,
    )


if __name__ == "__main__":
    main()
