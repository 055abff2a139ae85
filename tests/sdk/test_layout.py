"""Strides on remote tensors: the client knows them without asking the server, by the engine's
layout rules, and they are PyTorch's; ``contiguous()`` and ``view()`` follow them on both sides
(the server tracks the same layout, so a view the client allows the server allows too)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gradd
import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from layout_programs import PROGRAMS, X  # noqa: E402


def same_layout(ours: Any, theirs: Any, what: str) -> None:
    assert tuple(ours.shape) == tuple(theirs.shape), what
    assert ours.stride() == theirs.stride(), what
    assert ours.is_contiguous() == theirs.is_contiguous(), what
    assert ours.storage_offset() == theirs.storage_offset(), what


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_layout_matches_torch(name: str, session: gradd.Session) -> None:
    ours = PROGRAMS[name](session.tensor(X.copy()))
    theirs = PROGRAMS[name](torch.tensor(X.copy()))
    same_layout(ours, theirs, name)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.numpy())


def test_contiguous_and_view_follow_the_layout(session: gradd.Session) -> None:
    x = session.tensor(X.copy(), requires_grad=True)
    t = torch.tensor(X.copy(), requires_grad=True)
    assert x.contiguous() is x
    y, ty = x.transpose(1, 2).contiguous(), t.transpose(1, 2).contiguous()
    assert y.grad_fn.name() == ty.grad_fn.name() == "CloneBackward0"
    same_layout(y, ty, "contiguous")
    v, tv = y.view(2, 12), ty.view(2, 12)  # viewable now, on the client and the server
    np.testing.assert_allclose(v.detach().numpy(), tv.detach().numpy())
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.transpose(1, 2).view(24)
    r, tr = x.transpose(1, 2).reshape(24), t.transpose(1, 2).reshape(24)
    assert r.grad_fn.name() == tr.grad_fn.name() == "UnsafeViewBackward0"
    assert r.grad_fn.next_functions[0][0].name() == "CloneBackward0"
    np.testing.assert_allclose(r.detach().numpy(), tr.detach().numpy())
    r.sum().backward()
    tr.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())


def test_a_leaf_grad_takes_the_leafs_layout(session: gradd.Session) -> None:
    x = session.tensor(X.copy()).transpose(0, 2).detach().requires_grad_()
    t = torch.tensor(X.copy()).transpose(0, 2).detach().requires_grad_()
    (x * 2).sum().backward()
    (t * 2).sum().backward()
    same_layout(x.grad, t.grad, "grad")
    v, tv = x.grad.transpose(0, 2).view(24), t.grad.transpose(0, 2).view(24)
    np.testing.assert_allclose(v.numpy(), tv.numpy())


@pytest.mark.parametrize(
    ("a", "b"),
    [((3,), (3, 4)), ((2, 3, 4), (4, 5)), ((5, 2), (3, 2, 4)), ((2, 1, 3, 4), (5, 4, 2))],
)
def test_matmul_records_torchs_decomposition(a: tuple, b: tuple, session: gradd.Session) -> None:
    rng = np.random.default_rng(0)
    va, vb = rng.standard_normal(a), rng.standard_normal(b)
    x, y = session.tensor(va, requires_grad=True), session.tensor(vb, requires_grad=True)
    tx, ty = torch.tensor(va, requires_grad=True), torch.tensor(vb, requires_grad=True)
    out, tout = x @ y, tx @ ty
    assert out.grad_fn.name() == tout.grad_fn.name()
    assert [n.name() for n, _ in out.grad_fn.next_functions if n] == [
        n.name() for n, _ in tout.grad_fn.next_functions if n
    ]
    same_layout(out, tout, "matmul")
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-12)
    s2 = x.sum_to_size(1, a[-1]) if len(a) > 1 else x.sum_to_size(a)
    t2 = tx.sum_to_size(1, a[-1]) if len(a) > 1 else tx.sum_to_size(a)
    assert (s2.grad_fn is None) == (t2.grad_fn is None)
    if t2.grad_fn is not None:
        assert s2.grad_fn.name() == t2.grad_fn.name()
    np.testing.assert_allclose(s2.detach().numpy(), t2.detach().numpy(), rtol=1e-12)


def test_data_assignment(session: gradd.Session) -> None:
    """``t.data = other`` as PyTorch: shape, dtype and layout may change; autograd state stays;
    saved tensors see the new elements; PyTorch's errors."""
    x = session.tensor(np.ones(3), requires_grad=True)
    t = torch.ones(3, dtype=torch.float64, requires_grad=True)
    y, ty = x * x, t * t
    x.data = session.tensor(np.full(3, 5.0))
    t.data = torch.full((3,), 5.0, dtype=torch.float64)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    x.data = session.tensor(X.copy()).transpose(0, 2)
    t.data = torch.tensor(X.copy()).transpose(0, 2)
    assert x.requires_grad and x.is_leaf and x.dtype.name == "float64"
    same_layout(x, t, "data")
    np.testing.assert_allclose(x.detach().numpy(), t.detach().numpy())
    for bad in (5, session.tensor(np.arange(3))):
        tb = 5 if isinstance(bad, int) else torch.arange(3)
        with pytest.raises(Exception) as theirs:
            t.data = tb
        with pytest.raises(type(theirs.value)) as ours:
            x.data = bad
        assert str(ours.value) == str(theirs.value)
    z = session.tensor(np.ones(2))
    z.data = session.tensor(np.arange(4))
    assert z.dtype.name == "int64" and z.shape == (4,) and z.tolist() == [0, 1, 2, 3]
