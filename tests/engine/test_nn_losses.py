"""Losses beyond the op table's examples: PyTorch's errors and warnings, edge values, the
forms PyTorch records differently (smooth_l1_loss with beta=0, weighted l1/huber), one_hot."""

from __future__ import annotations

import warnings

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

F = ge.functional
TF = torch.nn.functional


def both(fn, *arrays: np.ndarray, grad: tuple = ()) -> tuple:
    """``fn(F, *tensors)`` in gradd and torch (tensors at the indices in ``grad`` need grad)."""
    ours = [ge.tensor(a.copy(), requires_grad=i in grad) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a.copy(), requires_grad=i in grad) for i, a in enumerate(arrays)]
    return (fn(F, *ours), ours), (fn(TF, *theirs), theirs)


def same_error(fn, *arrays: np.ndarray) -> None:
    with pytest.raises(Exception) as theirs:
        fn(TF, *(torch.tensor(a) for a in arrays))
    with pytest.raises(Exception) as ours:
        fn(F, *(ge.tensor(a) for a in arrays))
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


X = np.array([[0.2, 0.7, 0.5], [0.9, 0.1, 0.4]])
T = np.array([[0.0, 1.0, 0.5], [1.0, 0.3, 0.0]])
V = np.array([0.5, 1.0, 0.25])


@pytest.mark.parametrize(
    "fn",
    [
        lambda f, x, t: f.binary_cross_entropy(x, t, reduction="avg"),
        lambda f, x, t: f.binary_cross_entropy_with_logits(x, t, reduction="avg"),
        lambda f, x, t: f.l1_loss(x, t, reduction="batchmean"),
        lambda f, x, t: f.smooth_l1_loss(x, t, reduction="avg"),
        lambda f, x, t: f.huber_loss(x, t, reduction="avg"),
        lambda f, x, t: f.kl_div(x, t, reduction="avg"),
        lambda f, x, t: f.binary_cross_entropy(x, t[0]),
        lambda f, x, t: f.binary_cross_entropy_with_logits(x, t[:, :2]),
        lambda f, x, t: f.binary_cross_entropy(x, t.float()),
        lambda f, x, t: f.binary_cross_entropy(x * 2, t),
        lambda f, x, t: f.binary_cross_entropy(x - 1, t),
        lambda f, x, t: f.binary_cross_entropy(x, t + 1),
        lambda f, x, t: f.binary_cross_entropy(x, t, weight=x[0, :2]),
        lambda f, x, t: f.smooth_l1_loss(x, t, beta=-1.0),
        lambda f, x, t: f.huber_loss(x, t, delta=0.0),
        lambda f, x, t: f.l1_loss(x, t, weight=x[0]),
        lambda f, x, t: f.huber_loss(x, t, weight=x[0]),
        lambda f, x, t: f.l1_loss(x, t, reduction="avg", weight=x),
    ],
)
@pytest.mark.cpu_only("value checks run on the CPU only (on a GPU they would wait for it)")
def test_bad_arguments_fail_as_in_torch(fn) -> None:
    same_error(fn, X, T)


@pytest.mark.parametrize(
    ("values", "num_classes"),
    [([0, 3], 3), ([0, -1], -1), ([], -1), ([0, 1], -2), ([0.0, 1.0], -1), ([0, 1], 0)],
)
@pytest.mark.cpu_only("value checks run on the CPU only (on a GPU they would wait for it)")
def test_one_hot_errors_as_in_torch(values: list, num_classes: int) -> None:
    with pytest.raises(RuntimeError) as theirs:
        TF.one_hot(
            torch.tensor(
                values,
                dtype=torch.float64
                if values[:1] == [0.0] and isinstance(values[0], float)
                else torch.int64,
            ),
            num_classes,
        )
    with pytest.raises(RuntimeError) as ours:
        F.one_hot(
            ge.tensor(
                values,
                dtype="float64"
                if values[:1] == [0.0] and isinstance(values[0], float)
                else "int64",
            ),
            num_classes,
        )
    assert str(ours.value) == str(theirs.value)


def test_one_hot_values_and_dtype() -> None:
    for values, n in [([0, 2, 1], -1), ([[1, 0], [3, 3]], 5), (2, 3), ([], 4)]:
        ours = F.one_hot(ge.tensor(values, dtype="int64"), n)
        theirs = TF.one_hot(torch.tensor(values, dtype=torch.int64), n)
        assert ours.dtype is ge.int64 and not ours.requires_grad
        assert ours.shape == tuple(theirs.shape) and ours.tolist() == theirs.tolist()


