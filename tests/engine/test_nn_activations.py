"""Activations beyond the op table's examples: in-place forms, PyTorch's errors, extreme inputs.

The examples (tests/engine/test_reference.py, test_gradcheck.py) cover out-of-place values,
gradients and grad_fn names; here ``inplace=True``, integer inputs, bad arguments and
overflow-prone values are compared with torch.
"""

from __future__ import annotations

import warnings

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

F = ge.functional
TF = torch.nn.functional

# (name, extra positional arguments) of every activation with PyTorch's ``inplace`` parameter.
INPLACE = [
    ("elu", ()),
    ("elu", (0.5,)),
    ("selu", ()),
    ("celu", (0.7,)),
    ("leaky_relu", (0.1,)),
    ("hardtanh", (-0.5, 2.0)),
    ("relu6", ()),
    ("silu", ()),
    ("mish", ()),
    ("hardsigmoid", ()),
    ("hardswish", ()),
    ("threshold", (0.1, 2.0)),
]
VALUES = np.random.default_rng(0).uniform(-4, 8, 7)


@pytest.mark.parametrize(("name", "args"), INPLACE, ids=[f"{n}{a}" for n, a in INPLACE])
def test_inplace_writes_into_the_input_and_is_recorded_as_torch(name: str, args: tuple) -> None:
    upstream = np.arange(7.0)
    a = ge.tensor(VALUES.copy(), requires_grad=True)
    b = a * 1
    out = getattr(F, name)(b, *args, inplace=True)
    ta = torch.tensor(VALUES.copy(), requires_grad=True)
    tb = ta * 1
    tout = getattr(TF, name)(tb, *args, inplace=True)
    assert out is b and tout is tb
    assert out.grad_fn.name() == tout.grad_fn.name()
    assert out.grad_fn.next_functions[0][0].name() == "MulBackward0"
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    out.backward(ge.tensor(upstream))
    tout.backward(torch.tensor(upstream))
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("name", "args"), INPLACE, ids=[f"{n}{a}" for n, a in INPLACE])
def test_inplace_without_a_graph_changes_the_array(name: str, args: tuple) -> None:
    x = ge.tensor(VALUES.copy())
    view = x[1:]
    getattr(F, name)(x, *args, inplace=True)
    want = getattr(TF, name)(torch.tensor(VALUES.copy()), *args).numpy()
    np.testing.assert_allclose(x.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(view.numpy(), want[1:], rtol=1e-12)  # views see it, as in torch


def test_inplace_on_a_leaf_that_requires_grad_is_refused_as_in_torch() -> None:
    with pytest.raises(RuntimeError) as theirs:
        TF.elu(torch.ones(2, requires_grad=True), inplace=True)
    with pytest.raises(RuntimeError) as ours:
        F.elu(ge.ones(2, requires_grad=True), inplace=True)
    assert str(ours.value) == str(theirs.value)


def test_out_of_place_leaves_the_input_alone() -> None:
    x = ge.tensor(VALUES.copy())
    y = F.elu(x)
    assert y is not x
    np.testing.assert_array_equal(x.numpy(), VALUES)


FLOAT_ONLY = [
    ("softplus", ()),
    ("gelu", ()),
    ("silu", ()),
    ("mish", ()),
    ("elu", ()),
    ("selu", ()),
    ("celu", ()),
    ("leaky_relu", ()),
    ("hardsigmoid", ()),
    ("hardswish", ()),
    ("logsigmoid", ()),
]


@pytest.mark.parametrize(("name", "args"), FLOAT_ONLY, ids=[n for n, _ in FLOAT_ONLY])
@pytest.mark.parametrize("values", [[-2, 0, 3], [True, False]], ids=["long", "bool"])
def test_float_only_kernels_refuse_integers_as_torch(name: str, args: tuple, values: list) -> None:
    with pytest.raises(NotImplementedError) as theirs:
        getattr(TF, name)(torch.tensor(values), *args)
    with pytest.raises(NotImplementedError) as ours:
        getattr(F, name)(ge.tensor(values), *args)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    ("name", "args"),
    [("hardtanh", ()), ("hardtanh", (-2, 2)), ("relu6", ()), ("threshold", (0.5, 7.5))],
)
def test_clamping_activations_keep_integer_dtypes(name: str, args: tuple) -> None:
    values = [-9, -2, 0, 1, 3, 8]
    ours = getattr(F, name)(ge.tensor(values), *args)
    theirs = getattr(TF, name)(torch.tensor(values), *args)
    assert ours.dtype is ge.int64 and theirs.dtype is torch.int64
    assert ours.tolist() == theirs.tolist()


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("hardtanh", (2.0, 1.0), {}),
        ("gelu", (), {"approximate": "tanh2"}),
        ("celu", (0.0,), {}),
    ],
)
def test_bad_arguments_fail_as_in_torch(name: str, args: tuple, kwargs: dict) -> None:
    with pytest.raises(Exception) as theirs:
        getattr(TF, name)(torch.ones(3), *args, **kwargs)
    with pytest.raises(Exception) as ours:
        getattr(F, name)(ge.ones(3), *args, **kwargs)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


EXTREMES = [-1000.0, -50.0, -20.5, -1e-3, 0.0, 1e-3, 19.5, 20.5, 50.0, 1000.0]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("softplus", {}),
        ("softplus", {"beta": 2.0, "threshold": 5.0}),
        ("softplus", {"beta": 0.5}),
        ("logsigmoid", {}),
        ("silu", {}),
        ("mish", {}),
        ("elu", {}),
        ("selu", {}),
        ("celu", {"alpha": 0.5}),
        ("gelu", {}),
        ("gelu", {"approximate": "tanh"}),
        ("hardswish", {}),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_inputs_are_finite_and_match_torch(name: str, kwargs: dict, dtype: str) -> None:
    x = ge.tensor(np.array(EXTREMES, dtype=dtype), requires_grad=True)
    tx = torch.tensor(np.array(EXTREMES, dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow inside, even discarded
        out = getattr(F, name)(x, **kwargs)
        out.sum().backward()
    tout = getattr(TF, name)(tx, **kwargs)
    tout.sum().backward()
    assert out.dtype.name == dtype
    assert np.isfinite(out.detach().numpy()).all() and np.isfinite(x.grad.numpy()).all()
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


def test_functional_and_torch_namespaces() -> None:
    names = ["softplus", "gelu", "silu", "mish", "elu", "selu", "celu", "leaky_relu"]
    names += ["hardtanh", "relu6", "hardsigmoid", "hardswish", "logsigmoid", "threshold"]
    for name in names:
        assert hasattr(F, name), name
        assert hasattr(ge, name) == hasattr(torch, name), name
        assert hasattr(ge.Tensor, name) == hasattr(torch.Tensor, name), name


def test_inplace_leaky_relu_with_a_negative_slope_fails_in_backward_as_torch() -> None:
    errors = []
    for f, mk in ((TF, torch.tensor), (F, ge.tensor)):
        x = mk([-1.0, 2.0], requires_grad=True)
        y = f.leaky_relu(x * 1, -0.5, inplace=True)
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    x = ge.tensor([-1.0, 2.0], requires_grad=True)
    F.leaky_relu(x * 1, 0.5, inplace=True).sum().backward()  # a positive slope is fine
    assert x.grad.tolist() == [0.5, 1.0]
