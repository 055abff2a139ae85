"""The linear regression of the article "Automatic Differentiation in PyTorch" (Daniel Voigt
Godoy; README.md names it and gives its data recipe), trained through gradd.

``torch.`` became a gradd session ``s.``: the same code gives PyTorch's numbers.

    python examples/linear_regression.py                      # embedded: the engine in-process
    python examples/linear_regression.py --target HOST:PORT   # on a gradd-server
    python examples/linear_regression.py --optimizer          # Step 4 by s.optim.SGD

Exits non-zero unless the final b and w match PyTorch's (200 epochs) or, for other epoch
counts, are close to the true b = 1, w = 2.
"""

from __future__ import annotations

import argparse
import sys

import gradd
import numpy as np

# PyTorch 2.13's b and w after the article's 200 epochs from torch.manual_seed(42).
TORCH_B, TORCH_W = 1.0522773265838623, 1.9127354621887207


def article_data() -> tuple[np.ndarray, np.ndarray]:
    """The book's data: y = 1 + 2x + noise, 80 shuffled training points of 100."""
    rng = np.random.RandomState(42)  # np.random.seed(42)'s stream
    x = rng.rand(100, 1)
    y = 1 + 2 * x + 0.1 * rng.randn(100, 1)
    idx = np.arange(100)
    rng.shuffle(idx)
    return x[idx[:80]], y[idx[:80]]


def train(s: gradd.Session, epochs: int, print_every: int = 0, optimizer: bool = False) -> tuple:
    """The article's Steps 0-4 in a loop; returns b and w. With ``optimizer``, Step 4 is the
    article's next form of it, ``optim.SGD`` (on a server: one command per step and one per
    zero_grad, whatever the number of parameters); PyTorch gives the same b and w."""
    x_train, y_train = article_data()
    x_train_tensor = s.from_numpy(x_train).float()
    y_train_tensor = s.from_numpy(y_train).float()

    # Step 0 - Initializes parameters "b" and "w" randomly
    s.manual_seed(42)
    b = s.randn(1, requires_grad=True, dtype=s.float, device=s.device)
    w = s.randn(1, requires_grad=True, dtype=s.float, device=s.device)
    lr = 0.1
    sgd = s.optim.SGD([b, w], lr=lr) if optimizer else None
    for epoch in range(epochs):
        # Step 1 - Computes our model's predicted output - forward pass
        yhat = b + w * x_train_tensor
        # Step 2 - Computes the loss (MSE over ALL points: batch gradient descent)
        error = y_train_tensor - yhat
        loss = (error**2).mean()
        # Step 3 - Computes gradients for both "b" and "w" parameters
        loss.backward()
        # Step 4 - Updates the parameters, outside the graph
        if sgd is not None:
            sgd.step()
            sgd.zero_grad()
        else:
            with s.no_grad():
                b -= lr * b.grad
                w -= lr * w.grad
            b.grad.zero_(), w.grad.zero_()
        if print_every and (epoch + 1) % print_every == 0:
            print(f"epoch {epoch + 1:4d}  loss {loss.item():.6f}")  # a wait, every N epochs
    return b, w


def check(b: float, w: float, epochs: int) -> str | None:
    """Why the result is wrong, or None."""
    if epochs == 200:
        if abs(b - TORCH_B) > 1e-5 * TORCH_B or abs(w - TORCH_W) > 1e-5 * TORCH_W:
            return f"b, w = {b}, {w}; PyTorch gives {TORCH_B}, {TORCH_W}"
    elif epochs >= 200 and (abs(b - 1) > 0.1 or abs(w - 2) > 0.15):
        return f"b, w = {b}, {w}: not near the true 1, 2"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", help="HOST:PORT of a gradd-server (default: embedded)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--print-every", type=int, default=0, help="print the loss every N")
    parser.add_argument("--optimizer", action="store_true", help="update with s.optim.SGD")
    args = parser.parse_args()
    with gradd.connect(args.target, label="linear_regression") as s:
        print(f"session {s.id} on {args.target or 'this process (embedded)'}")
        b, w = train(s, args.epochs, args.print_every, args.optimizer)
        print(b, w)
        b_final, w_final = b.item(), w.item()
    problem = check(b_final, w_final, args.epochs)
    if problem:
        print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    print(f"OK: b = {b_final:.4f}, w = {w_final:.4f} (true: 1, 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
