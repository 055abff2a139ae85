"""Numerics: a stable log-sum-exp for huge logits, and PyTorch's type promotion.

Hand-derived values run everywhere; where torch imports, the same programs run in it too and
``torch.result_type`` is compared over a grid of operands.
"""

from __future__ import annotations

import math
import warnings

import gradd.engine as ge
import numpy as np
import pytest

F = ge.functional

# -- huge logits --------------------------------------------------------------------------------

LOGITS = [[1e8, 0.0, -1e8], [0.0, 1e8, 1e8], [-1e8, -1e8, -1e8]]
TARGET = [0, 2, 1]
# By hand: row 0 puts all mass on its target (loss 0), row 1 splits it between two classes
# (loss log 2), row 2 among three (log 3); the gradient is (softmax - onehot) / 3.
LOSS = (math.log(2) + math.log(3)) / 3  # torch 2.13.0 gives 0.597253143787384 in float32
GRAD = [[0.0, 0.0, 0.0], [0.0, 1 / 6, -1 / 6], [1 / 9, -2 / 9, 1 / 9]]
LOG_SOFTMAX = [[0.0, -1e8, -2e8], [-1e8, -math.log(2), -math.log(2)], [-math.log(3)] * 3]


@pytest.fixture(autouse=True)
def numpy_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # overflow, invalid value in exp/log
        yield


def test_cross_entropy_of_huge_logits_is_finite_and_right() -> None:
    x = ge.tensor(LOGITS, requires_grad=True)
    loss = F.cross_entropy(x, ge.tensor(TARGET))
    loss.backward()
    assert loss.dtype is ge.float32
    assert math.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), LOSS, rtol=1e-6)
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy(), GRAD, rtol=1e-6, atol=1e-6)


def test_log_softmax_of_huge_logits() -> None:
    x = ge.tensor(LOGITS, requires_grad=True)
    out = F.log_softmax(x, 1)
    np.testing.assert_allclose(out.detach().numpy(), LOG_SOFTMAX, rtol=1e-6)
    out.backward(ge.ones_like(out))
    # d/dx sum(log_softmax) = 1 - 3 softmax
    sm = np.exp(np.array(LOG_SOFTMAX))
    np.testing.assert_allclose(x.grad.numpy(), 1 - 3 * sm, rtol=1e-6, atol=1e-6)


def test_huge_logits_match_torch() -> None:
    torch = pytest.importorskip("torch")
    t = torch.tensor(LOGITS, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(t, torch.tensor(TARGET))
    tl.backward()
    x = ge.tensor(LOGITS, requires_grad=True)
    loss = F.cross_entropy(x, ge.tensor(TARGET))
    loss.backward()
    # float32 rounding differs in the last place (measured: 1.0e-7 relative on the loss).
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-6)
    tls = torch.log_softmax(torch.tensor(LOGITS), 1)
    np.testing.assert_allclose(F.log_softmax(ge.tensor(LOGITS), 1).numpy(), tls.numpy(), rtol=1e-6)


