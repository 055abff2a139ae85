"""gather, scatter, scatter_add, index_select, masked_fill, masked_select, take_along_dim:
PyTorch's errors (class and exact message, checked against torch where it is installed) and
the edge cases the op table's examples do not reach."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradd.engine as ge
import numpy as np
import pytest

try:
    import torch
except ImportError:  # the error table still runs against the recorded messages
    torch = None


def _t(m: Any, values: Any, dtype: str | None = None) -> Any:
    arr = np.asarray(values)
    if dtype is not None:
        arr = arr.astype(dtype)
    return ge.tensor(arr) if m is ge else torch.tensor(arr)


def _x(m: Any) -> Any:
    return _t(m, np.arange(12.0).reshape(3, 4))


def _long(m: Any, *shape: int) -> Any:
    return _t(m, np.zeros(shape, dtype=np.int64))


# (id, call in module m, exception class, exact message)
ERRORS: list[tuple[str, Callable[[Any], Any], type, str]] = [
    (
        "gather index too large",
        lambda m: m.gather(_x(m), 0, _t(m, [[5, 0, 0, 0]])),
        RuntimeError,
        "index 5 is out of bounds for dimension 0 with size 3",
    ),
    (
        "gather negative index",
        lambda m: m.gather(_x(m), 1, _t(m, [[0, -1]])),
        RuntimeError,
        "index -1 is out of bounds for dimension 1 with size 4",
    ),
    (
        "gather dim out of range",
        lambda m: m.gather(_x(m), 2, _long(m, 3, 4)),
        IndexError,
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)",
    ),
    (
        "gather index dims",
        lambda m: m.gather(_x(m), 0, _long(m, 2)),
        RuntimeError,
        "Index tensor must have the same number of dimensions as input tensor",
    ),
    (
        "gather index larger than self",
        lambda m: m.gather(_x(m), 0, _long(m, 2, 5)),
        RuntimeError,
        "Size does not match at dimension 1 expected index [2, 5] to be no larger than self "
        "[3, 4] apart from dimension 0",
    ),
    (
        "gather float index",
        lambda m: m.gather(_x(m), 0, _t(m, [[0.0, 1.0]])),
        RuntimeError,
        "gather(): Expected dtype int32/int64 for index",
    ),
    (
        "scatter index too large",
        lambda m: m.scatter(_x(m), 0, _t(m, [[3, 0, 0, 0]]), _t(m, [[1.0, 2.0, 3.0, 4.0]])),
        RuntimeError,
        "index 3 is out of bounds for dimension 0 with size 3",
    ),
    (
        "scatter src smaller than index",
        lambda m: m.scatter(_x(m), 0, _long(m, 2, 4), _t(m, [[1.0, 2.0, 3.0, 4.0]])),
        RuntimeError,
        "Expected index [2, 4] to be no larger than self [3, 4] apart from dimension 0 and to "
        "be no larger size than src [1, 4]",
    ),
    (
        "scatter value index larger than self",
        lambda m: m.scatter(_x(m), 0, _long(m, 2, 5), 2.0),
        RuntimeError,
        "Expected index [2, 5] to be no larger than self [3, 4] apart from dimension 0",
    ),
    (
        "scatter src dims",
        lambda m: m.scatter(_x(m), 0, _long(m, 2, 4), _t(m, np.ones((2, 4, 2)))),
        RuntimeError,
        "Index tensor must have the same number of dimensions as src tensor",
    ),
    (
        "scatter src dtype",
        lambda m: m.scatter(_x(m), 0, _long(m, 2, 4), _t(m, np.ones((2, 4)), "float32")),
        RuntimeError,
        "scatter(): Expected self.dtype to be equal to src.dtype",
    ),
    (
        "scatter float index",
        lambda m: m.scatter(_x(m), 0, _t(m, [[0.0]]), 2.0),
        RuntimeError,
        "scatter(): Expected dtype int32/int64 for index",
    ),
    (
        "scatter_add index too large",
        lambda m: m.scatter_add(_x(m), 1, _t(m, [[4], [0], [0]]), _t(m, np.ones((3, 1)))),
        RuntimeError,
        "index 4 is out of bounds for dimension 1 with size 4",
    ),
    (
        "scatter_add src smaller than index",
        lambda m: m.scatter_add(_x(m), 0, _long(m, 2, 4), _t(m, np.ones((1, 4)))),
        RuntimeError,
        "Expected index [2, 4] to be no larger than self [3, 4] apart from dimension 0 and to "
        "be no larger size than src [1, 4]",
    ),
    (
        "index_select index too large",
        lambda m: m.index_select(_x(m), 1, _t(m, [0, 4])),
        RuntimeError,
        "INDICES element is out of DATA bounds, id=4 axis_dim=4",
    ),
    (
        "index_select negative index",
        lambda m: m.index_select(_x(m), 1, _t(m, [-1])),
        RuntimeError,
        "INDICES element is out of DATA bounds, id=-1 axis_dim=4",
    ),
    (
        "index_select index out of dim 0",
        lambda m: m.index_select(_x(m), -2, _t(m, [0, 3])),
        IndexError,
        "index out of range in self",
    ),
    (
        "index_select 2-d index",
        lambda m: m.index_select(_x(m), 1, _t(m, [[0]])),
        IndexError,
        "index_select(): Index is supposed to be a vector",
    ),
    (
        "index_select float index",
        lambda m: m.index_select(_x(m), 1, _t(m, [0.0])),
        RuntimeError,
        "index_select(): Expected dtype int32 or int64 for index",
    ),
    (
        "index_select dim out of range",
        lambda m: m.index_select(_x(m), -3, _t(m, [0])),
        IndexError,
        "Dimension out of range (expected to be in range of [-2, 1], but got -3)",
    ),
    (
        "masked_fill long mask",
        lambda m: _x(m).masked_fill(_t(m, [1, 0, 1, 0]), 1.0),
        RuntimeError,
        "masked_fill_ only supports boolean masks, but got mask with dtype long int",
    ),
    (
        "masked_fill mask shape",
        lambda m: _x(m).masked_fill(_t(m, [True, False]), 1.0),
        RuntimeError,
        "The size of tensor a (2) must match the size of tensor b (4) at non-singleton dimension 1",
    ),
    (
        "masked_fill 1-d value",
        lambda m: _x(m).masked_fill(_t(m, [True] * 4), _t(m, [1.0, 2.0])),
        RuntimeError,
        "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with 1 "
        "dimension(s).",
    ),
    (
        "masked_select mask shape",
        lambda m: m.masked_select(_x(m), _t(m, [True, False])),
        RuntimeError,
        "The size of tensor a (2) must match the size of tensor b (4) at non-singleton dimension 1",
    ),
    (
        "masked_select long mask",
        lambda m: _x(m).masked_select(_t(m, [1, 0, 1, 0])),
        RuntimeError,
        "masked_select: expected BoolTensor for mask",
    ),
    (
        "take_along_dim dims",
        lambda m: m.take_along_dim(_x(m), _t(m, [1]), 1),
        RuntimeError,
        "torch.take_along_dim(): input and indices should have the same number of dimensions, "
        "but got 2 dimensions for input, and 1 dimensions for indices",
    ),
    (
        "take_along_dim float indices",
        lambda m: m.take_along_dim(_x(m), _t(m, [[0.0]]), 1),
        RuntimeError,
        "torch.take_along_dim(): dtype of indices should be Long but got Double",
    ),
    (
        "take_along_dim broadcast",
        lambda m: m.take_along_dim(_x(m), _long(m, 2, 2), 1),
        RuntimeError,
        "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0",
    ),
    (
        "take_along_dim flat index too large",
        lambda m: m.take_along_dim(_x(m), _t(m, [12])),
        RuntimeError,
        "index 12 is out of bounds for dimension 0 with size 12",
    ),
    (
        "index_select index out of dim 2",
        lambda m: m.index_select(_t(m, np.zeros((2, 3, 4))), 2, _t(m, [4])),
        IndexError,
        "index out of range in self",
    ),
    (
        "index_select of a scalar",
        lambda m: m.index_select(_t(m, np.float64(2.0)), 0, _t(m, [0, 0])),
        RuntimeError,
        "index_select(): Index to scalar can have only 1 value, got 2 value(s)",
    ),
    (
        "take_along_dim of a scalar",
        lambda m: m.take_along_dim(_t(m, np.float64(2.0)), _t(m, 0), -1),
        IndexError,
        "Dimension specified as 0 but tensor has no dimensions",
    ),
]


# Errors found in the index values: checked on the CPU only (a GPU would have to sync).
RANGE = ("out of bounds", "out of DATA bounds", "out of range in self")
CPU_ONLY = pytest.mark.cpu_only("index values are checked on the CPU only (a GPU would sync)")


@pytest.mark.parametrize(
    ("fn", "cls", "message"),
    [
        pytest.param(*e[1:], marks=CPU_ONLY) if any(r in e[3] for r in RANGE) else e[1:]
        for e in ERRORS
    ],
    ids=[e[0] for e in ERRORS],
)
def test_errors_are_pytorchs(fn: Callable, cls: type, message: str) -> None:
    with pytest.raises(cls) as ours:
        fn(ge)
    assert str(ours.value) == message
    if torch is not None:
        with pytest.raises(cls) as theirs:
            fn(torch)
        assert str(theirs.value).split("\n")[0] == message


@CPU_ONLY
def test_take_along_dim_checks_the_range_torch_reads_past() -> None:
    # torch 2.13's CPU take_along_dim does not check its gathered index (it reads memory past
    # the dim); gradd's gather does.
    with pytest.raises(RuntimeError, match="index 9 is out of bounds for dimension 1 with size 4"):
        ge.take_along_dim(_x(ge), _t(ge, [[9]]), 1)


def test_scatter_add_of_integers_is_exact() -> None:
    # int64 adds as uint64 through atomicAdd-friendly add.at: values beyond 2**53 stay exact.
    big = 2**60 + 1
    out = ge.tensor(np.array([big, 0, -5], dtype=np.int64)).scatter_add(
        0, ge.tensor([0, 0, 2, 2]), ge.tensor(np.array([3, -7, 1, 1], dtype=np.int64))
    )
    assert out.dtype is ge.int64
    assert out.tolist() == [big - 4, 0, -3]


def test_scatter_add_of_bools_is_a_logical_or() -> None:
    out = ge.tensor([False, True, False]).scatter_add(0, ge.tensor([0, 0]), ge.tensor([True, True]))
    assert out.tolist() == [True, True, False]
    if torch is not None:
        ref = torch.tensor([False, True, False]).scatter_add(
            0, torch.tensor([0, 0]), torch.tensor([True, True])
        )
        assert out.tolist() == ref.tolist()


def test_scatter_takes_value_by_keyword_and_refuses_both() -> None:
    x = ge.zeros(2, 3)
    out = ge.scatter(x, 1, ge.tensor([[2], [0]]), value=4.0)
    assert out.tolist() == [[0.0, 0.0, 4.0], [4.0, 0.0, 0.0]]
    assert x.scatter(1, ge.tensor([[1]]), 2.0).tolist() == [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]
    with pytest.raises(TypeError, match="exactly one of src"):
        ge.scatter(x, 1, ge.tensor([[1]]), ge.ones(1, 1), value=2.0)


def test_scatter_value_on_an_integer_tensor_truncates_as_torch() -> None:
    x = ge.tensor([[1, 2], [3, 4]])
    out = x.scatter(0, ge.tensor([[1, 0]]), 2.7)
    assert out.dtype is ge.int64 and out.tolist() == [[1, 2], [2, 4]]
    if torch is not None:
        ref = torch.tensor([[1, 2], [3, 4]]).scatter(0, torch.tensor([[1, 0]]), 2.7)
        assert out.tolist() == ref.tolist()


def test_masked_fill_value_tensor_gets_its_gradient() -> None:
    x = ge.tensor(np.ones((2, 3)), requires_grad=True)
    v = ge.tensor(np.float64(2.0), requires_grad=True)
    mask = ge.tensor([[True], [False]])
    out = x.masked_fill(mask, v)
    assert out.grad_fn.name() == "MaskedFillBackward1"
    out.backward(ge.tensor(np.arange(6.0).reshape(2, 3)))
    assert v.grad.tolist() == 0.0 + 1.0 + 2.0
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [3.0, 4.0, 5.0]]


def test_masked_fill_keeps_self_dtype() -> None:
    x = ge.tensor([1, 2, 3])
    out = x.masked_fill(ge.tensor([True, False, True]), 2.5)
    assert out.dtype is ge.int64 and out.tolist() == [2, 2, 2]


def test_masked_select_of_nothing_and_of_a_broadcast_self() -> None:
    x = ge.tensor(np.arange(3.0), requires_grad=True)
    none = x.masked_select(ge.tensor([False, False, False]))
    assert none.shape == (0,)
    out = x.masked_select(ge.tensor([[True], [False], [True]]))  # (3,1) mask: self broadcasts
    assert out.tolist() == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    out.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_gather_of_scalars() -> None:
    x = ge.tensor(np.float64(5.0), requires_grad=True)
    out = x.gather(0, ge.tensor(0))
    assert out.shape == () and out.item() == 5.0
    out.backward()
    assert x.grad.item() == 1.0


def test_gather_double_backward_records_scatter_add_as_torch() -> None:
    x = ge.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    idx = ge.tensor([[0, 0, 2]])
    g = ge.ones(1, 3, dtype=ge.float64, requires_grad=True)
    (gx,) = ge.grad(x.gather(1, idx), x, g, create_graph=True)
    assert gx.grad_fn.name() == "ScatterAddBackward0"
    assert gx.tolist() == [[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, e: m.gather(x, 0, e),
        lambda m, x, e: m.scatter(x, 1, e, 2.0),
        lambda m, x, e: m.scatter_add(x, 0, e, _t(m, np.ones((2, 2)))),
    ],
    ids=["gather", "scatter", "scatter_add"],
)
def test_an_empty_index_is_not_checked_as_torch(call: Callable) -> None:
    # PyTorch returns early for an index without elements: no dims or sizes are compared.
    x = np.arange(6.0).reshape(2, 3)
    out = call(ge, _t(ge, x), _long(ge, 0))
    expected = (0,) if out.shape == (0,) else x.shape
    assert out.shape == expected
    if torch is not None:
        ref = call(torch, _t(torch, x), _long(torch, 0))
        assert tuple(ref.shape) == out.shape and np.array_equal(ref.numpy(), out.numpy())


def test_index_select_of_a_scalar_is_a_scalar() -> None:
    x = ge.tensor(np.float64(3.0), requires_grad=True)
    out = ge.index_select(x, 0, ge.tensor([0]))
    assert out.shape == () and out.item() == 3.0
    out.backward()
    assert x.grad.item() == 1.0
