"""The article ("Automatic Differentiation in PyTorch", named in the README), in order, with
``torch.`` replaced by a gradd
session: embedded and on a real server. Numbers are PyTorch 2.13's for the same initial values
and data (hard-coded here so the suite runs without torch; test_article_vs_torch recomputes
them with torch where it is installed)."""

from __future__ import annotations

import sys
import traceback

import gradd
import numpy as np
import pytest
from gradd.engine.errors import LEAF_INPLACE

# PyTorch: torch.manual_seed(42); torch.randn(1) twice.
B0, W0 = 0.33669036626815796, 0.12880940735340118
# PyTorch: the gradients of the first backward (b, w) and the loss.
GRAD_B, GRAD_W, LOSS0 = -3.1124958992004395, -1.815643072128296, 2.7474865913391113
# PyTorch: b, w after the article's 200-epoch loop (lr = 0.1).
B200, W200 = 1.0522773265838623, 1.9127354621887207


def params(s: gradd.Session) -> tuple:
    """The article's Step 0 (``s`` may be torch itself)."""
    device = s.device if isinstance(s, gradd.Session) else "cpu"
    s.manual_seed(42)
    b = s.randn(1, requires_grad=True, dtype=s.float, device=device)
    w = s.randn(1, requires_grad=True, dtype=s.float, device=device)
    return b, w


def data(s: gradd.Session, article_data: tuple) -> tuple:
    x, y = article_data
    return s.from_numpy(x).float(), s.tensor(y).float()


def article_step(s: gradd.Session, x: object, y: object, b: object, w: object, lr: float):
    """One epoch of the article's loop (Steps 1 to 4); the loss."""
    yhat = b + w * x
    error = y - yhat
    loss = (error**2).mean()
    loss.backward()
    with s.no_grad():
        b -= lr * b.grad
        w -= lr * w.grad
    b.grad.zero_(), w.grad.zero_()
    return loss


def line_of(exc: BaseException) -> int:
    """The line of this file where ``exc`` was raised from (its innermost frame here)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == __file__]
    return frames[-1].lineno


@pytest.mark.cpu_only("the article's numbers: PyTorch's CPU random numbers")
def test_requires_grad(session: gradd.Session) -> None:
    b, w = params(session)
    assert isinstance(b, gradd.Tensor)
    assert b.requires_grad and b.is_leaf and b.grad_fn is None and b.grad is None
    assert b.shape == (1,) and b.dtype is gradd.float32
    assert b.item() == pytest.approx(B0, abs=0) and w.item() == pytest.approx(W0, abs=0)
    assert repr(b) == "tensor([0.3367], requires_grad=True)"


@pytest.mark.cpu_only("the article's numbers: PyTorch's CPU random numbers")
def test_backward_grad_accumulation_and_zero(session: gradd.Session, article_data: tuple) -> None:
    b, w = params(session)
    x_train_tensor, y_train_tensor = data(session, article_data)
    assert not x_train_tensor.requires_grad and x_train_tensor.shape == (80, 1)

    yhat = b + w * x_train_tensor
    error = y_train_tensor - yhat
    loss = (error**2).mean()
    assert [t.grad_fn.name() for t in (yhat, error, loss)] == [
        "AddBackward0",
        "SubBackward0",
        "MeanBackward0",
    ]
    assert loss.shape == () and loss.item() == pytest.approx(LOSS0, rel=1e-6)
    loss.backward()
    assert b.grad.item() == pytest.approx(GRAD_B, rel=1e-6)
    assert w.grad.item() == pytest.approx(GRAD_W, rel=1e-6)
    assert b.grad is b.grad  # one tensor, as in PyTorch

    # By default gradients accumulate.
    grad_b = b.grad
    loss = ((y_train_tensor - (b + w * x_train_tensor)) ** 2).mean()
    loss.backward()
    assert grad_b.item() == pytest.approx(2 * GRAD_B, rel=1e-6)
    assert b.grad is grad_b

    # zero_ after the update.
    b.grad.zero_(), w.grad.zero_()
    assert b.grad.tolist() == [0.0] and w.grad.tolist() == [0.0]


@pytest.mark.cpu_only("the article's numbers: PyTorch's CPU random numbers")
def test_update_without_no_grad_raises_on_that_line(
    session: gradd.Session, article_data: tuple
) -> None:
    b, w = params(session)
    x_train_tensor, y_train_tensor = data(session, article_data)
    loss = ((y_train_tensor - (b + w * x_train_tensor)) ** 2).mean()
    loss.backward()
    lr = 0.1
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad") as info:
        b -= lr * b.grad  # the article's "Attempt at Step 4"
    assert line_of(info.value) == sys._getframe().f_lineno - 1
    assert str(info.value) == LEAF_INPLACE
    assert isinstance(info.value, gradd.AutogradError)
    if not session.id.startswith("embedded"):
        assert isinstance(info.value, gradd.GraddError)
        assert info.value.code.name == "FAILED_PRECONDITION"
    # Nothing changed, and the session goes on.
    assert b.item() == pytest.approx(B0, abs=0)
    with session.no_grad():
        b -= lr * b.grad
        w -= lr * w.grad
    assert b.item() == pytest.approx(B0 - lr * GRAD_B, rel=1e-6)
    assert w.item() == pytest.approx(W0 - lr * GRAD_W, rel=1e-6)
    assert b.requires_grad and b.is_leaf


def train(s: gradd.Session, article_data: tuple, epochs: int = 200) -> tuple:
    """The article's whole loop, as printed."""
    x_train_tensor, y_train_tensor = data(s, article_data)
    b, w = params(s)
    lr = 0.1
    for _epoch in range(epochs):
        # Step 1 - Computes our model's predicted output - forward pass
        yhat = b + w * x_train_tensor
        # Step 2 - Computes the loss
        error = y_train_tensor - yhat
        loss = (error**2).mean()
        # Step 3 - Computes gradients for both "b" and "w" parameters
        loss.backward()
        # Step 4, for real
        with s.no_grad():
            b -= lr * b.grad
            w -= lr * w.grad
        b.grad.zero_(), w.grad.zero_()
    return b, w