def test_softmax_and_sigmoid_are_stable_at_the_extremes() -> None:
    x = ge.tensor([-1000.0, 0.0, 1000.0])
    np.testing.assert_allclose(x.sigmoid().numpy(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(F.softmax(x, 0).numpy(), [0.0, 0.0, 1.0])
    big = ge.tensor([[3e38, 3e38]])
    np.testing.assert_allclose(F.softmax(big, 1).numpy(), [[0.5, 0.5]])


# -- type promotion: by hand --------------------------------------------------------------------


def t1(dtype: ge.DType) -> ge.Tensor:
    return ge.ones(2, dtype=dtype)


def t0(dtype: ge.DType) -> ge.Tensor:
    return ge.ones((), dtype=dtype)


F32, F64, I64, B = ge.float32, ge.float64, ge.int64, ge.bool_

HAND = [
    ("f32 + 2.5", lambda: t1(F32) + 2.5, F32),
    ("2.5 * f32", lambda: 2.5 * t1(F32), F32),
    ("f32 + 3", lambda: t1(F32) + 3, F32),
    ("f32 ** 2.0", lambda: t1(F32) ** 2.0, F32),
    ("f32 + f64", lambda: t1(F32) + t1(F64), F64),
    ("f64 * f32", lambda: t1(F64) * t1(F32), F64),
    ("i64 * 2.5", lambda: t1(I64) * 2.5, F32),
    ("i64 * 2", lambda: t1(I64) * 2, I64),
    ("i64 / i64", lambda: t1(I64) / t1(I64), F32),
    ("i64 / 2", lambda: t1(I64) / 2, F32),
    ("bool + i64", lambda: t1(B) + t1(I64), I64),
    ("bool + 1", lambda: t1(B) + 1, I64),
    ("bool + True", lambda: t1(B) + True, B),
    ("bool * 1.5", lambda: t1(B) * 1.5, F32),
    ("i64 + True", lambda: t1(I64) + True, I64),
    ("f32 dim + f64 0-dim", lambda: t1(F32) + t0(F64), F32),
    ("i64 dim + f64 0-dim", lambda: t1(I64) + t0(F64), F64),
    ("i64 0-dim + 2.5", lambda: t0(I64) + 2.5, F32),
    ("f64 0-dim + f32 0-dim", lambda: t0(F64) + t0(F32), F64),
    ("bool dim + i64 0-dim", lambda: t1(B) + t0(I64), I64),
    ("f32 < f64", lambda: t1(F32) < t1(F64), B),
    ("i64 == 2.5", lambda: t1(I64) == 2.5, B),
    ("sum(i64)", lambda: t1(I64).sum(), I64),
    ("sum(bool)", lambda: t1(B).sum(), I64),
    ("sum(f32)", lambda: t1(F32).sum(), F32),
    ("mean(f64)", lambda: t1(F64).mean(), F64),
    ("where(f32, f64)", lambda: ge.where(t1(B), t1(F32), t1(F64)), F64),
    ("where(f32, 0.5)", lambda: ge.where(t1(B), t1(F32), 0.5), F32),
    ("matmul(f32, f64)", lambda: t1(F32) @ t1(F64), F64),
    ("exp(i64)", lambda: t1(I64).exp(), F32),
]


@pytest.mark.parametrize(("program", "dtype"), [h[1:] for h in HAND], ids=[h[0] for h in HAND])
def test_promotion_by_hand(program, dtype: ge.DType) -> None:
    assert program().dtype is dtype


def test_python_float_never_upcasts_float32_values() -> None:
    x = ge.tensor([1.0, 2.0])
    y = x * 0.1
    assert y.dtype is ge.float32
    np.testing.assert_array_equal(y.numpy(), np.array([1.0, 2.0], np.float32) * np.float32(0.1))


def test_tensor_factories_pick_pytorchs_dtypes() -> None:
    assert ge.tensor([1.0, 2.0]).dtype is F32  # Python floats: the default float
    assert ge.tensor(np.array([1.0])).dtype is F64  # float64 NumPy input stays float64
    assert ge.tensor([1, 2]).dtype is I64
    assert ge.tensor([True]).dtype is B
    assert ge.arange(3).dtype is I64 and ge.arange(0.0, 1.0, 0.5).dtype is F32
    assert ge.full((2,), 7).dtype is I64 and ge.full((2,), 7.0).dtype is F32


def test_mean_of_ints_raises_like_pytorch() -> None:
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype.*Got: Long"):
        ge.tensor([1, 2, 3]).mean()
    with pytest.raises(RuntimeError, match="Got: Bool"):
        ge.tensor([True]).mean(dim=0)


def test_integer_sums_are_exact_int64() -> None:
    big = ge.tensor([2**62, 2**62 - 1, -(2**61)])
    s = big.sum()
    assert s.dtype is I64 and s.item() == 2**62 + 2**62 - 1 - 2**61


# -- type promotion: against torch.result_type over a grid --------------------------------------

DTYPES = ["bool", "int64", "float32", "float64"]
SCALARS = [True, 3, 2.5]


def _operands(m):
    """(label, operand) for 1-dim and 0-dim tensors of each dtype and Python scalars."""
    out = []
    for name in DTYPES:
        d = getattr(m, name if name != "bool" else "bool")
        out.append((f"{name}[2]", m.ones(2, dtype=d)))
        out.append((f"{name}[]", m.ones((), dtype=d)))
    out += [(repr(s), s) for s in SCALARS]
    return out


def _grid_pairs():
    n = len(DTYPES) * 2 + len(SCALARS)
    return [
        (i, j) for i in range(n) for j in range(n) if i < len(DTYPES) * 2 or j < len(DTYPES) * 2
    ]


OPS = {
    "result_type": lambda m, a, b: m.result_type(a, b),
    "add": lambda m, a, b: (a + b).dtype,
    "mul": lambda m, a, b: (a * b).dtype,
    "div": lambda m, a, b: (a / b).dtype,
    "lt": lambda m, a, b: (a < b).dtype,
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_promotion_grid_matches_torch(op: str) -> None:
    torch = pytest.importorskip("torch")
    fn = OPS[op]
    gops, tops = _operands(ge), _operands(torch)
    mismatches = []
    for i, j in _grid_pairs():
        (label_a, ga), (label_b, gb) = gops[i], gops[j]
        (_, ta), (_, tb) = tops[i], tops[j]
        try:
            expected = str(fn(torch, ta, tb)).removeprefix("torch.")
        except (TypeError, RuntimeError):
            continue  # torch refuses (e.g. bool - bool); not a promotion question
        if op == "result_type" and not isinstance(ga, ge.Tensor):
            got = ge.result_type(ga, gb).name
        else:
            got = fn(ge, ga, gb).name
        if got != expected:
            mismatches.append(f"{label_a} {op} {label_b}: gradd {got}, torch {expected}")
    assert not mismatches, "\n".join(mismatches)