def test_bce_at_zero_and_one_clamps_its_logs_as_torch() -> None:
    x = np.array([0.0, 1.0, 0.5, 1.0, 0.0])
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    for reduction in ("none", "sum", "mean"):
        (ours, oi), (theirs, ti) = both(
            lambda f, a, b, r=reduction: f.binary_cross_entropy(a, b, reduction=r),
            x,
            t,
            grad=(0, 1),
        )
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # log(0) in the target's gradient
            ours.sum().backward()
        theirs.sum().backward()
        for a, b in zip(oi, ti):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("pos_weight", [None, np.array([2.0, 0.5, 1.0, 3.0, 1.0])])
def test_bce_with_logits_is_finite_for_huge_logits(pos_weight: np.ndarray | None) -> None:
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    kw = {}
    for f, mk in ((F, ge.tensor), (TF, torch.tensor)):
        kw[f] = {} if pos_weight is None else {"pos_weight": mk(pos_weight)}
    (ours, oi), (theirs, ti) = both(
        lambda f, a, b: f.binary_cross_entropy_with_logits(a, b, reduction="sum", **kw[f]),
        x,
        t,
        grad=(0, 1),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow inside
        ours.backward()
    theirs.backward()
    assert np.isfinite(ours.item())
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)
    for a, b in zip(oi, ti):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "fn",
    [
        lambda f, x, t, w: f.smooth_l1_loss(x, t, beta=0.0),
        lambda f, x, t, w: f.smooth_l1_loss(x, t, reduction="sum", beta=0.0),
        lambda f, x, t, w: f.l1_loss(x, t, weight=w),
        lambda f, x, t, w: f.l1_loss(x, t, reduction="sum", weight=w),
        lambda f, x, t, w: f.huber_loss(x, t, weight=w),
        lambda f, x, t, w: f.huber_loss(x, t, reduction="none", delta=0.3, weight=w),
    ],
)
def test_forms_torch_records_in_other_ops(fn) -> None:
    x = np.array([[0.2, -1.7, 0.5], [0.9, 0.1, -0.4]])
    w = np.array([[1.0, 2.0, 0.5], [0.0, 3.0, 1.0]])
    (ours, oi), (theirs, ti) = both(fn, x, T, w, grad=(0, 1))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    names = []
    for out in (ours, theirs):
        node, chain = out.grad_fn, []
        while node is not None and not node.name().endswith("AccumulateGrad"):
            chain.append(node.name())
            node = node.next_functions[0][0]
        names.append(chain)
    assert names[0] == names[1]
    ours.sum().backward()
    theirs.sum().backward()
    for a, b in zip(oi[:2], ti[:2]):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


def test_size_and_mean_warnings_as_in_torch() -> None:
    a, b = ge.zeros(3, 1), ge.zeros(3)
    for fn in (F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.mse_loss):
        with pytest.warns(UserWarning, match=r"Using a target size \(\(3,\)\) that is different"):
            fn(a, b)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(a, a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(a, a, reduction="batchmean")
        F.l1_loss(b, b)


def test_kl_div_batchmean_of_a_scalar_is_its_sum() -> None:
    (ours, _), (theirs, _) = both(
        lambda f, x, t: f.kl_div(x, t, reduction="batchmean"), np.array(-0.5), np.array(0.3)
    )
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)


def _chain(out) -> list:
    names, stack = [], [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node.name().endswith("AccumulateGrad"):
            continue
        names.append(node.name())
        stack.extend(n for n, _ in node.next_functions)
    return names


@pytest.mark.parametrize(
    "fn",
    [
        lambda f, a, b: f.normalize(a),
        lambda f, a, b: f.normalize(a, p=3.0, dim=0),
        lambda f, a, b: f.cosine_similarity(a, b),
        lambda f, a, b: f.cosine_similarity(a, b[:1]),  # broadcast: torch expands both
        lambda f, a, b: f.cosine_similarity(a, b, dim=0, eps=0.5),
    ],
)
def test_normalize_and_cosine_similarity_with_zero_rows_match_torch(fn) -> None:
    a = np.array([[0.0, 0.0, 0.0], [0.3, -1.2, 0.5]])
    b = np.array([[0.5, 0.1, -0.2], [0.0, 0.0, 0.0]])
    (ours, oi), (theirs, ti) = both(fn, a, b, grad=(0, 1))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    assert _chain(ours) == _chain(theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 0/0 inside
        ours.sum().backward()
    theirs.sum().backward()
    for x, y in zip(oi, ti):
        assert (x.grad is None) == (y.grad is None)
        if x.grad is not None:
            np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "fn",
    [
        lambda f, a, b: f.normalize(a[0]),
        lambda f, a, b: f.normalize(a, dim=-3),
        lambda f, a, b: f.cosine_similarity(a, b, dim=2),
        lambda f, a, b: f.cosine_similarity(a, b[:, :2]),
    ],
)
def test_normalize_and_cosine_similarity_errors_as_in_torch(fn) -> None:
    same_error(fn, X, T)
