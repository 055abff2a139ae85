"""Pointwise ops (engine/ops/pointwise.py) against PyTorch beyond the table's float64
examples: every input dtype (results' dtypes, values, or PyTorch's exact error), special values
(NaN, infinities, ties), and the errors of their argument checks."""

from __future__ import annotations

import math
import re
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


def same_outcome(
    ours: Callable[[], Any], theirs: Callable[[], Any], what: str, method: bool = False
) -> None:
    a, b = outcome(ours), outcome(theirs)
    if a[0] == "error" or b[0] == "error":
        if method and a[0] == b[0] == "error":
            # gradd's methods count self among argument positions, PyTorch's do not (all ops)
            a = (
                *a[:2],
                re.sub(r"\(position (\d+)\)", lambda m: f"(position {int(m[1]) - 1})", a[2]),
            )
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
    *("isnan", "isinf", "isfinite", "nan_to_num", "logical_not"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's invalid value / overflow notes
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_dtypes_values_and_errors_match_torch(name: str, dtype: str) -> None:
    g, t = both(dtype)
    same_outcome(lambda: getattr(ge, name)(g), lambda: getattr(torch, name)(t), f"{name} {dtype}")
    same_outcome(
        lambda: getattr(g, name)(), lambda: getattr(t, name)(), f"t.{name}() {dtype}", method=True
    )


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
        method=True,
    )


def test_round_names_its_backward_by_decimals() -> None:
    x = ge.tensor([0.5, 1.25], requires_grad=True)
    assert ge.round(x).grad_fn.name() == "RoundBackward0"
    assert ge.round(x, decimals=1).grad_fn.name() == "RoundBackward1"
    ge.round(x, decimals=1).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


# -- two-tensor ops ------------------------------------------------------------------------------

BINARY = ["atan2", "maximum", "minimum", "fmod", "remainder", "hypot", "clamp_min", "clamp_max"]
LEFT = [0.0, 0.5, -1.5, 2.5, -2.5, 3.0, 7.0, -7.0, math.nan, math.inf]
RIGHT = [1.0, -2.0, 0.5, 2.0, -3.0, 2.0, 0.25, -4.0, 1.0, 3.0]


def operands(dtype: str, values: list) -> tuple[Any, Any]:
    if dtype.startswith("py-"):  # a Python number
        v = {"py-int": 2, "py-float": -1.5, "py-bool": True}[dtype]
        return v, v
    zero_dim = dtype.startswith("0d-")
    dtype = dtype.removeprefix("0d-")
    if dtype == "int64":
        # no zeros: an integer division by zero has its own test (CPU only)
        values = [int(v) if math.isfinite(v) and int(v) else 3 for v in values]
    elif dtype == "bool":
        values = [bool(v) for v in values]
    arr = np.array(values[:1][0] if zero_dim else values, dtype=dtype)
    return ge.tensor(arr), torch.tensor(arr)


OPERANDS = [
    *("float32", "float64", "int64", "bool", "0d-float64", "0d-int64"),
    *("py-int", "py-float", "py-bool"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("other", OPERANDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BINARY)
def test_binary_dtypes_values_and_errors_match_torch(name: str, dtype: str, other: str) -> None:
    # Promotion as PyTorch's (0-dim tensors and numbers are weaker), its kernels' dtype errors
    # ("hypot_cpu" not implemented for 'Long'), and its argument errors (maximum takes no number).
    ga, ta = operands(dtype, LEFT)
    gb, tb = operands(other, RIGHT)
    what = f"{name}({dtype}, {other})"
    same_outcome(lambda: getattr(ge, name)(ga, gb), lambda: getattr(torch, name)(ta, tb), what)
    same_outcome(
        lambda: getattr(ga, name)(gb), lambda: getattr(ta, name)(tb), "t." + what, method=True
    )


@pytest.mark.parametrize("name", ["atan2", "maximum", "minimum", "hypot"])
def test_binary_refuses_a_number_first_as_torch(name: str) -> None:
    t = torch.tensor([1.0, 2.0])
    g = ge.tensor([1.0, 2.0])
    same_outcome(lambda: getattr(ge, name)(2.0, g), lambda: getattr(torch, name)(2.0, t), name)


@pytest.mark.parametrize("name", ["fmod", "remainder", "clamp_min", "clamp_max"])
def test_overloaded_binary_refuses_a_number_first(name: str) -> None:
    # PyTorch lists its overloads ("received an invalid combination of arguments"); gradd names
    # the argument. torch.remainder(number, tensor) exists (with no gradient): gradd refuses it.
    with pytest.raises(TypeError, match=r"argument 'input' \(position 1\) must be Tensor"):
        getattr(ge, name)(2.0, ge.tensor([1.0, 2.0]))


@pytest.mark.parametrize(
    "divisor",
    [
        "0",
        pytest.param(
            "tensor",
            marks=pytest.mark.cpu_only(
                "PyTorch's CUDA kernels do not look for zero divisors (a device sync), nor do "
                "gradd's"
            ),
        ),
    ],
)
@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_integer_division_by_zero_is_refused_as_torch(name: str, divisor: str) -> None:
    ga, ta = ge.tensor([5, -3]), torch.tensor([5, -3])
    gb, tb = (0, 0) if divisor == "0" else (ge.tensor([2, 0]), torch.tensor([2, 0]))
    same_outcome(lambda: getattr(ge, name)(ga, gb), lambda: getattr(torch, name)(ta, tb), name)
    assert outcome(lambda: getattr(ge, name)(ga, gb))[0] == "error"


TIES = ([1.0, 2.0, 3.0, math.nan, 0.5], [1.0, 5.0, 3.0, 1.0, math.nan])


@pytest.mark.parametrize("name", ["maximum", "minimum", "clamp_min", "clamp_max"])
def test_gradients_at_ties_and_nans_match_torch(name: str) -> None:
    # maximum/minimum split a tie's gradient in halves; clamp_min/max give it to self.
    ga, gb = (ge.tensor(v, dtype=ge.float64, requires_grad=True) for v in TIES)
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in TIES)
    getattr(ge, name)(ga, gb).backward(ge.tensor([1.0, 2.0, 4.0, 8.0, 16.0], dtype=ge.float64))
    getattr(torch, name)(ta, tb).backward(torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0]).double())
    assert ga.grad.tolist() == ta.grad.tolist()
    assert gb.grad.tolist() == tb.grad.tolist()


