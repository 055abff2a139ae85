"""Strides, contiguity and storage offsets against PyTorch: gradd tracks each tensor's layout by
the op table's rules (``engine/layout.py``), never by its array's, so the answers are the same
on the CPU, on a GPU and on a remote client."""

from __future__ import annotations

from typing import Any

import gradd.engine as ge
import numpy as np
import pytest
from gradd.engine import layout

torch = pytest.importorskip("torch")

from .engine_examples import (  # noqa: E402
    call,
    example_cases,
    instantiate,
    materialise,
    rng_for,
    tensor_outputs,
)
from .layout_programs import PROGRAMS, X  # noqa: E402
from .torch_reference import to_torch, torch_op  # noqa: E402


def both(values: np.ndarray = X) -> tuple[Any, Any]:
    return ge.tensor(values.copy()), torch.tensor(values.copy())


def same_layout(ours: Any, theirs: Any, what: str = "") -> None:
    assert tuple(ours.shape) == tuple(theirs.shape), what
    assert ours.stride() == theirs.stride(), what
    assert ours.is_contiguous() == theirs.is_contiguous(), what
    assert ours.storage_offset() == theirs.storage_offset(), what


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_layout_matches_torch(name: str) -> None:
    g, t = both()
    same_layout(PROGRAMS[name](g), PROGRAMS[name](t), name)


def _transposed_like(v: Any, lib: str) -> Any:
    """The same values laid out with the last two dims swapped in memory."""
    if lib == "torch":
        if isinstance(v, torch.Tensor) and v.ndim >= 2 and v.is_floating_point():
            return v.detach().mT.contiguous().mT.requires_grad_(v.requires_grad)
    elif isinstance(v, ge.Tensor) and v.ndim >= 2 and v.dtype.is_floating_point:
        with ge.no_grad():
            out = v.detach().mT.contiguous().mT.detach()
        return out.requires_grad_(v.requires_grad)
    if isinstance(v, (list, tuple)):
        return type(v)(_transposed_like(x, lib) for x in v)
    return v


LAYOUTS = ("contiguous", "transposed")
# torch's einsum is its decomposition (permutes, views, bmm) and its results are views of those;
# gradd's einsum is one op with a contiguous result (see test_reference's KNOWN).
CASES = [(n, i) for n, i in example_cases() if not n.startswith("einsum")]
# torch's take_along_dim without a dim views its input as 1-d, which a strided one refuses.
TORCH_REFUSES = {("take_along_dim", 2, "transposed")}
# torch's squeeze_ works in place, which it refuses on a leaf: the node matmul records.
CASES.remove(("squeeze_result", 0))


# torch propagates a channels-last memory format (an input or weight strided as (N, L, C) or
# (N, H, W, C)) through convolutions and pools; gradd's results of these ops are contiguous.
# Transposing the last two dims of a 3-d input or weight makes it channels-last.
CHANNELS_LAST = {
    ("adaptive_avg_pool1d", 0), ("adaptive_avg_pool1d", 2), ("avg_pool1d", 0),
    ("avg_pool1d", 2), ("max_pool1d", 0), ("max_pool1d", 2), ("conv1d", 0), ("conv1d", 1),
    ("conv1d", 2), ("convolution", 2), ("convolution_backward_input", 2),
    ("convolution_backward_weight", 2),
}  # fmt: skip
LAYOUT_CASES = [
    pytest.param(
        n, i, kind, id=f"{n}-{i}-{kind}",
        marks=pytest.mark.xfail(strict=True, reason="torch keeps channels-last; gradd does not")
        if kind == "transposed" and (n, i) in CHANNELS_LAST
        else (),
    )
    for kind in LAYOUTS
    for n, i in CASES
]  # fmt: skip


