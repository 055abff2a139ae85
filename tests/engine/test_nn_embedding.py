"""embedding against torch: values, gradients (padding_idx, scale_grad_by_freq), max_norm's in-place
renormalisation and version, errors; one_hot, normalize and cosine_similarity at their edges."""

from __future__ import annotations

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")

F = ge.functional
TF = torch.nn.functional
RNG = np.random.default_rng(5)
W = RNG.standard_normal((6, 3)) * 2
IDX = np.array([[0, 5, 2], [2, 2, 4]])


def close(ours: ge.Tensor, theirs: torch.Tensor) -> None:
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), 1e-10, 1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding_idx": 2},
        {"padding_idx": -1},
        {"scale_grad_by_freq": True},
        {"padding_idx": 0, "scale_grad_by_freq": True},
        {"max_norm": 1.0},
        {"max_norm": 1.5, "norm_type": 1.0},
        {"max_norm": 0.5, "norm_type": float("inf")},
    ],
)
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_embedding_matches_torch(kwargs: dict, index_dtype: type) -> None:
    w, tw = ge.tensor(W.copy(), requires_grad=True), torch.tensor(W.copy(), requires_grad=True)
    idx = IDX.astype(index_dtype)
    y = F.embedding(ge.tensor(idx), w, **kwargs)
    ty = TF.embedding(torch.tensor(idx), tw, **kwargs)
    close(y, ty)
    close(w, tw)  # max_norm renormalised the same rows in place
    assert w._version == tw._version
    assert y.grad_fn.name() == ty.grad_fn.name() == "EmbeddingBackward0"
    g = RNG.standard_normal(ty.shape)
    y.backward(ge.tensor(g))
    ty.backward(torch.tensor(g))
    close(w.grad, tw.grad)


def test_embedding_second_order_gradient_is_zero_as_torch() -> None:
    w = ge.tensor(W.copy(), requires_grad=True)
    (gw,) = ge.grad((F.embedding(ge.tensor(IDX), w) ** 2).sum(), [w], create_graph=True)
    (g2,) = ge.grad(gw.sum(), [w])
    np.testing.assert_allclose(
        g2.numpy(), np.bincount(IDX.ravel(), minlength=6)[:, None] * 2.0 * np.ones((6, 3))
    )


def test_max_norm_renormalises_under_no_grad_and_a_saved_weight_notices() -> None:
    w = ge.tensor(W.copy(), requires_grad=True)
    h = w * w  # saves w
    F.embedding(ge.tensor([1]), w, max_norm=0.1)
    assert w._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        h.sum().backward()


# Index values are checked on the CPU only: on a GPU reading them would sync every call.
BY_VALUE = pytest.mark.cpu_only("index values are checked on the CPU only")
ERRORS = [
    pytest.param(lambda f, t: f.embedding(t([6]), t(W)), marks=BY_VALUE),
    pytest.param(lambda f, t: f.embedding(t([-1]), t(W)), marks=BY_VALUE),
    lambda f, t: f.embedding(t([1.0]), t(W)),
    lambda f, t: f.embedding(t([1]), t(W[0])),
    lambda f, t: f.embedding(t([1]), t(W), padding_idx=6),
    lambda f, t: f.embedding(t([1]), t(W), padding_idx=-7),
    pytest.param(lambda f, t: f.embedding(t([9]), t(W), max_norm=1.0), marks=BY_VALUE),
]


@pytest.mark.parametrize("fn", ERRORS, ids=range(len(ERRORS)))
def test_embedding_errors_are_pytorchs(fn) -> None:
    with pytest.raises(Exception) as theirs:
        fn(TF, torch.tensor)
    with pytest.raises(Exception) as ours:
        fn(F, ge.tensor)
    assert isinstance(ours.value, type(theirs.value))
    assert str(ours.value) == str(theirs.value)


@pytest.mark.cpu_only("index values are checked on the CPU only (a GPU would sync per call)")
def test_out_of_range_indices_leave_the_weight_alone() -> None:
    w = ge.tensor(W.copy())
    with pytest.raises(IndexError, match="select"):
        F.embedding(ge.tensor([0, 7]), w, max_norm=0.1)
    assert w._version == 0 and np.array_equal(w.numpy(), W)


def test_sparse_gradients_are_refused_clearly() -> None:
    with pytest.raises(NotImplementedError, match="sparse=True"):
        F.embedding(ge.tensor([1]), ge.tensor(W), sparse=True)


# -- one_hot, normalize, cosine_similarity at their edges -------------------------------------

EDGES = [
    lambda f, t: f.one_hot(t([0, 2, 1])),
    lambda f, t: f.one_hot(t([0, 2]), 5),
    lambda f, t: f.one_hot(t(np.zeros((0,), np.int64)), 3),
    lambda f, t: f.one_hot(t(2), 4),
    lambda f, t: f.normalize(t([[3.0, 4.0], [0.0, 0.0]])),
    lambda f, t: f.normalize(t([[3.0, 4.0], [1.0, 0.0]]), p=1.0, dim=0),
    lambda f, t: f.normalize(t([3.0, -4.0]), p=float("inf"), dim=0, eps=10.0),
    lambda f, t: f.cosine_similarity(t([[1.0, 0.0], [0.0, 0.0]]), t([[1.0, 1.0], [2.0, 1.0]])),
    lambda f, t: f.cosine_similarity(t([1.0, 2.0, 3.0]), t([[1.0, 0.0, 1.0]]), dim=-1),
    lambda f, t: f.cosine_similarity(t([[1e-9, 0.0]]), t([[1e-9, 0.0]]), eps=1e-8),
]
EDGE_ERRORS = [
    pytest.param(lambda f, t: f.one_hot(t([0, 3]), 3), marks=BY_VALUE),
    pytest.param(lambda f, t: f.one_hot(t([-1, 0])), marks=BY_VALUE),
    lambda f, t: f.one_hot(t([1.0])),
    lambda f, t: f.normalize(t([1.0, 2.0]), dim=1),
    lambda f, t: f.cosine_similarity(t([[1.0, 2.0]]), t([[1.0, 2.0, 3.0]])),
]


@pytest.mark.parametrize("fn", EDGES, ids=range(len(EDGES)))
def test_edges_match_torch(fn) -> None:
    ours, theirs = fn(F, ge.tensor), fn(TF, torch.tensor)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), 1e-6, 1e-7)


@pytest.mark.parametrize("fn", EDGE_ERRORS, ids=range(len(EDGE_ERRORS)))
def test_edge_errors_match_torch(fn) -> None:
    with pytest.raises(Exception) as theirs:
        fn(TF, torch.tensor)
    with pytest.raises(Exception) as ours:
        fn(F, ge.tensor)
    assert isinstance(ours.value, type(theirs.value))
    assert str(ours.value) == str(theirs.value)
