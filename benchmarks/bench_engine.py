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
from common import article_data, median_time, report, torch_or_none  # noqa: E402
from workloads import EPOCHS, STEPS, article_loop, mlp_setup, mlp_steps  # noqa: E402


def main() -> None:
    torch = torch_or_none()
    x, y = article_data()
    rows = {}
    if torch is not None:
        tx, ty = torch.tensor(x), torch.tensor(y)
        rows["torch"] = median_time(lambda: article_loop(torch, tx, ty))
    gx, gy = ge.tensor(x), ge.tensor(y)
    rows["gradd.engine"] = median_time(lambda: article_loop(ge, gx, gy))
    report(f"article loop, {EPOCHS} epochs (goal: gradd.engine <= 1.5x torch)", rows)

    rows = {}
    steps = STEPS
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
