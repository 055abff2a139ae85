"""Strides, contiguity and storage offsets against PyTorch: gradd tracks each tensor's layout by
the op table's rules (``engine/layout.py``), never by its array's, so the answers are the same
on the CPU, on a GPU and on a remote client."""

from __future__ import annotations

from collections.abc import Callable
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
from .torch_reference import to_torch, torch_op  # noqa: E402

X = np.arange(24.0).reshape(2, 3, 4)


def both(values: np.ndarray = X) -> tuple[Any, Any]:
    return ge.tensor(values.copy()), torch.tensor(values.copy())


def same_layout(ours: Any, theirs: Any, what: str = "") -> None:
    assert tuple(ours.shape) == tuple(theirs.shape), what
    assert ours.stride() == theirs.stride(), what
    assert ours.is_contiguous() == theirs.is_contiguous(), what
    assert ours.storage_offset() == theirs.storage_offset(), what


# Each program runs on a (2, 3, 4) tensor of either library.
PROGRAMS: dict[str, Callable[[Any], Any]] = {
    "transpose": lambda x: x.transpose(0, 2),
    "t": lambda x: x[0].t(),
    "mT": lambda x: x.mT,
    "permute": lambda x: x.permute(2, 0, 1),
    "expand": lambda x: x[:, :1].expand(2, 5, 4),
    "expand new dims": lambda x: x[0, 0].expand(3, 1, 4),
    "expand 0-d": lambda x: x[0, 0, 0].expand(1),
    "unsqueeze": lambda x: x.transpose(0, 1).unsqueeze(1),
    "unsqueeze last": lambda x: x.transpose(0, 1).unsqueeze(-1),
    "squeeze": lambda x: x[:, :1].transpose(0, 2).squeeze(),
    "squeeze dim": lambda x: x[:, :1].squeeze(1),
    "slice": lambda x: x[1:, ::2, 1:3],
    "select": lambda x: x[:, 1],
    "select negative": lambda x: x[-1, :, -2],
    "none index": lambda x: x[:, None, 1:],
    "empty slice": lambda x: x[:, 5:],
    "ellipsis": lambda x: x[..., 1],
    "diagonal": lambda x: x.diagonal(1, 1, 2),
    "diagonal negative": lambda x: x.diagonal(-1, 0, 2),
    "narrow": lambda x: x.narrow(2, 1, 2),
    "chunk": lambda x: x.chunk(2, 2)[1],
    "unbind": lambda x: x.unbind(1)[2],
    "split": lambda x: x.split([1, 3], 2)[1],
    "view": lambda x: x.view(6, 4),
    "view of a slice": lambda x: x[:, 1:].view(2, 8),
    "view of a transposed": lambda x: x.transpose(0, 1)[0].view(2, 2, 2),
    "reshape viewable": lambda x: x[:, :, ::2].reshape(6, 2),
    "reshape copies": lambda x: x.transpose(1, 2).reshape(2, 12),
    "flatten": lambda x: x.permute(1, 0, 2).flatten(1),
    "unflatten": lambda x: x.transpose(0, 1).unflatten(2, (2, 2)),
    "movedim": lambda x: x.movedim(0, 2),
    "swapaxes": lambda x: x.swapaxes(0, 1),
    "alias": lambda x: x[...],
    "pointwise of transposed": lambda x: x.transpose(1, 2).exp(),
    "pointwise of permuted": lambda x: x.permute(2, 0, 1) * 2,
    "pointwise pair agreeing": lambda x: x.transpose(0, 2) + x.transpose(0, 2),
    "pointwise pair disagreeing": lambda x: x.transpose(1, 2) + x.transpose(1, 2).contiguous(),
    "pointwise contiguous first": lambda x: x.transpose(1, 2).contiguous() + x.transpose(1, 2),
    "pointwise broadcast": lambda x: x.transpose(1, 2) + x[0, 0, :3],
    "pointwise broadcast row": lambda x: x[0].t() + x[0, :, :1].t(),
    "pointwise of a slice": lambda x: x[:, :, ::2].sin(),
    "pointwise of expanded": lambda x: x[:, :1].expand(2, 3, 4).neg(),
    "pointwise of a select": lambda x: x[:, 1].t().sigmoid(),
    "scalar": lambda x: 2 - x.transpose(0, 1),
    "clone": lambda x: x.permute(1, 2, 0).clone(),
    "clone of a slice": lambda x: x.transpose(0, 2)[::2].clone(),
    "contiguous": lambda x: x.transpose(0, 2).contiguous(),
    "contiguous of contiguous": lambda x: x.contiguous(),
    "to dtype": lambda x: x.transpose(0, 1).to(x.new_ones(()).float().dtype),
    "where": lambda x: (x.transpose(0, 1) > 3).float(),
    "zeros_like": lambda x: x.transpose(0, 2).new_zeros(4, 3, 2) + 0,
    "reduction": lambda x: x.transpose(0, 2).sum(1),
    "matmul": lambda x: x.transpose(1, 2) @ x,
    "softmax": lambda x: x.transpose(1, 2).softmax(-1),
    "chain": lambda x: (x.transpose(0, 2).exp()[1:].transpose(0, 1) * 3).sum(0),
}


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


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize(("name", "i"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
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
