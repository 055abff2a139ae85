"""The nine dtypes through a session, embedded and on a server: names as torch spells them,
tensors keep NumPy's dtype, conversions, promotion and factories give torch's dtypes."""

from __future__ import annotations

import gradd
import numpy as np
import pytest
import torch
from gradd.engine import dtypes as dt

TORCH = {d: getattr(torch, d.name) for d in dt.ALL}
NAMES = [
    "float16",
    "float32",
    "float64",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "bool",
    "half",
    "float",
    "double",
    "short",
    "int",
    "long",
]


def test_names(session: gradd.Session) -> None:
    for name in NAMES:
        assert TORCH[getattr(session, name)] == getattr(torch, name)
    assert session.bool_ is session.bool
    assert session.promote_types(session.uint8, session.int8) is session.int16
    x = session.ones(2, dtype=session.int8)
    assert session.result_type(x, 2.5) is session.float32
    assert session.result_type(x, session.tensor(1, dtype=session.int64)) is session.int8


@pytest.mark.cpu_only("compares with a CPU tensor's repr and type name")
def test_from_numpy_keeps_the_dtype(session: gradd.Session) -> None:
    for d in dt.ALL:
        a = (np.arange(6).reshape(2, 3) * 3 - 5).astype(d.np)
        t = session.from_numpy(a)
        assert t.dtype is d
        assert t.type() == torch.from_numpy(a).type()
        back = t.numpy()
        assert back.dtype == a.dtype and np.array_equal(back, a)


@pytest.mark.cpu_only("compares with CPU tensors' type names (a CUDA tensor's is torch.cuda.*)")
def test_conversions_and_promotion(session: gradd.Session) -> None:
    values = [1.5, -2.7, 100.25, 0.0]
    g, t = session.tensor(values), torch.tensor(values)
    for m in ("half", "byte", "char", "short", "int", "long", "bool", "double"):
        gm, tm = getattr(g, m)(), getattr(t, m)()
        assert gm.type() == tm.type() and gm.tolist() == tm.tolist()
        for other in ("half", "byte", "char", "int", "double"):
            go, to = getattr(g, other)(), getattr(t, other)()
            if m == "bool" and other == "bool":
                continue
            assert TORCH[(gm + go).dtype] == (gm_t := tm + to).dtype, (m, other)
            assert (gm + go).tolist() == gm_t.tolist(), (m, other)
        assert TORCH[(gm * 3).dtype] == (tm * 3).dtype
        assert TORCH[(gm * 2.5).dtype] == (tm * 2.5).dtype
    assert g.type(session.int32).tolist() == t.type(torch.int32).tolist()
    assert g.type("torch.ShortTensor").dtype is session.short
    assert g.to(session.int8).dtype is session.int8


def test_factories_take_every_dtype(session: gradd.Session) -> None:
    for d in dt.ALL:
        z = session.zeros(2, 3, dtype=d)
        f = session.full((2,), 7, dtype=d)
        assert z.dtype is d and f.dtype is d
        assert f.tolist() == torch.full((2,), 7, dtype=TORCH[d]).tolist()
        if d is dt.bool_:
            with pytest.raises(NotImplementedError, match="arange_cpu"):
                torch.arange(5, dtype=TORCH[d])
            with pytest.raises(NotImplementedError, match='"arange_cpu" not implemented'):
                session.arange(5, dtype=d)
            continue
        assert session.arange(5, dtype=d).tolist() == torch.arange(5, dtype=TORCH[d]).tolist()


def test_python_floats_keep_the_asked_precision(session: gradd.Session) -> None:
    # PyTorch parses Python floats as doubles: with dtype=float64 they stay exact, not rounded
    # through the default float first; a NumPy scalar keeps its own dtype.
    assert session.tensor([2.675], dtype=session.float64).tolist() == [2.675]
    assert session.tensor(np.float64(1.5)).dtype is session.float64
    assert session.tensor(np.float32(1.5)).dtype is session.float32
    assert session.tensor(1.5).dtype is session.float32
    assert session.tensor([1.7, -2.5], dtype=session.int64).tolist() == [1, -2]
