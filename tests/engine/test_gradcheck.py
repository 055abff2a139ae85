"""Gradient checks generated from the op table: every example of every op.

For each ``Ex`` an op declares, analytic gradients (backward with a random upstream gradient)
must equal central finite differences in float64, and so must second derivatives taken with
``create_graph=True``. The op's shape rule, its attribute normaliser and its dtype rule are
checked against the forward on the same examples. A differentiable op without examples fails
the suite; ops without a gradient are listed by name.
"""

from __future__ import annotations

from collections.abc import Callable

import gradd.engine as ge
import numpy as np
import pytest
from gradd.engine.op_examples import S
from gradd.engine.op_table import result_dtype

from .engine_examples import (
    NON_DIFFERENTIABLE,
    Case,
    call,
    canonical,
    example_cases,
    input_shape,
    instantiate,
    is_composite,
    is_differentiable,
    materialise,
    renormalize,
    rng_for,
    tensor_outputs,
)

EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-7
# A float32 output (to_dtype(float32)) cannot resolve a 1e-6 step: coarser step and tolerance.
EPS32, TOL32 = 1e-3, 2e-3

CASES = example_cases()
IDS = [f"{n}-{i}" for n, i in CASES]
# Gradients that are not the derivative on purpose (as PyTorch's): finite differences differ.
NOT_THE_DERIVATIVE = {
    ("embedding", 1): "padding_idx's row gets no gradient",
    ("embedding", 2): "scale_grad_by_freq divides each row's gradient by its count",
    ("native_embedding", 1): "padding_idx and scale_grad_by_freq",
}
FIRST = [
    pytest.param(n, i, marks=pytest.mark.xfail(strict=True, reason=NOT_THE_DERIVATIVE[n, i]))
    if (n, i) in NOT_THE_DERIVATIVE
    else (n, i)
    for n, i in CASES
]


def _case(name: str, i: int) -> Case:
    d = ge.OP_TABLE[name]
    return materialise(d, d.examples[i], rng_for(name, i))


def _float_outputs(result: object) -> list[ge.Tensor]:
    return [o for o in tensor_outputs(result) if o.requires_grad]


def _numeric_grad(f: Callable[[list[np.ndarray]], float], arrays: list, slots: list, eps: float):
    """Central differences of scalar ``f`` with respect to each array in ``slots``."""
    grads = []
    for s in slots:
        g = np.zeros_like(arrays[s])
        for idx in np.ndindex(*arrays[s].shape):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[s][idx] += eps
            minus[s][idx] -= eps
            g[idx] = (f(plus) - f(minus)) / (2 * eps)
        grads.append(g)
    return grads


def _upstream(outs: list[ge.Tensor], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(o.shape).astype(o.dtype.np) for o in outs]


def _tolerances(outs: list[ge.Tensor]) -> tuple[float, float, float]:
    if all(o.dtype is ge.float64 for o in outs):
        return EPS, RTOL, ATOL
    return EPS32, TOL32, TOL32


# -- the table is complete -------------------------------------------------------------------


def test_every_differentiable_op_declares_examples() -> None:
    offenders = sorted(n for n, d in ge.OP_TABLE.items() if is_differentiable(d) and not d.examples)
    assert not offenders, f"differentiable ops without a gradient check (add examples): {offenders}"


def test_ops_without_gradient_are_exactly_the_listed_ones() -> None:
    undifferentiable = {n for n, d in ge.OP_TABLE.items() if not is_differentiable(d)}
    assert undifferentiable == NON_DIFFERENTIABLE, (
        f"not listed as non-differentiable: {sorted(undifferentiable - NON_DIFFERENTIABLE)}; "
        f"listed but differentiable or gone: {sorted(NON_DIFFERENTIABLE - undifferentiable)}"
    )


@pytest.mark.parametrize("name", sorted(NON_DIFFERENTIABLE))
def test_ops_without_gradient_never_record(name: str) -> None:
    d = ge.OP_TABLE[name]
    if d.examples:
        case = materialise(d, d.examples[0], rng_for(name, 0))
        args, kwargs, _ = instantiate(case, force_grad=True)
    else:  # argmax, argmin, sign: declared without examples since they have no gradient
        args, kwargs = (ge.tensor([[0.5, -2.0], [3.0, 1.0]], requires_grad=True),), {}
    floats = [a for a in args if isinstance(a, ge.Tensor) and a.dtype.is_floating_point]
    assert all(a.requires_grad for a in floats)  # every float input asks for a gradient
    for out in tensor_outputs(call(d, args, kwargs)):
        assert not out.requires_grad and out.grad_fn is None


def test_every_differentiable_op_has_an_example_that_needs_a_gradient() -> None:
    # An op whose examples all use S(..., grad=False) or constants would be checked by nothing.
    def wants_grad(v: object) -> bool:
        if isinstance(v, S):
            return v.grad
        return isinstance(v, (list, tuple)) and any(wants_grad(x) for x in v)

    unchecked = sorted(
        n
        for n, d in ge.OP_TABLE.items()
        if is_differentiable(d)
        and not any(wants_grad(a) for ex in d.examples for a in (*ex.args, *ex.kwargs.values()))
    )
    assert not unchecked, f"no example of these ops requires grad: {unchecked}"


# -- first and second derivatives against finite differences ---------------------------------


