"""Train an MLP on scikit-learn's bundled digits (8x8 images, no download) through gradd.

The model is `s.nn` (Linear, ReLU), trained by `s.optim.SGD` (on a server, one command per
step for all parameters). The images and labels are uploaded once and stay in the session; each
step sends only the indices of a mini-batch. The loss is watched live: on a server, a thread
follows the session's Watch stream (`session.watch()`) while the main thread trains; embedded,
the loop reports it.

    python examples/digits_mlp.py                        # embedded: the engine in-process
    python examples/digits_mlp.py --target HOST:PORT     # on a gradd-server
    python examples/digits_mlp.py --target HOST:PORT --png loss.png
"""

from __future__ import annotations

import argparse
import threading
import time

import gradd
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HIDDEN = 128


def load_data(seed: int) -> tuple[np.ndarray, ...]:
    """Train/test split (75/25, stratified), pixels standardized by the training set."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target.astype(np.int64), test_size=0.25, random_state=seed, stratify=digits.target
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-3
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


class LossWatch:
    """Prints the loss every `every` steps with the rate, and keeps the curve."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.started = threading.Event()  # set once the watcher is registered
        self._t0: float | None = None

    def record(self, step: int, loss: float, timestamp: float) -> None:
        """One step's loss."""
        self.steps.append(step)
        self.losses.append(loss)
        self._t0 = self._t0 or timestamp
        if step % self.every == 0:
            rate = (step - self.steps[0]) / max(timestamp - self._t0, 1e-9)
            print(f"[watch] step {step:4d}  loss {loss:.4f}  {rate:6.0f} steps/s", flush=True)

    def follow(self, events) -> None:
        """Consume a session's Watch stream until the session ends (run it on a thread)."""
        for event in events:
            if isinstance(event, gradd.WatchStarted):
                self.started.set()
            elif isinstance(event, gradd.StepEvent) and event.loss is not None:
                self.record(event.step, event.loss, event.timestamp)
            elif isinstance(event, gradd.SessionEnded):
                break


def build_model(nn):  # noqa: ANN001, ANN201 - nn is a session's (or torch's) nn
    """A 64-HIDDEN-10 MLP, initialized as PyTorch initializes it (the same draws, seeded)."""
    return nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def train(session: gradd.Session, args: argparse.Namespace, watch: LossWatch | None) -> float:
    """SGD on mini-batches; returns the test accuracy."""
    rng = np.random.default_rng(args.seed)
    x_train, x_test, y_train, y_test = load_data(args.seed)
    print(
        f"digits: {len(x_train)} training and {len(x_test)} test images; "
        f"MLP 64-{HIDDEN}-10, {args.epochs} epochs of batches of {args.batch}"
    )
    xs, ys = session.tensor(x_train), session.tensor(y_train)  # uploaded once
    model = build_model(session.nn)
    loss_fn = session.nn.CrossEntropyLoss()
    opt = session.optim.SGD(model.parameters(), lr=args.lr)  # on a server: one command a step
    step, start = 0, time.perf_counter()
    for _ in range(args.epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order) - args.batch + 1, args.batch):  # full batches only
            batch = session.tensor(order[i : i + args.batch])
            opt.zero_grad()
            loss = loss_fn(model(xs[batch]), ys[batch])
            loss.backward()
            opt.step()
            step += 1
            if watch is not None:  # embedded: no server to stream events, so report here
                watch.record(step, loss.item(), time.perf_counter())
    with session.no_grad():
        logits = model(session.tensor(x_test))
        correct = int((logits.argmax(dim=1) == session.tensor(y_test)).sum().item())
    seconds = time.perf_counter() - start
    print(f"trained {step} steps in {seconds:.1f} s ({step / seconds:.0f} steps/s)")
    accuracy = correct / len(y_test)
    print(f"test accuracy: {100 * accuracy:.1f}% ({correct}/{len(y_test)})")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", help="HOST:PORT of a gradd-server (default: embedded)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--print-every", type=int, default=100, help="watch line every N steps")
    parser.add_argument("--png", help="write the watched loss curve here (needs matplotlib)")
    args = parser.parse_args()

    watch = LossWatch(args.print_every)
    session = gradd.connect(args.target, seed=args.seed, label="digits_mlp")
    print(f"session {session.id} on {args.target or 'this process (embedded)'}")
    follower = None
    if args.target:
        stream = session.watch(steps_only=True)
        follower = threading.Thread(target=watch.follow, args=(stream,), daemon=True)
        follower.start()
        watch.started.wait(timeout=5)  # registered before the first step, so none is missed
    try:
        accuracy = train(session, args, None if follower else watch)
    finally:
        session.close()  # a server session's end also ends its Watch stream
    if follower is not None:
        follower.join(timeout=10)
    print(f"watched {len(watch.steps)} steps; loss {watch.losses[0]:.3f} -> {watch.losses[-1]:.3f}")
    if args.png:
        from gradd.cli_render import write_loss_curve

        write_loss_curve(args.png, watch.steps, watch.losses, "digits MLP through gradd")
        print(f"wrote {args.png}")
    if accuracy < 0.95:
        raise SystemExit(f"accuracy {accuracy:.3f} is below 0.95")


if __name__ == "__main__":
    main()
