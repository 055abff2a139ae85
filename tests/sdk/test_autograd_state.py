"""The client's mirror of autograd state stays what the server holds, through the corners:
.grad set to None, retained non-leaf grads, create_graph, detach sharing versions, requires_grad
flips, copies. Each scenario runs embedded and on a server and must observe the same."""

from __future__ import annotations

import gradd
import pytest


def values(t: object) -> object:
    return None if t is None else t.tolist()


def test_grad_none_then_backward(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    old = x.grad
    x.grad = None
    assert x.grad is None
    (x * 3).sum().backward()
    assert values(old) == [2.0, 4.0] and values(x.grad) == [3.0, 3.0] and x.grad is not old


def test_retained_grads_accumulate(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    z = (y * y).sum()
    z.backward(retain_graph=True)
    assert values(y.grad) == [4.0, 8.0] and y.retains_grad
    z.backward()
    assert values(y.grad) == [8.0, 16.0] and values(x.grad) == [16.0, 32.0]


def test_create_graph_double_backward(session: gradd.Session) -> None:
    x = session.tensor([2.0], requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    assert values(g) == [12.0] and g.requires_grad and g.grad_fn is not None
    g.sum().backward()  # d(3x^2)/dx = 6x accumulates into x.grad
    assert values(x.grad) == [24.0]


def test_create_graph_through_relu_then_a_second_backward(session: gradd.Session) -> None:
    w = session.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (w.relu() * w).sum().backward(create_graph=True)
    g = w.grad
    assert values(g) == [2.0, 0.0, 6.0] and g.requires_grad
    assert g.grad_fn.name() == "torch::autograd::CopyBackwards"
    g.sum().backward()  # PyTorch: adds d/dw sum(2w*[w>0]) = [2, 0, 2] in place
    assert values(w.grad) == [4.0, 0.0, 8.0] and w.grad.requires_grad


def test_detach_shares_the_version_counter(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    y = x * x  # saves x
    d = x.detach()
    d.add_(1)
    assert x._version == 1 and values(x) == [2.0, 3.0] and not d.requires_grad
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_requires_grad_flips_and_copies(session: gradd.Session) -> None:
    t = session.ones(2)
    t.requires_grad = True
    u = session.tensor(t, dtype=session.float64)  # a copy: a new leaf
    assert u.is_leaf and not u.requires_grad and u.dtype is session.float64
    (t * 2).sum().backward()
    assert values(t.grad) == [2.0, 2.0]
    t.requires_grad_(False)
    assert not (t * 2).requires_grad


def test_inplace_on_a_non_leaf_rebases_it(session: gradd.Session) -> None:
    w = session.tensor([1.0, 2.0], requires_grad=True)
    h = w * 1.0
    h.mul_(3)
    h += w
    assert h.grad_fn.name() == "AddBackward0" and h._version == 2
    names = [n.name() for n, _ in h.grad_fn.next_functions if n is not None]
    assert names == ["MulBackward0", "torch::autograd::AccumulateGrad"]
    h.sum().backward()
    assert values(w.grad) == [4.0, 4.0]


def test_in_place_through_views(session: gradd.Session) -> None:
    t = session.ones(3)
    t[0].mul_(3)
    t[1:].add_(1)
    assert values(t) == [3.0, 2.0, 2.0]
    w = session.tensor([2.0, 2.0, 2.0], requires_grad=True)
    d = w * 1
    first = d[0]
    d.mul_(w)
    assert first.item() == 4.0
    d.sum().backward()
    assert values(w.grad) == [4.0, 4.0, 4.0]
    b = w * 2
    b[1:].mul_(w[1:])  # CopySlices on b, as PyTorch
    assert b.grad_fn.name() == "torch::autograd::CopySlices"
    assert values(b) == [4.0, 8.0, 8.0]
    w.grad = None
    b.sum().backward()
    assert values(w.grad) == [2.0, 8.0, 8.0]  # 2w, and 4w where b was multiplied by w
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        w[1:].add_(1)  # raised at this line, before anything is sent


def test_assigning_a_tensor_to_grad(session: gradd.Session) -> None:
    p = session.ones(2, requires_grad=True)
    g = session.tensor([10.0, 20.0])
    p.grad = g
    assert p.grad is g and values(p.grad) == [10.0, 20.0]
    (p * 3).sum().backward()  # accumulates into the assigned tensor, in place, as PyTorch
    assert p.grad is g and values(g) == [13.0, 23.0]
    with pytest.raises(
        RuntimeError, match=r"assign a gradient of size '\[3\]' to a tensor of size '\[2\]'"
    ):
        p.grad = session.zeros(3)
    with pytest.raises(
        RuntimeError, match="with dtype 'double' to a tensor with grad_dtype 'Float'"
    ):
        p.grad = session.zeros(2, dtype=session.float64)
    with pytest.raises(TypeError, match="assigned grad expected to be a Tensor"):
        p.grad = [1.0, 2.0]
    assert values(p.grad) == [13.0, 23.0]  # nothing changed
    p.grad = None
    assert p.grad is None


def test_backward_with_inputs(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    w = session.tensor([3.0, 4.0], requires_grad=True)
    y = x * w
    (y * y).sum().backward(inputs=[y], retain_graph=True)
    assert values(y.grad) == [6.0, 16.0]  # 2y, on a non-leaf, without retain_grad
    assert x.grad is None and w.grad is None
    (y * y).sum().backward(inputs=[w])
    assert values(w.grad) == [6.0, 32.0] and x.grad is None  # 2y * x
    with pytest.raises(RuntimeError, match=r"`inputs` argument to `backward\(\)` cannot be empty"):
        (x * 2).sum().backward(inputs=[])


def test_composites_under_no_grad(session: gradd.Session) -> None:
    F = session.functional
    w = session.ones(3, 4, requires_grad=True)
    with session.no_grad():
        out = F.linear(session.ones(2, 4), w)
        v, i = out.max(dim=1)
    assert not out.requires_grad and not v.requires_grad and values(i) == [0, 0]
    assert values(out[:, 1:]) == [[4.0, 4.0], [4.0, 4.0]]


def test_detach_in_place(session: gradd.Session) -> None:
    w = session.tensor([1.0, 2.0], requires_grad=True)
    y = w * 3
    assert y.detach_() is y
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None
    assert (y + 1).tolist() == [4.0, 7.0] and (y * w).grad_fn is not None