@pytest.mark.parametrize(("name", "i"), FIRST, ids=IDS)
def test_gradient_matches_finite_differences(name: str, i: int) -> None:
    case = _case(name, i)
    d = case.opdef
    args, kwargs, leaves = instantiate(case)
    outs = _float_outputs(call(d, args, kwargs))
    if not leaves or not is_differentiable(d):
        assert not outs, f"{name}: output requires grad though nothing differentiable went in"
        return
    assert outs, f"{name}: no output requires grad although its inputs do"
    rng = np.random.default_rng(i)
    vs = _upstream(outs, rng)
    ge.backward(outs, [ge.tensor(v) for v in vs])
    analytic = [
        np.zeros(t.shape) if t.grad is None else t.grad.numpy().astype(np.float64) for t in leaves
    ]
    eps, rtol, atol = _tolerances(outs)

    def f(arrays: list[np.ndarray]) -> float:
        a, k, _ = instantiate(case, arrays)
        o = _float_outputs(call(d, a, k))
        return float(sum((x.detach().numpy().astype(np.float64) * v).sum() for x, v in zip(o, vs)))

    numeric = _numeric_grad(f, case.arrays, _slots(case), eps)
    for s, a, n in zip(_slots(case), analytic, numeric):
        assert a.shape == case.arrays[s].shape
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"{name} {d.examples[i]}")


def _slots(case: Case) -> list[int]:
    return [s for s, spec in enumerate(case.specs) if spec.grad]


# Second derivatives need float64 outputs to resolve finite differences of the first gradient.
SECOND_ORDER_SKIP = {"to_dtype": "float32 output: finite differences cannot resolve it"}
SECOND = [
    (n, i) for n, i in CASES if is_differentiable(ge.OP_TABLE[n]) and n not in SECOND_ORDER_SKIP
]


@pytest.mark.parametrize(("name", "i"), SECOND, ids=[f"{n}-{i}" for n, i in SECOND])
def test_second_derivative_matches_finite_differences(name: str, i: int) -> None:
    case = _case(name, i)
    d = case.opdef
    slots = _slots(case)
    if not slots:
        pytest.skip("example has no input that requires grad")
    rng = np.random.default_rng(100 + i)
    args, kwargs, _ = instantiate(case)
    outs = _float_outputs(call(d, args, kwargs))
    vs = _upstream(outs, rng)
    ws = [rng.standard_normal(case.arrays[s].shape) for s in slots]

    def first(arrays: list[np.ndarray], create_graph: bool) -> tuple[list, list]:
        a, k, leaves = instantiate(case, arrays)
        o = _float_outputs(call(d, a, k))
        gs = ge.grad(
            o, leaves, [ge.tensor(v) for v in vs], create_graph=create_graph, allow_unused=True
        )
        return leaves, list(gs)

    def h(arrays: list[np.ndarray]) -> float:
        _, gs = first(arrays, False)
        return float(sum((g.numpy() * w).sum() for g, w in zip(gs, ws) if g is not None))

    leaves, gs = first(case.arrays, True)
    terms = [(g * ge.tensor(w)).sum() for g, w in zip(gs, ws) if g is not None and g.requires_grad]
    if terms:
        s = terms[0]
        for t in terms[1:]:
            s = s + t
        second = ge.grad(s, leaves, allow_unused=True)
        analytic = [
            np.zeros_like(case.arrays[sl]) if g is None else g.numpy()
            for sl, g in zip(slots, second)
        ]
    else:  # the first gradient does not depend on the inputs: the op is linear in them
        analytic = [np.zeros_like(case.arrays[sl]) for sl in slots]
    numeric = _numeric_grad(h, case.arrays, slots, EPS)
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-4, atol=1e-6, err_msg=f"{name} {d.examples[i]}")


# -- shape rule, normaliser and dtype rule against the forward -------------------------------

PRIMITIVE_CASES = [(n, i) for n, i in CASES if not is_composite(ge.OP_TABLE[n])]
# to_device's node records the device to return to (its input's), which is the example's
# argument, "cpu", only when the input is on the CPU.
SOURCE_IS_CPU = {("to_device", 0)}


@pytest.mark.parametrize(
    ("name", "i"),
    [
        pytest.param(n, i, marks=pytest.mark.cpu_only("the example's input must be on the CPU"))
        if (n, i) in SOURCE_IS_CPU
        else (n, i)
        for n, i in PRIMITIVE_CASES
    ],
    ids=[f"{n}-{i}" for n, i in PRIMITIVE_CASES],
)
def test_shape_rule_normaliser_and_dtype_rule(name: str, i: int) -> None:
    case = _case(name, i)
    d = case.opdef
    args, kwargs, _ = instantiate(case)
    inputs, attrs = canonical(d, args, kwargs)
    (out,) = tensor_outputs(call(d, args, kwargs))
    shape = d.shape(*(input_shape(x) for x in inputs), **attrs)
    assert tuple(shape) == out.shape, f"{name}: shape rule {shape} != forward {out.shape}"
    if d.normalize is not None:
        again = renormalize(d, inputs, attrs)
        assert again == attrs, f"{name}: normalising {attrs} gave {again}"
    if d.dtype in ("promote", "float", "bool"):
        assert out.dtype is result_dtype(d, inputs, attrs)
    # (matmul of batches records PyTorch's decomposition: its last node is another op's)
    if out.grad_fn is not None and out.grad_fn.op is d and not d.extras and not d.inplace:
        assert out.grad_fn.attrs == attrs, f"{name}: node attrs differ from canonical attrs"
