"""Training epochs with the toolkit (``nn``, ``optim``) against PyTorch CPU eager (one thread).

One epoch of each example's model on scikit-learn's digits (1347 training images, uploaded once;
each step sends a mini-batch's indices): the digits CNN (``examples/digits_cnn.py``: Conv2d,
MaxPool2d, Linear, Adam, batch 32, 42 steps) and the digits MLP (``examples/digits_mlp.py``:
64-128-10, SGD, batch 64, 21 steps). Each step is ``zero_grad``, forward, loss, ``backward``,
``step``. PyTorch, gradd embedded and gradd remote (a gradd-server on loopback, one BLAS thread;
times include waiting until the server has applied the epoch), timed in turns so that the
shared machine's changing load weighs on each alike. Goal (issue 12): remote within
1.3x of PyTorch. The optimizer step alone is ``bench_optim.py``'s.

Run: ``.venv/bin/python benchmarks/bench_training.py`` (``--quick`` for fewer repeats;
``--profile`` adds the client's cProfile of a remote CNN epoch).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent / "examples")]  # the examples' models and data

import digits_cnn  # noqa: E402
import digits_mlp  # noqa: E402
import gradd  # noqa: E402
import numpy as np  # noqa: E402
from bench_sdk import start_server, synced  # noqa: E402
from common import interleaved_medians, report, torch_or_none  # noqa: E402

MODELS = {  # name -> (the example's model builder, images' shape, optimizer, its kwargs, batch)
    "CNN": (digits_cnn.build_model, (-1, 1, 8, 8), "Adam", {"lr": 3e-3}, 32),
    "MLP": (digits_mlp.build_model, (-1, 64), "SGD", {"lr": 0.1}, 64),
}


def setup(lib, name: str) -> tuple:  # noqa: ANN001 - lib is torch or a gradd session
    """(model, optimizer, loss function, images, labels, batch size) on ``lib``."""
    build, shape, optimizer, kwargs, batch = MODELS[name]
    x_train, _, y_train, _ = digits_mlp.load_data(0)
    lib.manual_seed(0)
    model = build(lib.nn)
    opt = getattr(lib.optim, optimizer)(model.parameters(), **kwargs)
    xs, ys = lib.tensor(x_train.reshape(shape)), lib.tensor(y_train)
    return model, opt, lib.nn.CrossEntropyLoss(), xs, ys, batch


def epoch(lib, state: tuple) -> None:  # noqa: ANN001
    """One pass over the training images in a fixed shuffled order, full batches only."""
    model, opt, loss_fn, xs, ys, batch = state
    order = np.random.default_rng(0).permutation(len(ys))
    for i in range(0, len(order) - batch + 1, batch):
        idx = lib.tensor(order[i : i + batch])
        opt.zero_grad()
        loss = loss_fn(model(xs[idx]), ys[idx])
        loss.backward()
        opt.step()


def profile_client(remote) -> None:  # noqa: ANN001
    """Where the client's time goes in a remote CNN epoch (the server's work overlaps it)."""
    import cProfile
    import pstats

    state = setup(remote, "CNN")
    epoch(remote, state)
    remote.synchronize()
    profile = cProfile.Profile()
    profile.enable()
    epoch(remote, state)
    remote.synchronize()
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 9")
    parser.add_argument("--profile", action="store_true", help="profile a remote CNN epoch")
    args = parser.parse_args()
    repeat = 3 if args.quick else 9
    torch = torch_or_none()
    tmp = Path(tempfile.mkdtemp(prefix="bench-training-"))
    proc, target = start_server(tmp)
    try:
        embedded, remote = gradd.connect(), gradd.connect(target)
        for name, (_, _, optimizer, _, batch) in MODELS.items():
            fns = {}
            if torch is not None:
                ts = setup(torch, name)
                fns["torch"] = lambda s=ts: epoch(torch, s)
            es, rs = setup(embedded, name), setup(remote, name)
            fns["gradd embedded"] = lambda s=es: epoch(embedded, s)
            fns["gradd remote"] = synced(remote, lambda s=rs: epoch(remote, s))
            rows = interleaved_medians(fns, repeat)
            report(
                f"digits {name} epoch, {optimizer}, batch {batch} (goal: remote <= 1.3x torch)",
                rows,
            )
        if args.profile:
            profile_client(remote)
        remote.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
