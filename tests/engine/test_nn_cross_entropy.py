"""cross_entropy against torch: class weights, ignore_index, label_smoothing, probability targets,
(N, C, d1, ...) inputs, the legacy reduction arguments, float32, and PyTorch's errors."""

from __future__ import annotations

import warnings

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

F = ge.functional
TF = torch.nn.functional
RNG = np.random.default_rng(17)
LOGITS = RNG.standard_normal((5, 4)) * 2
LABELS = np.array([0, 3, 1, 3, 2])
SOFT = RNG.random((5, 4))
WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])

VARIANTS = [
    (LABELS, {}),
    (LABELS, {"weight": WEIGHT}),
    (LABELS, {"ignore_index": 3}),
    (LABELS, {"weight": WEIGHT, "ignore_index": 3, "reduction": "sum"}),
    (LABELS, {"label_smoothing": 0.2}),
    (LABELS, {"label_smoothing": 0.2, "weight": WEIGHT, "ignore_index": 1}),
    (LABELS, {"label_smoothing": 0.1, "reduction": "none", "weight": WEIGHT}),
    (LABELS, {"label_smoothing": 0.3, "reduction": "sum", "ignore_index": 0}),
    (SOFT, {}),
    (SOFT, {"weight": WEIGHT, "reduction": "sum"}),
    (SOFT, {"label_smoothing": 0.25, "reduction": "none"}),
    (SOFT, {"label_smoothing": 0.25, "weight": WEIGHT}),
]


@pytest.mark.parametrize(("target", "kw"), VARIANTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_and_gradients_match_torch(target: np.ndarray, kw: dict, dtype: type) -> None:
    x, tx = (
        ge.tensor(LOGITS.astype(dtype), requires_grad=True),
        torch.tensor(LOGITS.astype(dtype), requires_grad=True),
    )
    t = target.astype(dtype) if target.dtype.kind == "f" else target
    ours = {
        k: ge.tensor(v.astype(dtype)) if isinstance(v, np.ndarray) else v for k, v in kw.items()
    }
    theirs = {
        k: torch.tensor(v.astype(dtype)) if isinstance(v, np.ndarray) else v for k, v in kw.items()
    }
    y, ty = (
        F.cross_entropy(x, ge.tensor(t), **ours),
        TF.cross_entropy(tx, torch.tensor(t), **theirs),
    )
    tol = 1e-12 if dtype is np.float64 else 2e-6
    assert y.dtype.name == str(ty.dtype).removeprefix("torch.")
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), tol, tol)
    g = RNG.standard_normal(ty.shape).astype(dtype)
    y.backward(ge.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), tol * 10, tol)


@pytest.mark.parametrize("kw", [{}, {"reduction": "none"}, {"label_smoothing": 0.1}])
def test_spatial_inputs_match_torch(kw: dict) -> None:
    a, t = RNG.standard_normal((2, 3, 4, 2)), RNG.integers(0, 3, (2, 4, 2))
    t[0, 0, 0] = -100
    x, tx = ge.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.cross_entropy(x, ge.tensor(t), **kw), TF.cross_entropy(tx, torch.tensor(t), **kw)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), 1e-12, 1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), 1e-12, 1e-12)


def test_legacy_reduction_arguments_warn_as_torch() -> None:
    x, t = ge.tensor(LOGITS), ge.tensor(LABELS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = F.cross_entropy(x, t, None, False)
        ty = TF.cross_entropy(torch.tensor(LOGITS), torch.tensor(LABELS), None, False)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), 1e-12)
    assert [str(w.message) for w in caught][:1] == [str(w.message) for w in caught][1:]


