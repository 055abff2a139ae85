"""``t[key] = value``, ``index_put_`` and in-place ops on views, embedded and on a server, against
PyTorch: values, gradients, grad_fn names and errors (one rule for both: the engine's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradd
import numpy as np
import pytest
import torch

X = np.arange(12.0).reshape(3, 4) / 7.0 - 0.5


def _run(m: Any, tensor: Callable, program: Callable) -> tuple:
    x = tensor(X.copy(), requires_grad=True)
    b = program(m, tensor, x.clone())
    (b * b).sum().backward()
    return np.asarray(b.tolist()), np.asarray(x.grad.tolist()), b.grad_fn.name()


def _torch_tensor(data: Any, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(data, dtype=torch.float64, requires_grad=requires_grad)


def _setitem(key: Callable, value: Callable) -> Callable:
    def program(m: Any, tensor: Callable, b: Any) -> Any:
        b[key(tensor)] = value(tensor)
        return b

    return program


PROGRAMS = {
    "slice scalar": _setitem(lambda t: slice(1, None), lambda t: 5.0),
    "int tensor": _setitem(lambda t: 0, lambda t: t([1.0, 2.0, 3.0, 4.0])),
    "broadcast row": _setitem(
        lambda t: (slice(None), slice(1, 3)), lambda t: t([[9.0], [8.0], [7.0]])
    ),
    "ellipsis none": _setitem(lambda t: (Ellipsis, 2), lambda t: -1.0),
    "list": _setitem(lambda t: [0, 2], lambda t: t([1.0, 2.0, 3.0, 4.0])),
    "index tensor": _setitem(lambda t: t([2, 0]).long(), lambda t: 3.0),
    "mask": _setitem(lambda t: t([True, False, True]).bool(), lambda t: 0.0),
    "column index": _setitem(lambda t: (slice(None), [1, 3]), lambda t: t([[1.0, 2.0]])),
}


def _iadd_columns(m: Any, tensor: Callable, b: Any) -> Any:
    b[:, [0, 1]] += 1
    return b


def _view_mul(m: Any, tensor: Callable, b: Any) -> Any:
    b[1:].mul_(tensor([[2.0], [3.0]]))
    return b


def _transpose_row(m: Any, tensor: Callable, b: Any) -> Any:
    b.t()[1].add_(2.0)
    return b


PROGRAMS.update(
    {"iadd columns": _iadd_columns, "view mul_": _view_mul, "transpose row": _transpose_row}
)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_setitem_matches_torch(session: gradd.Session, name: str) -> None:
    program = PROGRAMS[name]

    def gradd_tensor(data: Any, requires_grad: bool = False) -> Any:
        return session.tensor(np.asarray(data), requires_grad=requires_grad)

    def torch_program(m: Any, tensor: Callable, b: Any) -> Any:
        return program(m, _torch_ish, b)

    def _torch_ish(data: Any) -> torch.Tensor:
        return torch.from_numpy(np.asarray(data))  # float lists as float64, as gradd's

    ours = _run(session, gradd_tensor, program)
    theirs = _run(torch, _torch_tensor, torch_program)
    np.testing.assert_allclose(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1])
    assert ours[2] == theirs[2]


def test_setitem_under_no_grad_writes_through(session: gradd.Session) -> None:
    w = session.tensor(np.zeros((2, 3)), requires_grad=True)
    with session.no_grad():
        w[0] = 1.0
        w[1, [0, 2]] = session.tensor(np.array([5.0, 6.0]))
    assert w.tolist() == [[1.0, 1.0, 1.0], [5.0, 0.0, 6.0]]
    assert w.grad_fn is None and w._version == 2


def test_view_grad_fn_is_regenerated_from_the_base(session: gradd.Session) -> None:
    x = session.tensor(np.ones((2, 3)), requires_grad=True)
    b = x.clone()
    v = b[0]
    v.mul_(2)
    assert b.grad_fn.name() == "torch::autograd::CopySlices"
    names = [None if n is None else n.name() for n, _ in b.grad_fn.next_functions]
    assert names == ["CloneBackward0", None]  # the clone, and mul_'s scalar
    assert v.grad_fn.name() == "AsStridedBackward0"
    assert v.grad_fn.next_functions[0][0] is b.grad_fn
    assert v._version == b._version == 1
    v.sum().backward()
    assert x.grad.tolist() == [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]


BAD_CALLS = {
    "broadcast": (lambda m, z: z.add_(m.ones(2, 3)), "doesn't match the broadcast shape"),
    "size": (lambda m, z: z.add_(m.ones(4)), "must match the size of tensor b"),
    "cast": (lambda m, z: z.long().add_(1.5), "result type Float can't be cast"),
    "sqrt of long": (lambda m, z: z.long().sqrt_(), "result type Float can't be cast"),
    "value shape": (lambda m, z: z.__setitem__([0, 1], m.ones(3)), "shape mismatch"),
    "expand": (lambda m, z: z.__setitem__(slice(0, 2), m.ones(3)), "The expanded size"),
    "index range": (lambda m, z: z.__setitem__(5, 1.0), "index 5 is out of bounds"),
    "bad key": (lambda m, z: z.__setitem__("a", 1.0), None),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_in_place_calls_give_torchs_error(session: gradd.Session, name: str) -> None:
    call, message = BAD_CALLS[name]
    with pytest.raises(Exception) as theirs:
        call(torch, torch.zeros(3))
    with pytest.raises(type(theirs.value) if message else (TypeError, IndexError)) as ours:
        call(session, session.zeros(3))
    if message:
        assert message in str(theirs.value)
        assert message in str(ours.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: x.mul_(2), "a leaf Variable that requires grad"),
        (lambda x: x[0].mul_(2), "a view of a leaf Variable that requires grad"),
        (lambda x: x.__setitem__(0, 1.0), "a view of a leaf Variable that requires grad"),
        (lambda x: x.__setitem__([0], 1.0), "a leaf Variable that requires grad"),
    ],
)
def test_leaf_errors(session: gradd.Session, call: Callable, message: str) -> None:
    x = session.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=message):
        call(x)
    with pytest.raises(RuntimeError, match=message):
        call(torch.ones(3, requires_grad=True))


def test_index_put_accumulates(session: gradd.Session) -> None:
    x = session.tensor(np.zeros(4), requires_grad=True)
    v = session.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = x.clone()
    b.index_put_((session.tensor(np.array([1, 1, 3])),), v, accumulate=True)
    assert b.tolist() == [0.0, 3.0, 0.0, 3.0]
    assert b.grad_fn.name() == "IndexPutBackward0"
    (b * session.tensor(np.array([1.0, 2.0, 3.0, 4.0]))).sum().backward()
    assert v.grad.tolist() == [2.0, 2.0, 4.0]
    assert x.grad.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_saved_view_modified_through_the_base_fails(session: gradd.Session) -> None:
    x = session.tensor(np.ones(3), requires_grad=True)
    e = x.exp()
    v = e[0:2]
    v.mul_(2)  # exp saved its output, which this changes
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        e.sum().backward()


def test_assembling_a_tensor_from_pieces_that_need_grad(session: gradd.Session) -> None:
    def run(m: Any, tensor: Callable, zeros: Callable) -> tuple:
        w = tensor(np.array([1.0, 2.0]), requires_grad=True)
        b = zeros(3, 2)
        b[0] = w * 2  # b needs no grad: CopySlices starts its graph
        b[1:, 1] = w
        (b * b).sum().backward()
        names = [None if n is None else n.name() for n, _ in b.grad_fn.next_functions]
        return b.grad_fn.name(), names, w.grad.tolist(), b.tolist()

    ours = run(session, session.tensor, lambda *s: session.zeros(*s, dtype=session.float64))
    theirs = run(torch, _torch_tensor, lambda *s: torch.zeros(*s, dtype=torch.float64))
    assert ours == theirs


def test_a_view_made_before_a_write_to_its_base_is_regenerated(session: gradd.Session) -> None:
    def run(m: Any, tensor: Callable) -> tuple:
        x = tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
        b = x * 1
        w = b[0]
        b[1:].mul_(tensor(np.array([2.0, 3.0])))
        b.mul_(2)
        y = w * w
        y.backward()
        return w.grad_fn.name(), y.grad_fn.next_functions[0][0].name(), x.grad.tolist()

    assert run(session, session.tensor) == run(torch, _torch_tensor)
