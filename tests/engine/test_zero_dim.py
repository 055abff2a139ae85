"""Every op that takes a ``dim`` accepts dims in [-1, 0] on a 0-d tensor, as PyTorch does
(``loss.sum(dim=0)``, ``loss.mean(-1)``): same values, dtypes, grad_fn names and gradients, with
and without keepdim; any other dim is PyTorch's IndexError."""

from __future__ import annotations

from typing import Any

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from .engine_examples import DIM_EXTRA_ARGS, dim_ops  # noqa: E402
from .torch_reference import torch_op  # noqa: E402

EXTRA_ARGS = DIM_EXTRA_ARGS


def takes_keepdim(name: str) -> bool:
    return any(p.name == "keepdim" for p in ge.OPS[name].params)


def tensors(r: Any) -> list:
    return [r] if not isinstance(r, tuple) else [x for x in r if hasattr(x, "shape")]


CASES = [
    (n, dim, keep)
    for n in dim_ops()
    for dim in (0, -1)
    for keep in ((False, True) if takes_keepdim(n) else (None,))
]


def test_every_dim_op_is_covered() -> None:
    assert {"sum", "mean", "max", "min", "softmax", "log_softmax", "argmax"} <= set(dim_ops())


@pytest.mark.parametrize(("name", "dim", "keepdim"), CASES)
def test_dim_on_0d_matches_torch(name: str, dim: int, keepdim: bool | None) -> None:
    kw = {} if keepdim is None else {"keepdim": keepdim}
    x = ge.tensor(np.array(1.5), requires_grad=True)
    tx = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    extra = EXTRA_ARGS.get(name, ())
    try:
        theirs = tensors(torch_op(name)(tx, *extra, dim=dim, **kw))
    except (IndexError, RuntimeError) as exc:  # refused on a 0-d tensor (unbind): the same way
        with pytest.raises(type(exc)) as ours_error:
            ge.OPS[name].call(x, *extra, dim=dim, **kw)
        assert str(ours_error.value) == str(exc)
        return
    ours = tensors(ge.OPS[name].call(x, *extra, dim=dim, **kw))
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert tuple(o.shape) == tuple(t.shape)
        assert o.dtype.name == str(t.dtype).removeprefix("torch.")
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), equal_nan=True)
        assert (o.grad_fn is None) == (t.grad_fn is None)
        if o.grad_fn is not None:
            assert o.grad_fn.name() == t.grad_fn.name()
    first, tfirst = ours[0], theirs[0]
    if first.grad_fn is not None:
        seed = np.full(tuple(first.shape), 0.75)
        ge.backward([first], [ge.tensor(seed)])
        tfirst.backward(torch.tensor(seed))
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), equal_nan=True)


@pytest.mark.parametrize("name", dim_ops())
@pytest.mark.parametrize("dim", [1, -2])
def test_dim_out_of_range_on_0d(name: str, dim: int) -> None:
    x = ge.tensor(1.5)
    extra = EXTRA_ARGS.get(name, ())
    with pytest.raises(IndexError) as ours:
        ge.OPS[name].call(x, *extra, dim=dim)
    with pytest.raises(IndexError) as theirs:
        torch_op(name)(torch.tensor(1.5), *extra, dim=dim)
    assert str(ours.value) == str(theirs.value)
    assert str(ours.value) == (
        f"Dimension out of range (expected to be in range of [-1, 0], but got {dim})"
    )


def test_empty_dim_list_reduces_every_dim() -> None:
    # ``sum(dim=())`` reduces all dims as PyTorch, recorded as a dim reduction (SumBackward1)
    x = ge.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    for name in ("sum", "mean"):
        r = ge.OPS[name].call(x, dim=())
        t = getattr(torch, name)(torch.arange(6.0, dtype=torch.float64).reshape(2, 3), dim=())
        assert tuple(r.shape) == ()
        np.testing.assert_allclose(r.detach().numpy(), t.numpy())
    assert x.sum(dim=[]).grad_fn.name() == "SumBackward1"
