"""Pointwise ops (engine/ops/pointwise.py) against PyTorch beyond the table's float64
examples: every input dtype (results' dtypes, values, or PyTorch's exact error), special values
(NaN, infinities, ties), and the errors of their argument checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

VALUES = [0.0, -0.0, 0.5, -1.5, 2.5, -2.5, 1.0, -1.0, 3.0, 0.25, math.nan, math.inf, -math.inf]
INTS = [0, 1, -2, 3, 7, -7]
BOOLS = [True, False, True]
DTYPES = ["float32", "float64", "int64", "bool"]


def values_of(dtype: str) -> list:
    return {"int64": INTS, "bool": BOOLS}.get(dtype, VALUES)


def both(dtype: str, values: list | None = None) -> tuple[Any, Any]:
    v = np.array(values_of(dtype) if values is None else values, dtype=dtype)
    # From an array: ge.tensor(list of floats, dtype=float64) goes through float32 today.
    return ge.tensor(v), torch.tensor(v)


def outcome(fn: Callable[[], Any]) -> tuple:
    """What a call gives: ("ok", dtype name, values) or ("error", exception type, message)."""
    try:
        out = fn()
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        kind = "NotImplementedError" if isinstance(exc, NotImplementedError) else "RuntimeError"
        if not isinstance(exc, RuntimeError):
            kind = type(exc).__name__
        return ("error", kind, str(exc).split("\n")[0])
    dtype = str(out.dtype).removeprefix("torch.").removeprefix("gradd.")
    return ("ok", dtype, out.detach().numpy())


def same_outcome(ours: Callable[[], Any], theirs: Callable[[], Any], what: str) -> None:
    a, b = outcome(ours), outcome(theirs)
    if a[0] == "error" or b[0] == "error":
        assert a == b, what
        return
    assert a[1] == b[1], f"{what}: dtype {a[1]} != torch {b[1]}"
    assert a[2].shape == b[2].shape, what
    np.testing.assert_allclose(
        a[2].astype(np.float64), b[2].astype(np.float64), rtol=1e-6, atol=1e-6, err_msg=what
    )


UNARY = [
    *("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh"),
    *("exp2", "expm1", "log2", "log10", "log1p", "rsqrt", "square"),
    *("floor", "ceil", "round", "trunc", "frac"),
    *("erf", "erfc", "erfinv"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's invalid value / overflow notes
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_dtypes_values_and_errors_match_torch(name: str, dtype: str) -> None:
    g, t = both(dtype)
    same_outcome(lambda: getattr(ge, name)(g), lambda: getattr(torch, name)(t), f"{name} {dtype}")
    same_outcome(lambda: getattr(g, name)(), lambda: getattr(t, name)(), f"t.{name}() {dtype}")


@pytest.mark.parametrize("name", UNARY)
def test_unary_refuses_a_number_as_torch(name: str) -> None:
    same_outcome(lambda: getattr(ge, name)(2.0), lambda: getattr(torch, name)(2.0), name)


ROUNDING = [0.125, 0.375, 1.005, 2.675, -2.5, 0.5, 1.5, 15.0, 25.0, 149.0, -35.0, 1e-3, 123.456]


# decimals=0 given explicitly is not here: gradd cannot tell it from the default, so an int64
# tensor is copied where PyTorch's decimals overload refuses it ("round_vml_cpu" ... 'Long').
@pytest.mark.parametrize("decimals", [1, 2, 3, -1, -2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_decimals_matches_torch(dtype: str, decimals: int) -> None:
    # Half to even; the power of ten in the tensor's dtype (float32 differs from float64 here);
    # integers are refused unless decimals is 0, bool always.
    values = ROUNDING if dtype.startswith("float") else None
    g, t = both(dtype, values)
    same_outcome(
        lambda: ge.round(g, decimals=decimals),
        lambda: torch.round(t, decimals=decimals),
        f"round {dtype} decimals={decimals}",
    )
    same_outcome(
        lambda: g.round(decimals=decimals),
        lambda: t.round(decimals=decimals),
        f"t.round {dtype} decimals={decimals}",
    )


def test_round_names_its_backward_by_decimals() -> None:
    x = ge.tensor([0.5, 1.25], requires_grad=True)
    assert ge.round(x).grad_fn.name() == "RoundBackward0"
    assert ge.round(x, decimals=1).grad_fn.name() == "RoundBackward1"
    ge.round(x, decimals=1).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]
