"""``s.autograd.functional`` (jacobian, hessian, vjp, jvp, vhp, hvp) against PyTorch: values,
result structures (a Tensor, or tuples following the inputs and outputs), strict mode and
argument errors, embedded and on a server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradd
import pytest

torch = pytest.importorskip("torch")


def structure(x: Any) -> Any:
    """Nested tuples of [shape, values, requires_grad] for tensors: what is compared."""
    if isinstance(x, tuple):
        return tuple(structure(e) for e in x)
    if x is None:
        return None
    return [tuple(x.shape), x.tolist(), x.requires_grad]


def close(a: Any, b: Any) -> None:
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            close(x, y)
        return
    if a is None:
        assert b is None
        return
    assert a[0] == b[0] and a[2] == b[2], (a, b)
    assert torch.allclose(
        torch.tensor(a[1], dtype=torch.float64), torch.tensor(b[1], dtype=torch.float64)
    ), (a, b)


def both(s: gradd.Session, run: Callable[[Any, Callable], Any]) -> None:
    """``run(lib, t)`` with PyTorch and with the session (``t`` makes float64 tensors): the
    same structures and numbers."""

    def t_torch(data: Any, rg: bool = False) -> Any:
        return torch.tensor(data, dtype=torch.float64, requires_grad=rg)

    def t_gradd(data: Any, rg: bool = False) -> Any:
        return s.tensor(data, dtype=s.float64, requires_grad=rg)

    close(structure(run(s, t_gradd)), structure(run(torch, t_torch)))


def cube(x: Any) -> Any:
    return x**3


def pair(x: Any, y: Any) -> Any:
    return x * y, (x * x).sum() + y.sum()


def scalar(x: Any, y: Any) -> Any:
    return (x * x * y).sum() + (y**3).sum()


@pytest.mark.parametrize("create_graph", [False, True])
def test_jacobian_structures_and_values(session: gradd.Session, create_graph: bool) -> None:
    X, Y = [[1.0, 2.0], [3.0, -1.0]], [[0.5, 1.5], [2.0, 1.0]]

    def run(lib: Any, t: Callable) -> Any:
        f = lib.autograd.functional
        return (
            f.jacobian(cube, t([1.0, 2.0, 3.0]), create_graph=create_graph),
            f.jacobian(pair, (t(X), t(Y)), create_graph=create_graph),
            f.jacobian(cube, (t([1.0, -2.0]),), create_graph=create_graph),
            f.jacobian(lambda x: (x.sum(), x * 2), t(X), create_graph=create_graph),
            f.jacobian(lambda x, y: x * 2, (t([1.0]), t([2.0])), create_graph=create_graph),
            f.jacobian(cube, t([1.0, 2.0]), vectorize=True),
            f.jacobian(cube, t([1.0, 2.0]), vectorize=True, strategy="forward-mode"),
        )

    both(session, run)


def test_hessian_structures_and_values(session: gradd.Session) -> None:
    def run(lib: Any, t: Callable) -> Any:
        f = lib.autograd.functional
        return (
            f.hessian(lambda x: (x**3).sum(), t([1.0, 2.0, -1.0])),
            f.hessian(scalar, (t([1.0, 2.0]), t([3.0, 0.5]))),
            f.hessian(lambda x: (x**3).sum(), t([1.0, 2.0]), create_graph=True),
            f.hessian(lambda x: (x * x).sum(), (t([2.0]),)),
        )

    both(session, run)


@pytest.mark.parametrize("create_graph", [False, True])
def test_products(session: gradd.Session, create_graph: bool) -> None:
    def run(lib: Any, t: Callable) -> Any:
        f = lib.autograd.functional
        x, y, v = t([1.0, 2.0]), t([3.0, -1.0]), t([0.5, 2.0])
        kw = {"create_graph": create_graph}
        return (
            f.vjp(cube, x, v, **kw),
            f.vjp(lambda x: (x * x).sum(), x, **kw),
            f.vjp(pair, (x, y), (v, t(1.0)), **kw),
            f.jvp(cube, x, v, **kw),
            f.jvp(pair, (x, y), (v, v), **kw),
            f.jvp(cube, t([2.0]), **kw),
            f.vhp(scalar, (x, y), (v, v), **kw),
            f.hvp(scalar, (x, y), (v, v), **kw),
            f.hvp(lambda x: (x**4).sum(), x, v, **kw),
            f.vhp(lambda x: (x**4).sum(), t(2.0), **kw),
        )

    both(session, run)


def test_functions_independent_of_an_input_give_zeros(session: gradd.Session) -> None:
    def run(lib: Any, t: Callable) -> Any:
        f = lib.autograd.functional
        x, y = t([1.0, 2.0]), t([3.0])
        return (
            f.jacobian(lambda x, y: x * 2, (x, y)),
            f.vjp(lambda x, y: (x * 2).sum(), (x, y)),
            f.hessian(lambda x, y: (x**3).sum(), (x, y)),
        )

    both(session, run)


def errors(s: gradd.Session, call: Callable[[Any, Callable], Any]) -> None:
    """``call`` raises the same exception type and message with PyTorch and the session."""

    def t_torch(data: Any) -> Any:
        return torch.tensor(data, dtype=torch.float64)

    def t_gradd(data: Any) -> Any:
        return s.tensor(data, dtype=s.float64)

    with pytest.raises(Exception) as expected:
        call(torch, t_torch)
    with pytest.raises(expected.type) as got:
        call(s, t_gradd)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, t: lib.autograd.functional.vjp(cube, t([1.0, 2.0])),
        lambda lib, t: lib.autograd.functional.jvp(cube, t([1.0, 2.0])),
        lambda lib, t: lib.autograd.functional.hvp(lambda x: x.sum(), t([1.0, 2.0])),
        lambda lib, t: lib.autograd.functional.vhp(lambda x: x.sum(), (t([1.0]), t([2.0]))),
        lambda lib, t: lib.autograd.functional.vjp(cube, t([1.0, 2.0]), (t([1.0]), t([1.0]))),
        lambda lib, t: lib.autograd.functional.vjp(pair, (t([1.0]), t([2.0])), (t([1.0]),)),
        lambda lib, t: lib.autograd.functional.jvp(cube, t([1.0, 2.0]), t([1.0])),
        lambda lib, t: lib.autograd.functional.jvp(pair, (t([1.0]), t([2.0])), (t([1.0]), t(1.0))),
        lambda lib, t: lib.autograd.functional.jacobian(cube, [t([1.0])]),
        lambda lib, t: lib.autograd.functional.jacobian(cube, (t([1.0]), 2.0)),
        lambda lib, t: lib.autograd.functional.jacobian(lambda x: 3.0, t([1.0])),
        lambda lib, t: lib.autograd.functional.jacobian(cube, t([1.0]), strategy="sideways"),
        lambda lib, t: lib.autograd.functional.jacobian(
            cube, t([1.0]), create_graph=True, strategy="forward-mode"
        ),
        lambda lib, t: lib.autograd.functional.jacobian(cube, t([1.0]), strategy="forward-mode"),
        lambda lib, t: lib.autograd.functional.jacobian(
            cube, t([1.0]), strict=True, vectorize=True
        ),
        lambda lib, t: lib.autograd.functional.hessian(cube, t([1.0, 2.0])),
        lambda lib, t: lib.autograd.functional.hessian(lambda x: (x, x), t([1.0])),
        lambda lib, t: lib.autograd.functional.hvp(
            pair, (t([1.0]), t([2.0])), (t([1.0]), t([1.0]))
        ),
        lambda lib, t: lib.autograd.functional.hessian(
            cube, t([1.0]), outer_jacobian_strategy="up"
        ),
    ],
)
def test_argument_errors(session: gradd.Session, call: Callable) -> None:
    errors(session, call)


@pytest.mark.parametrize(
    "call",
    [
        # an output that does not depend on the input
        lambda lib, t: lib.autograd.functional.jacobian(lambda x: t([1.0]), t([1.0]), strict=True),
        # an input the output does not depend on
        lambda lib, t: lib.autograd.functional.jacobian(
            lambda x, y: x * 2, (t([1.0]), t([1.0])), strict=True
        ),
        lambda lib, t: lib.autograd.functional.vjp(
            lambda x, y: (x * 2).sum(), (t([1.0]), t([1.0])), strict=True
        ),
        # linear: its jacobian does not depend on the input
        lambda lib, t: lib.autograd.functional.hessian(lambda x: x.sum(), t([1.0]), strict=True),
        lambda lib, t: lib.autograd.functional.jvp(
            lambda x, y: x * 2, (t([1.0]), t([1.0])), (t([1.0]), t([1.0])), strict=True
        ),
        lambda lib, t: lib.autograd.functional.vhp(
            lambda x: (x * 2).sum(), t([1.0]), t([1.0]), strict=True
        ),
        lambda lib, t: lib.autograd.functional.hvp(
            lambda x: (x * 2).sum(), t([1.0]), t([1.0]), strict=True
        ),
        lambda lib, t: lib.autograd.functional.jacobian(
            lambda x: x * 2, t([1.0]), strict=True, create_graph=True
        ),
    ],
)
def test_strict_mode_errors(session: gradd.Session, call: Callable) -> None:
    errors(session, call)


def test_results_leave_the_inputs_alone(session: gradd.Session) -> None:
    x = session.tensor([1.0, 2.0], requires_grad=True)
    jac = session.autograd.functional.jacobian(cube, x)
    assert not jac.requires_grad and jac.grad_fn is None and x.grad is None
    jac = session.autograd.functional.jacobian(cube, x, create_graph=True)
    assert jac.requires_grad
    (g,) = session.autograd.grad(jac.sum(), x)
    assert g.tolist() == [6.0, 12.0]  # d/dx sum(diag(3x^2)) = 6x