ERRORS = [
    lambda f, t: f.cross_entropy(t(LOGITS), t(LABELS), label_smoothing=1.5),
    lambda f, t: f.cross_entropy(t(LOGITS), t(RNG.random((5, 3)))),
    lambda f, t: f.cross_entropy(t(LOGITS), t(SOFT), ignore_index=1),
    lambda f, t: f.cross_entropy(t(LOGITS), t(SOFT), weight=t(np.ones(3))),
    lambda f, t: f.cross_entropy(t(LOGITS), t(LABELS), weight=t(np.ones(3))),
    lambda f, t: f.cross_entropy(t(LOGITS), t(LABELS), weight=t(np.ones(4, np.float32))),
    lambda f, t: f.cross_entropy(t(LOGITS), t(LABELS.astype(np.int32))),
    lambda f, t: f.cross_entropy(t(LOGITS), t(LABELS), reduction="avg"),
    lambda f, t: f.cross_entropy(t(np.ones((2, 3, 4))), t(np.zeros((2, 3), np.int64))),
    lambda f, t: f.nll_loss(t(LOGITS), t(LABELS), weight=t(np.ones(3))),
]


@pytest.mark.parametrize("fn", ERRORS, ids=range(len(ERRORS)))
def test_errors_are_pytorchs(fn) -> None:
    with pytest.raises(Exception) as theirs:
        fn(TF, torch.tensor)
    with pytest.raises(Exception) as ours:
        fn(F, ge.tensor)
    assert isinstance(ours.value, type(theirs.value))
    assert str(ours.value) == str(theirs.value)


@pytest.mark.cpu_only("target values are checked on the CPU only (a GPU would sync per call)")
def test_out_of_range_target_is_torchs_index_error() -> None:
    for target in ([0, 4, 1, 0, 0], [0, -1, 1, 0, 0]):
        with pytest.raises(IndexError) as theirs:
            TF.cross_entropy(torch.tensor(LOGITS), torch.tensor(target), label_smoothing=0.1)
        with pytest.raises(IndexError) as ours:
            F.cross_entropy(ge.tensor(LOGITS), ge.tensor(target), label_smoothing=0.1)
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 3, 4, 2), (2, 3, 2, 1, 2)])
@pytest.mark.parametrize("kw", [{}, {"reduction": "none"}, {"weight": "w", "reduction": "sum"}])
def test_nll_loss_of_spatial_inputs_matches_torch(shape: tuple, kw: dict) -> None:
    a = RNG.standard_normal(shape)
    t = RNG.integers(0, 3, (shape[0], *shape[2:]))
    t.flat[0] = -100
    w = np.array([0.5, 2.0, 1.5])
    ours = {k: ge.tensor(w) if v == "w" else v for k, v in kw.items()}
    theirs = {k: torch.tensor(w) if v == "w" else v for k, v in kw.items()}
    x, tx = ge.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = F.nll_loss(x, ge.tensor(t), **ours), TF.nll_loss(tx, torch.tensor(t), **theirs)
    assert y.grad_fn.name() == ty.grad_fn.name()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), 1e-12, 1e-12)
    g = RNG.standard_normal(ty.shape)
    y.backward(ge.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), 1e-12, 1e-12)


NLL_ERRORS = [
    lambda f, t: f.nll_loss(t(np.ones((2, 3, 4))), t(np.zeros((2, 3), np.int64))),
    lambda f, t: f.nll_loss(t(np.ones((2, 3, 4))), t(np.zeros((3, 4), np.int64))),
    lambda f, t: f.nll_loss(t(np.ones((2, 3, 4, 5))), t(np.zeros((2, 4, 6), np.int64))),
    lambda f, t: f.nll_loss(t(1.0), t(0)),
]


@pytest.mark.parametrize("fn", NLL_ERRORS, ids=range(len(NLL_ERRORS)))
def test_nll_loss_errors_are_pytorchs(fn) -> None:
    with pytest.raises(Exception) as theirs:
        fn(TF, torch.tensor)
    with pytest.raises(Exception) as ours:
        fn(F, ge.tensor)
    assert isinstance(ours.value, type(theirs.value))
    assert str(ours.value) == str(theirs.value)
