"""The nine dtypes against PyTorch: promotion for every pair (tensors of each rank, Python
scalars), conversions, legacy type names, NumPy round trips."""

from __future__ import annotations

import itertools

import gradd.engine as ge
import numpy as np
import pytest
import torch
from gradd.engine import dtypes as dt

TORCH = {d: getattr(torch, d.name) for d in dt.ALL}
PAIRS = list(itertools.product(dt.ALL, repeat=2))


@pytest.mark.parametrize("name", ["half", "float", "double", "short", "int", "long", "bool"])
def test_aliases_are_torchs(name: str) -> None:
    assert TORCH[getattr(ge, name)] == getattr(torch, name)
    assert TORCH[dt.dtype_from_name(f"torch.{name}")] == getattr(torch, name)


def test_promote_types_every_pair() -> None:
    for a, b in PAIRS:
        assert TORCH[ge.promote_types(a, b)] == torch.promote_types(TORCH[a], TORCH[b]), (a, b)


@pytest.mark.parametrize("ranks", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_result_type_tensors(ranks: tuple[int, int]) -> None:
    for a, b in PAIRS:
        ga = ge.zeros((2,) * ranks[0], dtype=a)
        gb = ge.zeros((2,) * ranks[1], dtype=b)
        ta = torch.zeros((2,) * ranks[0], dtype=TORCH[a])
        tb = torch.zeros((2,) * ranks[1], dtype=TORCH[b])
        assert TORCH[ge.result_type(ga, gb)] == torch.result_type(ta, tb), (a, b)
        if a is not dt.bool_ or b is not dt.bool_:  # torch refuses bool - bool
            assert TORCH[(ga + gb).dtype] == (ta + tb).dtype, (a, b)


@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_result_type_python_scalars(scalar: object) -> None:
    for d in dt.ALL:
        for rank in (0, 1):
            g, t = ge.ones((2,) * rank, dtype=d), torch.ones((2,) * rank, dtype=TORCH[d])
            assert TORCH[ge.result_type(g, scalar)] == torch.result_type(t, scalar), d
            assert TORCH[(g * scalar).dtype] == (t * scalar).dtype, d
            assert np.array_equal(np.asarray((g * scalar).tolist()), (t * scalar).numpy())


@pytest.mark.parametrize(
    "method", ["half", "byte", "char", "short", "int", "long", "bool", "float", "double"]
)
@pytest.mark.cpu_only("compares with CPU tensors' type names (a CUDA tensor's is torch.cuda.*)")
def test_conversions(method: str) -> None:
    values = [1.5, -2.7, 100.25, 0.0]
    got, want = getattr(ge.tensor(values), method)(), getattr(torch.tensor(values), method)()
    assert TORCH[got.dtype] == want.dtype
    assert got.type() == want.type()
    assert got.tolist() == want.tolist()


def test_type_with_a_dtype_or_name() -> None:
    g, t = ge.tensor([1.7, -3.2]), torch.tensor([1.7, -3.2])
    for target in (torch.int32, "torch.IntTensor", "torch.HalfTensor", torch.uint8):
        gt = g.type(target if isinstance(target, str) else dt.dtype_from_name(str(target)))
        assert TORCH[gt.dtype] == t.type(target).dtype
        assert gt.tolist() == t.type(target).tolist()
    for bad in ("torch.int32", "IntTensor"):
        with pytest.raises(ValueError, match=f"invalid type: '{bad}'"):
            g.type(bad)
        with pytest.raises(ValueError, match=f"invalid type: '{bad}'"):
            t.type(bad)


@pytest.mark.cpu_only("compares with a CPU tensor's repr")
@pytest.mark.parametrize("d", dt.ALL, ids=lambda d: d.name)
def test_numpy_dtype_kept(d: dt.DType) -> None:
    a = np.arange(4).astype(d.np)
    g = ge.tensor(a)
    assert g.dtype is d and TORCH[g.dtype] == torch.from_numpy(a).dtype
    assert g.numpy().dtype == a.dtype
    assert repr(g) == repr(torch.from_numpy(a))  # dtype=torch.int32, as PyTorch prints it
