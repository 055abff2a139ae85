"""pad against torch: every mode's values and gradients (negative pads too), node names, second
derivatives, and PyTorch's errors for hostile pads."""

from __future__ import annotations

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

F = ge.functional
TF = torch.nn.functional
RNG = np.random.default_rng(11)

CASES = [
    ((2, 3), (1, 2), "constant"),
    ((2, 3, 4), (-1, 2, 1, -2), "constant"),
    ((1, 2, 2, 3), (1, 1, 0, 2, 1, 0), "constant"),
    ((3, 4), (2, 3), "reflect"),
    ((2, 3, 4), (-1, 2), "reflect"),
    ((1, 2, 3, 4), (1, 3, 2, 1), "reflect"),
    ((1, 2, 3, 4, 5), (1, 2, 2, 1, 0, 1), "reflect"),
    ((3, 4), (5, 1), "replicate"),
    ((2, 3, 4), (-1, 2), "replicate"),
    ((2, 3, 4), (2, 0, 3, 1), "replicate"),
    ((1, 2, 3, 4, 5), (1, 2, 2, 1, 3, 1), "replicate"),
    ((2, 3, 4), (-1, 2), "circular"),
    ((2, 3, 4), (4, 4), "circular"),
    ((1, 2, 3, 4), (1, 2, 3, 1), "circular"),
    ((1, 1, 2, 3, 4), (1, 1, 2, 0, 1, 2), "circular"),
]


@pytest.mark.parametrize(("shape", "pads", "mode"), CASES)
def test_values_gradients_and_node_match_torch(shape: tuple, pads: tuple, mode: str) -> None:
    a = RNG.standard_normal(shape)
    x, tx = ge.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.pad(x, pads, mode), TF.pad(tx, pads, mode)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    if mode != "circular":  # torch records circular padding as slice copies (CopySlices)
        assert y.grad_fn.name() == ty.grad_fn.name()
    g = RNG.standard_normal(ty.shape)
    y.backward(ge.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), 1e-12, 1e-12)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_second_order_nodes_match_torch(mode: str) -> None:
    a = RNG.standard_normal((1, 2, 5))
    x, tx = ge.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    g = RNG.standard_normal((1, 2, 8))
    gg, tgg = ge.tensor(g, requires_grad=True), torch.tensor(g, requires_grad=True)
    (gx,) = ge.grad(F.pad(x, (2, 1), mode), [x], [gg], create_graph=True)
    (tgx,) = torch.autograd.grad(TF.pad(tx, (2, 1), mode), [tx], [tgg], create_graph=True)
    assert gx.grad_fn.name() == tgx.grad_fn.name()
    np.testing.assert_allclose(gx.detach().numpy(), tgx.detach().numpy(), 1e-12)
    (gx * gx).sum().backward()
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(gg.grad.numpy(), tgg.grad.numpy(), 1e-12)


def test_constant_value_and_integer_inputs() -> None:
    for dtype in (np.int64, np.float32, np.bool_):
        a = (RNG.standard_normal((2, 3)) > 0).astype(dtype)
        ours = F.pad(ge.tensor(a), (1, 1), value=1.5 if dtype is np.float32 else 1)
        theirs = TF.pad(torch.tensor(a), (1, 1), value=1.5 if dtype is np.float32 else 1)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


X3 = np.ones((2, 3, 4))
ERRORS = [
    lambda f, t: f.pad(t(X3), (1,)),
    lambda f, t: f.pad(t(X3), (1, 1, 1, 1, 1, 1, 1, 1)),
    lambda f, t: f.pad(t(X3), (-3, -3)),
    lambda f, t: f.pad(t(X3), (1, 1), mode="foo"),
    lambda f, t: f.pad(t(X3), (1, 1), mode="reflect", value=2.0),
    lambda f, t: f.pad(t(X3), (4, 4), mode="reflect"),
    lambda f, t: f.pad(t(np.ones((1, 2, 3, 4))), (1, 1, 3, 1), mode="reflect"),
    lambda f, t: f.pad(t(np.ones((1, 2, 2, 3, 4))), (1, 1, 1, 1, 2, 2), mode="reflect"),
    lambda f, t: f.pad(t(X3), (1, 1, 1, 1, 1, 1), mode="reflect"),
    lambda f, t: f.pad(t(np.ones(4)), (1, 1), mode="replicate"),
    lambda f, t: f.pad(t(np.ones((2, 3, 4, 5, 6, 7))), (1, 1), mode="replicate"),
    lambda f, t: f.pad(t(np.ones((3, 4))), (1, 1, 1, 1), mode="circular"),
    lambda f, t: f.pad(t(X3), (), mode="reflect"),
    lambda f, t: f.pad(t(X3), (5, 5), mode="circular"),
    lambda f, t: f.pad(t(np.ones((2, 3, 0))), (1, 1), mode="circular"),
    lambda f, t: f.pad(t(np.ones((2, 0, 4))), (1, 1), mode="reflect"),
    lambda f, t: f.pad(t(np.ones((2, 3, 0))), (1, 1), mode="replicate"),
    lambda f, t: f.pad(t(X3), (-5, 1), mode="reflect"),
    lambda f, t: f.pad(t(X3), (-5, 1), mode="replicate"),
    lambda f, t: f.pad(t(2.0), (1, 1)),
]


@pytest.mark.parametrize("fn", ERRORS, ids=range(len(ERRORS)))
def test_errors_are_pytorchs(fn) -> None:
    with pytest.raises(Exception) as theirs:
        fn(TF, torch.tensor)
    with pytest.raises(Exception) as ours:
        fn(F, ge.tensor)
    assert isinstance(ours.value, type(theirs.value))
    assert str(ours.value) == str(theirs.value)


def test_a_huge_pad_is_refused_before_it_is_allocated() -> None:
    from gradd.engine.memory_meter import MemoryMeter, metering

    x = ge.tensor(np.ones((2, 3)))
    with metering(MemoryMeter(1 << 20)), pytest.raises(MemoryError, match="constant_pad_nd"):
        F.pad(x, (2**40, 1))
