"""layer_norm, group_norm and batch_norm beyond the op table's examples: float32 numbers, running
statistics over several steps, evaluation mode, second derivatives and PyTorch's errors."""

from __future__ import annotations

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

F = ge.functional
TF = torch.nn.functional
RNG = np.random.default_rng(3)


def pair(a: np.ndarray, grad: bool = True) -> tuple:
    return ge.tensor(a.copy(), requires_grad=grad), torch.tensor(a.copy(), requires_grad=grad)


def close(ours: ge.Tensor, theirs: torch.Tensor, tol: float = 1e-10) -> None:
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), tol, tol)


def same_error(fn) -> None:
    """``fn(module, tensor)`` raises the same exception type and message in gradd and torch."""
    with pytest.raises(Exception) as theirs:
        fn(TF, torch.tensor)
    with pytest.raises(Exception) as ours:
        fn(F, ge.tensor)
    assert type(ours.value) is type(theirs.value) or isinstance(ours.value, type(theirs.value))
    assert str(ours.value) == str(theirs.value)


CALLS = {
    "layer_norm": lambda f, x, w, b: f.layer_norm(x, x.shape[-2:], w, b, 1e-4),
    "group_norm": lambda f, x, w, b: f.group_norm(x.reshape(2, 6, -1), 3, w[:, 0], b[:, 0]),
    "batch_norm": lambda f, x, w, b: f.batch_norm(
        x.reshape(2, 6, -1), None, None, w[:, 0], b[:, 0], True
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_and_gradients_match_torch(name: str, dtype: type) -> None:
    a = RNG.standard_normal((2, 6, 4)).astype(dtype) * 3 + 1
    (x, tx), (w, tw), (b, tb) = (
        pair(a),
        pair(RNG.standard_normal((6, 4)).astype(dtype)),
        pair(RNG.standard_normal((6, 4)).astype(dtype)),
    )
    y, ty = CALLS[name](F, x, w, b), CALLS[name](TF, tx, tw, tb)
    tol = 1e-10 if dtype is np.float64 else 2e-5
    close(y, ty, tol)
    assert y.grad_fn.name() == ty.grad_fn.name()
    g = RNG.standard_normal(ty.shape).astype(dtype)
    y.backward(ge.tensor(g))
    ty.backward(torch.tensor(g))
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        close(ours.grad, theirs.grad, tol * 10)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 4, 5)])
@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_batch_norm_running_statistics(shape: tuple, momentum: float) -> None:
    (rm, trm), (rv, trv) = pair(np.zeros(3), False), pair(np.ones(3), False)
    (w, tw), (b, tb) = pair(RNG.standard_normal(3)), pair(RNG.standard_normal(3))
    for step in range(3):
        (x, tx) = pair(RNG.standard_normal(shape) * (step + 1) + step)
        y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=momentum)
        ty = TF.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=momentum)
        close(y, ty)
        close(rm, trm)
        close(rv, trv)  # updated with the unbiased variance
        assert rm._version == trm._version and rv._version == trv._version
    y, ty = F.batch_norm(x, rm, rv, w, b), TF.batch_norm(tx, trm, trv, tw, tb)  # evaluation
    close(y, ty)
    y.sum().backward()
    ty.sum().backward()
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        close(ours.grad, theirs.grad)
    close(rm, trm)


def test_batch_norm_eval_gradient_uses_the_statistics_of_its_forward() -> None:
    (x, tx) = pair(RNG.standard_normal((4, 3)))
    rm, rv = ge.tensor(RNG.standard_normal(3)), ge.tensor(RNG.random(3) + 0.5)
    expected = 1 / np.sqrt(rv.numpy() + 1e-5)
    y = F.batch_norm(x, rm, rv)
    F.batch_norm(ge.tensor(RNG.standard_normal((4, 3)) * 9), rm, rv, training=True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(expected, (4, 3)))


