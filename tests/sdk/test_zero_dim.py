"""Dims in [-1, 0] on a 0-d tensor (``loss.sum(dim=0)``), embedded and on a server: the same
values, metadata (the client's, checked against the server's) and gradients; dim 1 is
PyTorch's IndexError on both."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import gradd
import gradd.engine as ge
import numpy as np
import pytest
from gradd.op_recording import remote_function
from gradd.remote_tensor import RemoteTensor

from .test_methods import check_against_server, describe

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from engine_examples import DIM_EXTRA_ARGS, dim_ops  # noqa: E402

EXTRA_ARGS = DIM_EXTRA_ARGS
DIM_OPS = dim_ops()


def bound(x: object, name: str) -> object:
    """The op on ``x`` as a user reaches it: its method, else its function."""
    d = ge.OPS[name]
    if d.method:
        return getattr(x, d.method)
    fn = remote_function(d) if isinstance(x, RemoteTensor) else d.call
    return lambda *args, **kwargs: fn(x, *args, **kwargs)


def run(s: gradd.Session, name: str, dim: int, keepdim: bool | None) -> dict:
    x = s.tensor(np.array(1.5), requires_grad=True)
    kw = {} if keepdim is None else {"keepdim": keepdim}
    out = bound(x, name)(*EXTRA_ARGS.get(name, ()), dim=dim, **kw)
    outs = list(out) if isinstance(out, tuple) else [out]
    for o in outs:
        if isinstance(o, RemoteTensor):
            check_against_server(s, o)
    seen = {"outs": [describe(o) for o in outs]}
    if outs[0].requires_grad:
        (outs[0] * 3).sum().backward()
        seen["grad"] = x.grad.numpy()
    return seen


@pytest.mark.parametrize("name", DIM_OPS)
def test_dim_on_0d_embedded_and_remote(name: str, remote: gradd.Session) -> None:
    embedded = gradd.connect()
    keeps = (False, True) if any(p.name == "keepdim" for p in ge.OPS[name].params) else (None,)
    for dim in (0, -1):
        for keepdim in keeps:
            try:
                want = run(embedded, name, dim, keepdim)
            except IndexError as exc:  # refused on a 0-d tensor (unbind): the same on a server
                with pytest.raises(IndexError, match=re.escape(str(exc))):
                    run(remote, name, dim, keepdim)
                continue
            got = run(remote, name, dim, keepdim)
            for g, w in zip(got["outs"], want["outs"], strict=True):
                np.testing.assert_array_equal(g.pop("value"), w.pop("value"))
                assert g == w
            assert ("grad" in got) == ("grad" in want)
            if "grad" in want:
                np.testing.assert_array_equal(got["grad"], want["grad"])


@pytest.mark.parametrize("name", DIM_OPS)
def test_dim_out_of_range_on_0d(name: str, session: gradd.Session) -> None:
    x = session.tensor(np.array(1.5))
    method = bound(x, name)
    words = r"^Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)$"
    with pytest.raises(IndexError, match=words):
        method(*EXTRA_ARGS.get(name, ()), dim=1)
        session.synchronize()


def test_linalg_namespace(session: gradd.Session) -> None:
    x = session.tensor([[3.0, -4.0], [0.0, 1.0]], requires_grad=True)
    out = session.linalg.vector_norm(x, 2, 1)
    np.testing.assert_allclose(out.detach().numpy(), [5.0, 1.0])
    assert out.grad_fn.name() == "LinalgVectorNormBackward0"
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.6, -0.8], [0.0, 1.0]])
