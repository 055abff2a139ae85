"""Splits, reorders, repeats, the ``*_as`` ops and triangles/diagonals against PyTorch: what the
op table's examples do not cover (errors and their messages, every piece of a split, views,
edge sizes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

X = np.arange(24.0).reshape(4, 6) / 7
V = np.array([0.5, -1.0, 2.0])


def both(values: np.ndarray, grad: bool = False) -> tuple[Any, Any]:
    return (
        ge.tensor(values.copy(), requires_grad=grad),
        torch.tensor(values.copy(), requires_grad=grad),
    )


def same_error(fn: Callable[[Any, Any], Any], values: np.ndarray = X) -> None:
    """gradd raises PyTorch's exception class with PyTorch's message (first line)."""
    g, t = both(values)
    with pytest.raises(Exception) as theirs:
        fn(torch, t)
    with pytest.raises(type(theirs.value)) as ours:
        fn(ge, g)
    assert str(ours.value).split("\n")[0] == str(theirs.value).split("\n")[0]


def same_pieces(fn: Callable[[Any, Any], Any], values: np.ndarray = X) -> None:
    """Every piece: values, shapes, grad_fn names, a view of the input; and the gradient of a
    weighted sum of all pieces."""
    g, t = both(values, grad=True)
    ours, theirs = fn(ge, g), fn(torch, t)
    assert isinstance(ours, tuple) and len(ours) == len(theirs)
    weights = np.random.default_rng(0)
    total_g, total_t = None, None
    for o, p in zip(ours, theirs):
        assert o.shape == tuple(p.shape)
        np.testing.assert_array_equal(o.detach().numpy(), p.detach().numpy())
        assert o.grad_fn.name() == p.grad_fn.name()
        assert o._base is g and p._base is t
        w = weights.standard_normal(o.shape)
        sg, st = (o * ge.tensor(w)).sum(), (p * torch.tensor(w)).sum()
        total_g = sg if total_g is None else total_g + sg
        total_t = st if total_t is None else total_t + st
    total_g.backward()
    total_t.backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-12)


# -- splits -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.chunk(4, 1),  # 6 in 4 chunks: 3 pieces of 2
        lambda m, x: m.chunk(x, 5),  # 4 in 5 chunks: 4 pieces of 1
        lambda m, x: x.chunk(1, -1),
        lambda m, x: x.split(4, 1),  # 4 and 2
        lambda m, x: m.split(x, 10),  # one piece, still a SplitBackward0
        lambda m, x: x.split([0, 6, 0], 1),
        lambda m, x: m.split(x, (3, 1), dim=0),
        lambda m, x: x.unbind(),
        lambda m, x: m.unbind(x, -1),
    ],
)
def test_split_pieces_match_torch(fn: Callable) -> None:
    same_pieces(fn)


def test_split_of_an_empty_dim_gives_one_empty_piece() -> None:
    same_pieces(lambda m, x: x.split(0, 1), np.zeros((2, 0)))
    same_pieces(lambda m, x: x.chunk(3, 1), np.zeros((2, 0)))


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.split(-1, 1),
        lambda m, x: x.split(0, 1),
        lambda m, x: x.split([1, 4], 1),
        lambda m, x: x.split([-1, 7], 1),
        lambda m, x: x.split(2, 2),
        lambda m, x: x.chunk(0),
        lambda m, x: x.chunk(-2, 1),
        lambda m, x: x.unbind(2),
        lambda m, x: x.narrow(1, 7, 1),
        lambda m, x: x.narrow(1, -7, 1),
        lambda m, x: x.narrow(1, 2, 5),
        lambda m, x: x.narrow(1, 1, -1),
        lambda m, x: x.narrow(2, 0, 1),
    ],
)
def test_split_errors_are_torchs(fn: Callable) -> None:
    same_error(fn)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.split(1),
        lambda m, x: x.chunk(1),
        lambda m, x: x.unbind(),
        lambda m, x: x.narrow(0, 0, 1),
    ],
)
def test_splits_refuse_zero_dim_tensors_as_torch(fn: Callable) -> None:
    same_error(fn, np.array(1.5))


def test_narrow_is_a_slice_view() -> None:
    g, t = both(X, grad=True)
    for start, length in ((1, 2), (-2, 2), (6, 0), (0, 6)):
        o, p = g.narrow(1, start, length), t.narrow(1, start, length)
        np.testing.assert_array_equal(o.detach().numpy(), p.detach().numpy())
        assert o.grad_fn.name() == p.grad_fn.name() == "SliceBackward0"
        assert o._base is g


def test_pieces_share_memory_with_their_input_without_a_graph() -> None:
    x = ge.tensor(X.copy())
    a, b = x.split([2, 4], 1)
    b.zero_()  # as torch: a piece is a view, so the input sees the write
    assert x.numpy()[:, 2:].sum() == 0 and x.numpy()[:, :2].sum() == X[:, :2].sum()
    x.unbind(0)[1].fill_(3.0)
    assert (x.numpy()[1] == 3.0).all()


def test_in_place_on_a_piece_of_a_leaf_is_refused_as_torch() -> None:
    x = ge.tensor(X.copy(), requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x.chunk(2)[0].mul_(2)


# -- reorders ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.flip(0, 0),
        lambda m, x: x.flip((1, -1)),
        lambda m, x: x.flip(3),
        lambda m, x: x.roll((1, 2), 0),
        lambda m, x: x.roll((1, 2)),
        lambda m, x: m.roll(x, 1, 2),
        lambda m, x: x.movedim((0, 1), (0,)),
        lambda m, x: x.movedim((0, 0), (0, 1)),
        lambda m, x: x.movedim((0, 1), (1, 1)),
        lambda m, x: m.moveaxis(x, 2, 0),
        lambda m, x: x.swapaxes(0, 2),
        lambda m, x: m.swapdims(x, -3, 0),
    ],
)
def test_reorder_errors_are_torchs(fn: Callable) -> None:
    same_error(fn)


def test_movedim_with_an_int_and_a_tuple_is_a_type_error_as_torch() -> None:
    same_error(lambda m, x: x.movedim((0, 1), 0))


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.roll(7),
        lambda m, x: x.roll(-3, ()),  # no dims: the flattened tensor, as torch
        lambda m, x: m.roll(x, (1, -1), (0, 0)),
        lambda m, x: x.movedim(1, 0),
        lambda m, x: m.movedim(x, (0, 1), (1, 0)),
        lambda m, x: x.moveaxis(-1, -1),  # still a permute node
        lambda m, x: x.swapdims(1, 1),
        lambda m, x: x.flip(()),
    ],
)
def test_reorders_match_torch(fn: Callable) -> None:
    g, t = both(X, grad=True)
    o, p = fn(ge, g), fn(torch, t)
    np.testing.assert_array_equal(o.detach().numpy(), p.detach().numpy())
    assert o.grad_fn.name() == p.grad_fn.name()
    assert (o._base is g) == (p._base is t)  # movedim and swapaxes are views, roll/flip copies
    w = np.random.default_rng(1).standard_normal(o.shape)
    (o * ge.tensor(w)).sum().backward()
    (p * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy())


def test_flip_and_roll_of_a_zero_dim_tensor() -> None:
    g, t = both(np.array(2.5), grad=True)
    for fn in (lambda x: x.roll(3), lambda x: x.flip(())):
        o, p = fn(g), fn(t)
        assert o.shape == () and o.item() == p.item() and o.grad_fn.name() == p.grad_fn.name()


def same_result(fn: Callable[[Any, Any], Any], values: Any = X) -> None:
    """The same value, shape and grad_fn and the same gradient, or the same error."""
    g, t = both(np.asarray(values, dtype=np.float64), grad=True)
    try:
        p = fn(torch, t)
    except Exception as exc:
        with pytest.raises(type(exc)) as ours:
            fn(ge, g)
        assert str(ours.value).split("\n")[0] == str(exc).split("\n")[0]
        return
    o = fn(ge, g)
    assert o.shape == tuple(p.shape)
    np.testing.assert_array_equal(o.detach().numpy(), p.detach().numpy())
    assert o.grad_fn.name() == p.grad_fn.name()
    w = np.random.default_rng(2).standard_normal(o.shape)
    (o * ge.tensor(w)).sum().backward()
    (p * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy())


# -- repeats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.repeat(2),
        lambda m, x: x.repeat(2, -1),
        lambda m, x: x.repeat(0, 2),
        lambda m, x: x.repeat(),
        lambda m, x: x.repeat((2, 1, 2)),
        lambda m, x: x.tile(-1),
        lambda m, x: m.tile(x, (3,)),
        lambda m, x: x.tile(2, 1, 1),
        lambda m, x: x.repeat_interleave(-1),
        lambda m, x: x.repeat_interleave(2, dim=2),
        lambda m, x: m.repeat_interleave(x, 3, dim=1),
        lambda m, x: m.repeat_interleave(x, 2),
        lambda m, x: x.repeat_interleave(0, -2),
        lambda m, x: x.repeat_interleave(2, 0, output_size=8),
        lambda m, x: x.repeat_interleave(2, 0, output_size=7),
        lambda m, x: x.repeat_interleave(2, output_size=48),
    ],
)
def test_repeats_match_torch(fn: Callable) -> None:
    same_result(fn)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.repeat(2, 3),
        lambda m, x: x.tile(()),
        lambda m, x: m.tile(x, (2,)),
        lambda m, x: x.repeat_interleave(2),
        lambda m, x: x.repeat_interleave(2, dim=0),
    ],
)
def test_repeats_of_a_zero_dim_tensor_match_torch(fn: Callable) -> None:
    same_result(fn, 1.5)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.repeat(2**61, 1),
        lambda m, x: x.tile(2**62),
        lambda m, x: x.repeat_interleave(2**62),
        lambda m, x: x.repeat_interleave(2**62, 1),
    ],
)
def test_repeats_that_overflow_are_refused_as_torch(fn: Callable) -> None:
    same_error(fn, np.ones((2, 3)))


# -- the *_as forms, broadcast_to and unflatten -------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.unflatten(1, (2, 2)),
        lambda m, x: x.unflatten(-1, (4, 2)),
        lambda m, x: x.unflatten(1, ()),
        lambda m, x: x.unflatten(1, (-1, -1)),
        lambda m, x: x.unflatten(1, (4, -1)),
        lambda m, x: x.unflatten(2, (1, 6)),
        lambda m, x: m.unflatten(x, -2, (2, 1, -1)),
        lambda m, x: x.unflatten(1, [6]),
        lambda m, x: x.view_as(m.zeros(3)),
        lambda m, x: x.view_as(m.zeros(3, 8)),
        lambda m, x: x.reshape_as(m.zeros(24)),
        lambda m, x: x.reshape_as(m.zeros(5)),
        lambda m, x: x.expand_as(m.zeros(3)),
        lambda m, x: x.expand_as(m.zeros(2, 4, 6)),
        lambda m, x: x.expand_as(m.zeros(4, 5)),
        lambda m, x: m.broadcast_to(x, (2, 4, 6)),
        lambda m, x: x.broadcast_to((4, 5)),
        lambda m, x: x.broadcast_to((-1, 6)),
        lambda m, x: x.broadcast_to((6,)),
    ],
)
def test_as_ops_match_torch(fn: Callable) -> None:
    same_result(fn)


def test_unflatten_of_a_zero_dim_tensor_is_refused_as_torch() -> None:
    same_error(lambda m, x: x.unflatten(0, (1,)), np.array(1.0))


# -- triangles and diagonals --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.triu(2),
        lambda m, x: m.tril(x, -7),
        lambda m, x: m.triu(x[0]),
        lambda m, x: x[0].tril(),
        lambda m, x: x.diagonal(9),
        lambda m, x: x.diagonal(0, 1, 1),
        lambda m, x: x.diagonal(0, 0, -2),
        lambda m, x: x.diagonal(0, -1, 1),
        lambda m, x: x.diagonal(0, 0, 2),
        lambda m, x: x[0].diagonal(),
        lambda m, x: m.diagonal(x, -1, 1, 0),
        lambda m, x: x.diag(9),
        lambda m, x: x.diag(-2),
        lambda m, x: x[0].diag(-2),
        lambda m, x: x.reshape(2, 2, 6).diag(),
        lambda m, x: x[0, 0].diag(),
        lambda m, x: m.trace(x),
        lambda m, x: x.reshape(2, 2, 6).trace(),
        lambda m, x: x[0].trace(),
        lambda m, x: x.reshape(6, 4).trace(),
    ],
)
def test_triangles_and_diagonals_match_torch(fn: Callable) -> None:
    same_result(fn)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: x.long().triu(),
        lambda m, x: (x > 1).tril(1),
        lambda m, x: (x > 1).diagonal(1),
        lambda m, x: x.long().diag(),
        lambda m, x: (x > 1)[0].diag(),
        lambda m, x: x.long().trace(),
        lambda m, x: (x > 1).trace(),
    ],
)
def test_triangles_and_diagonals_of_ints_and_bools(fn: Callable) -> None:
    g, t = both(X * 3)
    try:
        p = fn(torch, t)
    except Exception as exc:
        with pytest.raises(type(exc), match=str(exc)):
            fn(ge, g)
        return
    o = fn(ge, g)
    assert o.dtype.name == str(p.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(o.numpy(), p.numpy())


def test_diagonal_is_a_writable_view() -> None:
    g, t = both(X)
    g.diagonal(1).fill_(-1.0)
    t.diagonal(1).fill_(-1.0)
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    assert g.diagonal()._base is g
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        ge.tensor(X, requires_grad=True).diagonal().mul_(2)


@pytest.mark.xfail(
    strict=True,
    reason="too many positional arguments is Python's TypeError message in gradd, for every op",
)
def test_output_size_is_keyword_only_with_torchs_message() -> None:
    same_error(lambda m, x: x.repeat_interleave(2, 0, 8))