LERP_CASES = {
    "f32 f32 0.5": (("float32", "float32"), 0.5),
    "f32 f64 0.5": (("float32", "float64"), 0.5),
    "f64 0d-f32": (("float64", "0d-float32"), 0.5),
    "i64 i64 0.5": (("int64", "int64"), 0.5),
    "bool bool 0.5": (("bool", "bool"), 0.5),
    "i64 f32 0.5": (("int64", "float32"), 0.5),
    "f32 f32 w-f64": (("float32", "float32"), "float64"),
    "f32 f32 w-i64": (("float32", "float32"), "int64"),
    "f32 f32 w-0d-f64": (("float32", "float32"), "0d-float64"),
    "f32 f32 w-0d-i64": (("float32", "float32"), "0d-int64"),
    "i64 i64 w-0d-f32": (("int64", "int64"), "0d-float32"),
    "i64 i64 w-i64": (("int64", "int64"), "int64"),
    "f64 f64 w-f64": (("float64", "float64"), "float64"),
    "f32 f32 1": (("float32", "float32"), 1),
    "f32 f32 -0.75": (("float32", "float32"), -0.75),
}


@pytest.mark.parametrize("case", sorted(LERP_CASES))
def test_lerp_dtypes_values_and_errors_match_torch(case: str) -> None:
    # end must have self's dtype, a weight of one or more dims too; a 0-dim weight promotes.
    (sd, ed), w = LERP_CASES[case]
    gs, ts = operands(sd, LEFT[:6])
    ge_, te = operands(ed, RIGHT[:6])
    gw, tw = operands(w, [0.1, 0.5, 0.9, -0.2, 1.3, 0.49]) if isinstance(w, str) else (w, w)
    same_outcome(lambda: ge.lerp(gs, ge_, gw), lambda: torch.lerp(ts, te, tw), case)
    same_outcome(lambda: gs.lerp(ge_, gw), lambda: ts.lerp(te, tw), "t." + case, method=True)


# -- tests, nan_to_num, logical ops --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"nan": 0.5}, {"nan": None}, {"posinf": 2.0, "neginf": -3.0}, {"nan": 1.0, "posinf": 9.0}],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_to_num_matches_torch(dtype: str, kwargs: dict) -> None:
    g, t = both(dtype)
    what = f"nan_to_num {dtype} {kwargs}"
    same_outcome(lambda: ge.nan_to_num(g, **kwargs), lambda: torch.nan_to_num(t, **kwargs), what)
    same_outcome(lambda: g.nan_to_num(**kwargs), lambda: t.nan_to_num(**kwargs), what, method=True)


def test_nan_to_num_gradient_is_zero_where_replaced() -> None:
    v = [1.5, math.nan, math.inf, -math.inf, -2.0]
    g = ge.tensor(np.array(v), requires_grad=True)
    t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    out, tout = ge.nan_to_num(g, posinf=1.0), torch.nan_to_num(t, posinf=1.0)
    assert out.grad_fn.name() == tout.grad_fn.name() == "NanToNumBackward0"
    out.sum().backward()
    tout.sum().backward()
    assert g.grad.tolist() == t.grad.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("other", ["float32", "float64", "int64", "bool", "0d-float64", "0d-int64"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_logical_xor_matches_torch(dtype: str, other: str) -> None:
    ga, ta = operands(dtype, LEFT)
    gb, tb = operands(other, RIGHT)
    what = f"logical_xor({dtype}, {other})"
    same_outcome(lambda: ge.logical_xor(ga, gb), lambda: torch.logical_xor(ta, tb), what)
    same_outcome(lambda: ga.logical_xor(gb), lambda: ta.logical_xor(tb), what, method=True)
