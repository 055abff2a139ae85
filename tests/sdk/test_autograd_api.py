"""``s.autograd.grad`` and ``s.autograd.backward``, embedded and on a server, with PyTorch's
numbers (recorded from torch 2.13) and errors."""

from __future__ import annotations

import gradd
import pytest


def values(t: object) -> object:
    return None if t is None else t.tolist()


def test_grad_leaves_every_dot_grad_as_it_was(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    w = session.tensor([3.0, -1.0], requires_grad=True)
    (x * w).sum().backward()
    before = values(x.grad), values(w.grad)
    (gx,) = session.autograd.grad((x * x * w).sum(), x)
    assert values(gx) == [6.0, -4.0]  # 2xw
    assert (values(x.grad), values(w.grad)) == before


def test_grad_with_grad_outputs_and_several_inputs(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    w = session.tensor([3.0, -1.0], requires_grad=True)
    y = x * w
    gx, gw = session.autograd.grad(y, [x, w], grad_outputs=session.tensor([1.0, 10.0]))
    assert values(gx) == [3.0, -10.0] and values(gw) == [1.0, 20.0]
    assert x.grad is None and w.grad is None


def test_grad_create_graph_gives_second_derivatives(session: gradd.Session) -> None:
    x = session.tensor([2.0], requires_grad=True)
    (d1,) = session.autograd.grad((x**3).sum(), x, create_graph=True)
    assert values(d1) == [12.0] and d1.requires_grad
    (d2,) = session.autograd.grad(d1.sum(), x)
    assert values(d2) == [12.0] and x.grad is None  # 6x


def test_grad_of_a_non_leaf(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    (gh,) = session.autograd.grad((h * h).sum(), h)
    assert values(gh) == [6.0, 12.0]


def test_grad_unused_inputs(session: gradd.Session) -> None:
    x = session.tensor([1.0], requires_grad=True)
    unused = session.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        session.autograd.grad((x * 2).sum(), [x, unused], retain_graph=True)
    assert unused.grad is None and x.grad is None
    gx, gu = session.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert values(gx) == [2.0] and gu is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        session.autograd.grad((x * 2).sum(), session.ones(1))


def test_backward_of_several_roots(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    a, b = (x * x).sum(), x * 3
    session.autograd.backward([a, b], [None, session.tensor([1.0, 2.0])])
    assert values(x.grad) == [5.0, 10.0]  # 2x + 3 * [1, 2]
    session.autograd.backward((x * 2).sum())
    assert values(x.grad) == [7.0, 12.0]
    with pytest.raises(RuntimeError, match="element 1 of tensors does not require grad"):
        session.autograd.backward([(x * 2).sum(), session.ones(())])
