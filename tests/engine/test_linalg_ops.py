"""dot, mv, outer, ger, bmm, baddbmm, einsum: PyTorch's errors (class and exact message,
checked against torch where it is installed) and what the op table's examples do not reach."""

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


def _r(m: Any, *shape: int, dtype: str = "float64") -> Any:
    arr = np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)
    return ge.tensor(arr) if m is ge else torch.tensor(arr)


# (id, call in module m, exception class, exact message)
ERRORS: list[tuple[str, Callable[[Any], Any], type, str]] = [
    (
        "dot sizes",
        lambda m: m.dot(_r(m, 3), _r(m, 4)),
        RuntimeError,
        "inconsistent tensor size, expected tensor [3] and src [4] to have the same number of "
        "elements, but got 3 and 4 elements respectively",
    ),
    (
        "dot matrices",
        lambda m: m.dot(_r(m, 2, 2), _r(m, 2, 2)),
        RuntimeError,
        "1D tensors expected, but got 2D and 2D tensors",
    ),
    (
        "dot dtypes",
        lambda m: m.dot(_r(m, 3), _r(m, 3, dtype="float32")),
        RuntimeError,
        "dot : expected both vectors to have same dtype, but found Double and Float",
    ),
    (
        "mv sizes",
        lambda m: m.mv(_r(m, 3, 4), _r(m, 3)),
        RuntimeError,
        "size mismatch, got input (3), mat (3x4), vec (3)",
    ),
    (
        "mv vector",
        lambda m: m.mv(_r(m, 3), _r(m, 3)),
        RuntimeError,
        "vector + matrix @ vector expected, got 1, 1, 1",
    ),
    (
        "mv dtypes",
        lambda m: m.mv(_r(m, 3, 4), _r(m, 4, dtype="float32")),
        RuntimeError,
        "addmv input tensors must have the same dtype, but got Float, Double, and Float",
    ),
    (
        "outer matrix",
        lambda m: m.outer(_r(m, 3), _r(m, 2, 2)),
        RuntimeError,
        "outer: Expected 1-D argument vec2, but got 2-D",
    ),
    (
        "ger matrix",
        lambda m: m.ger(_r(m, 2, 2), _r(m, 3)),
        RuntimeError,
        "outer: Expected 1-D argument self, but got 2-D",
    ),
    (
        "bmm inner sizes",
        lambda m: m.bmm(_r(m, 2, 3, 4), _r(m, 2, 3, 4)),
        RuntimeError,
        "Expected size for first two dimensions of batch2 tensor to be: [2, 4] but got: [2, 3].",
    ),
    (
        "bmm batch sizes",
        lambda m: m.bmm(_r(m, 2, 3, 4), _r(m, 3, 4, 5)),
        RuntimeError,
        "Expected size for first two dimensions of batch2 tensor to be: [2, 4] but got: [3, 4].",
    ),
    (
        "bmm 2-d",
        lambda m: m.bmm(_r(m, 3, 4), _r(m, 4, 3)),
        RuntimeError,
        "batch1 must be a 3D tensor",
    ),
    (
        "bmm dtypes",
        lambda m: m.bmm(_r(m, 2, 3, 4), _r(m, 2, 4, 5, dtype="float32")),
        RuntimeError,
        "expected scalar type Double but found Float",
    ),
    (
        "baddbmm self",
        lambda m: m.baddbmm(_r(m, 3, 4), _r(m, 2, 3, 4), _r(m, 2, 4, 5)),
        RuntimeError,
        "The expanded size of the tensor (5) must match the existing size (4) at non-singleton "
        "dimension 2.  Target sizes: [2, 3, 5].  Tensor sizes: [3, 4]",
    ),
    (
        "baddbmm dtypes",
        lambda m: m.baddbmm(_r(m, 5, dtype="float32"), _r(m, 2, 3, 4), _r(m, 2, 4, 5)),
        RuntimeError,
        "Input dtypes must be the same, got: input float, batch1: double, batch2: double",
    ),
    (
        "dot dtypes before sizes",
        lambda m: m.dot(_r(m, 3), _r(m, 2, dtype="float32")),
        RuntimeError,
        "dot : expected both vectors to have same dtype, but found Double and Float",
    ),
    (
        "baddbmm self before batches",
        lambda m: m.baddbmm(_r(m, 2, 0, 2), _r(m, 2, 3), _r(m, 2, 0, 3)),
        RuntimeError,
        "The expanded size of the tensor (3) must match the existing size (2) at non-singleton "
        "dimension 2.  Target sizes: [2, 3, 3].  Tensor sizes: [2, 0, 2]",
    ),
]