@pytest.mark.parametrize("name", sorted(CALLS))
def test_second_derivatives_match_torch(name: str) -> None:
    a = RNG.standard_normal((2, 6, 4))
    (x, tx), (w, tw), (b, tb) = pair(a), pair(RNG.standard_normal((6, 4))), pair(np.zeros((6, 4)))
    y, ty = CALLS[name](F, x, w, b), CALLS[name](TF, tx, tw, tb)
    (gx, gw), (tgx, tgw) = (
        ge.grad((y * y * y).sum(), [x, w], create_graph=True),
        torch.autograd.grad((ty * ty * ty).sum(), [tx, tw], create_graph=True),
    )
    close(gx, tgx)
    ge.backward([(gx * gx).sum() + gw.sum()])
    ((tgx * tgx).sum() + tgw.sum()).backward()
    close(x.grad, tx.grad, 1e-8)
    close(w.grad, tw.grad, 1e-8)


def test_optional_affine_parameters_have_no_edges() -> None:
    x = ge.tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    y = F.layer_norm(x, (3,), None, ge.tensor(np.ones(3), requires_grad=True))
    assert [n is None for n, _ in y.grad_fn.next_functions] == [False, True, False]


ERRORS = [
    lambda f, t: f.layer_norm(t(np.ones((2, 3, 4))), (5,)),
    lambda f, t: f.layer_norm(t(np.ones((2, 3, 4))), (2, 3, 4, 5)),
    lambda f, t: f.layer_norm(t(np.ones((2, 3, 4))), ()),
    lambda f, t: f.layer_norm(t(np.ones((2, 3, 4))), 4),
    lambda f, t: f.layer_norm(t(np.ones((2, 3, 4))), (4,), t(np.ones(3))),
    lambda f, t: f.layer_norm(t(np.ones((2, 3, 4))), (4,), None, t(np.ones(3))),
    lambda f, t: f.layer_norm(t(np.ones((2, 4), np.int64)), (4,)),
    lambda f, t: f.layer_norm(t(np.ones((2, 4), np.float32)), (4,), t(np.ones(4))),
    lambda f, t: f.group_norm(t(np.ones((2, 3, 4))), 2),
    lambda f, t: f.group_norm(t(np.ones((2, 3, 4))), 0),
    lambda f, t: f.group_norm(t(np.ones((2, 3, 4))), -1),
    lambda f, t: f.group_norm(t(np.ones(3)), 1),
    lambda f, t: f.group_norm(t(np.ones((2, 3, 4))), 3, t(np.ones(4))),
    lambda f, t: f.group_norm(t(np.ones((2, 4), np.int64)), 2),
    lambda f, t: f.batch_norm(t(np.ones((2, 3))), None, None),
    lambda f, t: f.batch_norm(t(np.ones((2, 3))), t(np.zeros(3)), None),
    lambda f, t: f.batch_norm(t(np.ones((2, 3))), t(np.zeros(3)), None, training=True),
    lambda f, t: f.batch_norm(t(np.ones((1, 3))), None, None, training=True),
    lambda f, t: f.batch_norm(t(np.ones((2, 3))), t(np.zeros(4)), t(np.ones(4))),
    lambda f, t: f.batch_norm(t(np.ones((2, 3))), t(np.zeros(3)), t(np.ones(3)), t(np.ones(2))),
    lambda f, t: f.batch_norm(t(np.ones(3)), t(np.zeros(3)), t(np.ones(3))),
    lambda f, t: f.batch_norm(t(np.ones(3)), None, None, training=True),
    lambda f, t: f.batch_norm(t(np.ones((2, 3))), t(np.zeros(3)), t(np.ones(3)), momentum=None),
    lambda f, t: f.batch_norm(t(np.ones((2, 3), np.float32)), t(np.zeros(3)), t(np.ones(3))),
    lambda f, t: f.batch_norm(t(np.ones((2, 3), np.int64)), None, None, training=True),
]


@pytest.mark.parametrize("fn", ERRORS, ids=range(len(ERRORS)))
def test_errors_are_pytorchs(fn) -> None:
    same_error(fn)