@pytest.mark.parametrize(("name", "i", "kind"), LAYOUT_CASES)
def test_every_example_lays_out_as_torch(name: str, i: int, kind: str) -> None:
    if (name, i, kind) in TORCH_REFUSES:
        pytest.skip("torch raises for this layout")
    d = ge.OP_TABLE[name]
    case = materialise(d, d.examples[i], rng_for(name, i))
    args, kwargs, _ = instantiate(case)
    mapping: dict[int, Any] = {}
    targs, tkwargs = to_torch(args, mapping), to_torch(kwargs, mapping)
    if kind == "transposed":
        args, targs = _transposed_like(args, "gradd"), _transposed_like(targs, "torch")
    try:
        out = tensor_outputs(call(d, args, kwargs))
    except Exception as exc:  # in place on a leaf's view, or a view of a strided tensor
        with pytest.raises(type(exc)):  # torch refuses it too
            torch_op(name)(*targs, **tkwargs)
        return
    with torch.random.fork_rng():
        tout = torch_op(name)(*targs, **tkwargs)
    touts = [tout] if isinstance(tout, torch.Tensor) else [x for x in tout if torch.is_tensor(x)]
    for k, (o, t) in enumerate(zip(out, touts)):
        same_layout(o, t, f"{name}[{i}] output {k}")


def test_stride_of_one_dim() -> None:
    g, t = both()
    for d in (0, 2, -1):
        assert g.transpose(0, 2).stride(d) == t.transpose(0, 2).stride(d)
    with pytest.raises(IndexError, match="Dimension out of range"):
        g.stride(3)
    assert ge.tensor(1.0).stride() == torch.tensor(1.0).stride() == ()


def test_view_of_a_non_viewable_tensor_is_torchs_error() -> None:
    g, t = both()
    with pytest.raises(RuntimeError) as theirs:
        t.transpose(1, 2).view(24)
    with pytest.raises(RuntimeError) as ours:
        g.transpose(1, 2).view(24)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.cpu_only("compares CPU tensors' type names (a GPU's are torch.cuda.*)")
def test_element_size_and_type_names() -> None:
    for dtype in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8"):
        g = ge.zeros(2, dtype=getattr(ge, dtype))
        t = torch.zeros(2, dtype=getattr(torch, dtype))
        assert g.element_size() == t.element_size()
        assert g.type() == t.type()
        assert g.type("torch.DoubleTensor").dtype.name == "float64"
    assert ge.zeros(2, dtype=ge.bool).type() == torch.zeros(2, dtype=torch.bool).type()


def test_pointwise_rule_sorts_dims_as_tensor_iterator() -> None:
    # A size-1 dim with an arbitrary stride, broadcast, and equal strides (ties by size).
    shape = (2, 1, 3)
    assert layout.pointwise(shape, [(shape, ((1, 7, 2), 0)), ((), None)]) == ((1, 6, 2), 0)
    assert layout.pointwise((3, 4), [((3, 4), ((1, 3), 0)), ((4,), None)]) == ((1, 3), 0)


MATMUL_SHAPES = [
    ((3,), (3, 4)),
    ((2, 3, 4), (4, 5)),
    ((2, 3, 4), (4,)),
    ((3,), (2, 3, 4)),
    ((5, 2), (3, 2, 4)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((2, 3, 4), (1, 4, 5)),
    ((1, 3, 4), (2, 4, 5)),
    ((1, 3, 4), (1, 4, 5)),
    ((2, 1, 3, 4), (1, 4, 5)),
    ((3, 4), (1, 4, 5)),
    ((4,), (1, 4, 5)),
    ((1, 1, 3, 4), (4,)),
]


@pytest.mark.parametrize(("a", "b"), MATMUL_SHAPES)
@pytest.mark.parametrize("grads", [(True, True), (True, False), (False, True)])
def test_matmul_records_torchs_decomposition(a: tuple, b: tuple, grads: tuple) -> None:
    from .test_reference import assert_close, same_graph

    rng = np.random.default_rng(0)
    va, vb = rng.standard_normal(a), rng.standard_normal(b)
    ga, gb = (ge.tensor(v, requires_grad=r) for v, r in zip((va, vb), grads))
    ta, tb = (torch.tensor(v, requires_grad=r) for v, r in zip((va, vb), grads))
    out, tout = ga @ gb, ta @ tb
    assert_close(out, tout, "matmul")
    same_layout(out, tout, "matmul")
    same_graph(out.grad_fn, tout.grad_fn, {id(ga): ta, id(gb): tb})
    out.sum().backward()
    tout.sum().backward()
    for g, t in ((ga, ta), (gb, tb)):
        if t.grad is not None:
            assert_close(g.grad, t.grad, "matmul gradient")