@pytest.mark.parametrize(
    ("fn", "cls", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors_are_pytorchs(fn: Callable, cls: type, message: str) -> None:
    with pytest.raises(cls) as ours:
        fn(ge)
    assert str(ours.value) == message
    if torch is not None:
        with pytest.raises(cls) as theirs:
            fn(torch)
        assert str(theirs.value).split("\n")[0] == message


def test_baddbmm_with_beta_zero_ignores_self_nans() -> None:
    s = ge.tensor(np.full((2, 2, 2), np.nan))
    a = ge.tensor(np.ones((2, 2, 3)))
    b = ge.tensor(np.ones((2, 3, 2)))
    out = ge.baddbmm(s, a, b, beta=0, alpha=0.5)
    assert out.tolist() == np.full((2, 2, 2), 1.5).tolist()


def test_outer_promotes_as_torch() -> None:
    out = ge.outer(ge.tensor([1.0, 2.0], dtype=ge.float32), ge.tensor([1, 2]))
    assert out.dtype is ge.float32
    if torch is not None:
        ref = torch.outer(torch.tensor([1.0, 2.0]), torch.tensor([1, 2]))
        assert str(ref.dtype) == "torch.float32" and out.tolist() == ref.tolist()


EINSUM_CASES = [
    (name, i)
    for name in ("einsum", "einsum_pair", "einsum_single", "einsum_single_backward")
    for i in range(len(ge.OP_TABLE[name].examples))
]


@pytest.mark.skipif(torch is None, reason="compares with torch")
@pytest.mark.parametrize(("name", "i"), EINSUM_CASES, ids=[f"{n}-{i}" for n, i in EINSUM_CASES])
def test_einsum_values_and_gradients_are_torchs(name: str, i: int) -> None:
    # test_reference compares graphs first, and einsum's cannot match (see KNOWN there): the
    # values and gradients of every einsum example are compared here.
    from .engine_examples import call, instantiate, materialise, rng_for, tensor_outputs
    from .torch_reference import to_torch, torch_op

    d = ge.OP_TABLE[name]
    case = materialise(d, d.examples[i], rng_for(name, i))
    args, kwargs, leaves = instantiate(case)
    mapping: dict[int, Any] = {}
    targs, tkwargs = to_torch(args, mapping), to_torch(kwargs, mapping)
    out = tensor_outputs(call(d, args, kwargs))[0]
    tout = torch_op(name)(*targs, **tkwargs)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10)
    assert out.shape == tuple(tout.shape)
    v = np.random.default_rng(i).standard_normal(out.shape)
    ge.backward([out], [ge.tensor(v)])
    tout.backward(torch.tensor(v))
    for leaf in leaves:
        np.testing.assert_allclose(leaf.grad.numpy(), mapping[id(leaf)].grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize(
    ("equation", "shapes", "message"),
    [
        (
            "ij,jk->ik",
            [(3, 4), (3, 4)],
            "einsum(): subscript j has size 3 for operand 1 which "
            "does not broadcast with previously seen size 4",
        ),
        (
            "ij",
            [(3,)],
            "einsum(): the number of subscripts in the equation (2) does not match "
            "the number of dimensions (1) for operand 0 and no ellipsis was given",
        ),
        (
            "ij->k",
            [(3, 4)],
            "einsum(): output subscript k does not appear in the equation for any input operand",
        ),
        ("i,i", [(3,)], "einsum(): fewer operands were provided than specified in the equation"),
        ("i", [(3,), (3,)], "einsum(): more operands were provided than specified in the equation"),
        (
            "i.j",
            [(2, 3)],
            "einsum(): found '.' for operand 0 that is not part of any ellipsis",
        ),
        (
            "a...b...",
            [(2, 3, 4)],
            "einsum(): found '.' for operand 0 for which an ellipsis was already found",
        ),
        (
            "i->i.",
            [(2,)],
            "einsum(): found '.' for output that is not part of any ellipsis (...)",
        ),
        (
            "i-j",
            [(2,)],
            "einsum(): invalid subscript given at index 1 in the equation string, subscripts "
            "must be in [a-zA-Z]",
        ),
    ],
)
def test_einsum_errors_are_pytorchs(equation: str, shapes: list, message: str) -> None:
    with pytest.raises(RuntimeError) as ours:
        ge.einsum(equation, *[_r(ge, *s) for s in shapes])
    assert str(ours.value) == message
    if torch is not None:
        with pytest.raises(RuntimeError) as theirs:
            torch.einsum(equation, *[_r(torch, *s) for s in shapes])
        assert str(theirs.value) == message


def test_einsum_takes_a_list_of_operands() -> None:
    a, b = _r(ge, 2, 3), _r(ge, 3)
    assert np.allclose(ge.einsum("ij,j->i", [a, b]).numpy(), (a @ b).numpy())