@pytest.mark.cpu_only("the article's numbers: PyTorch's CPU random numbers")
def test_training_loop_gives_pytorchs_numbers(session: gradd.Session, article_data: tuple) -> None:
    b, w = train(session, article_data)
    assert b.item() == pytest.approx(B200, rel=1e-6)
    assert w.item() == pytest.approx(W200, rel=1e-6)
    assert repr(b) == "tensor([1.0523], requires_grad=True)"
    assert repr(w) == "tensor([1.9127], requires_grad=True)"


@pytest.mark.cpu_only("the article's numbers: PyTorch's CPU random numbers")
def test_article_vs_torch(session: gradd.Session, article_data: tuple) -> None:
    torch = pytest.importorskip("torch")
    tb, tw = train(torch, article_data)
    b, w = train(session, article_data)
    np.testing.assert_allclose(b.detach().numpy(), tb.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)


def structure(picture: object) -> tuple[list, list]:
    """A picture as (sorted (label, colour) boxes, sorted labelled edges): ids left out."""
    labels = {n.id: n.label for n in picture.nodes}
    boxes = sorted((n.label, n.fillcolor) for n in picture.nodes)
    edges = sorted((labels[a], labels[b]) for a, b in picture.edges)
    return boxes, edges


LEAF = "\n (1)"


def test_make_dot_of_yhat(session: gradd.Session, article_data: tuple) -> None:
    b, w = params(session)
    x_train_tensor, _ = data(session, article_data)
    yhat = b + w * x_train_tensor
    boxes, edges = structure(gradd.make_dot(yhat))
    assert boxes == [
        (LEAF, "lightblue"),  # b and w: the blue (1) boxes
        (LEAF, "lightblue"),
        ("AddBackward0", "darkolivegreen1"),  # green: where backward starts
        ("MulBackward0", "lightgray"),
    ]
    assert edges == [
        (LEAF, "AddBackward0"),
        (LEAF, "MulBackward0"),
        ("MulBackward0", "AddBackward0"),
    ]
    named = gradd.make_dot(yhat, params={"b": b, "w": w})
    assert sorted(n.label for n in named.nodes if n.fillcolor == "lightblue") == [
        "b\n (1)",
        "w\n (1)",
    ]
    source = named.source
    assert "AddBackward0" in source and "fillcolor=darkolivegreen1" in source and "->" in source


def test_make_dot_without_b(session: gradd.Session, article_data: tuple) -> None:
    x_train_tensor, _ = data(session, article_data)
    session.manual_seed(42)
    b_nograd = session.randn(1, requires_grad=False, dtype=session.float, device=session.device)
    w = session.randn(1, requires_grad=True, dtype=session.float, device=session.device)
    yhat = b_nograd + w * x_train_tensor
    boxes, edges = structure(gradd.make_dot(yhat))
    assert boxes == [
        (LEAF, "lightblue"),
        ("AddBackward0", "darkolivegreen1"),
        ("MulBackward0", "lightgray"),
    ]
    assert edges == [(LEAF, "MulBackward0"), ("MulBackward0", "AddBackward0")]


@pytest.mark.cpu_only("the article's numbers: PyTorch's CPU random numbers")
def test_control_flow(session: gradd.Session, article_data: tuple) -> None:
    x_train_tensor, y_train_tensor = data(session, article_data)
    session.manual_seed(42)
    b = session.randn(1, requires_grad=True, dtype=session.float, device=session.device)
    w = session.randn(1, requires_grad=True, dtype=session.float, device=session.device)

    yhat = b + w * x_train_tensor
    error = y_train_tensor - yhat
    loss = (error**2).mean()

    # this makes no sense!!
    if loss > 0:
        yhat2 = w * x_train_tensor
        error2 = y_train_tensor - yhat2

    # neither does this :-)
    loss += error2.mean()

    boxes, edges = structure(gradd.make_dot(loss))
    ops = sorted(label for label, colour in boxes if colour == "lightgray")
    assert ops == sorted(
        ["AddBackward0", "MeanBackward0", "MeanBackward0", "PowBackward0", "SubBackward0"]
        + ["SubBackward0", "MulBackward0", "MulBackward0"]
    )
    assert [label for label, colour in boxes if colour == "darkolivegreen1"] == ["AddBackward0"]
    assert sum(1 for _, colour in boxes if colour == "lightblue") == 2  # w's box is shared
    assert len(edges) == 11
    assert edges.count((LEAF, "MulBackward0")) == 2  # both branches reach w
    loss.backward()
    expected = LOSS0 + float(np.mean(article_data[1] - W0 * article_data[0]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert b.grad is not None and w.grad is not None


def test_render_needs_dot(session: gradd.Session, tmp_path: object) -> None:
    import shutil

    b, w = params(session)
    picture = gradd.make_dot(b + w * 2.0)
    if shutil.which("dot") is None:
        with pytest.raises(RuntimeError, match="dot"):
            picture.render(tmp_path / "yhat")
    else:
        assert picture.render(tmp_path / "yhat").read_text().startswith("<?xml")
