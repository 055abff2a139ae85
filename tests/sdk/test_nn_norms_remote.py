"""Normalisation, embedding, padding and attention through the SDK: embedded and on a server,
PyTorch's values, gradients, graphs, running statistics and errors."""

from __future__ import annotations

import gradd
import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 3, 5))
W3, B3 = RNG.standard_normal(3), RNG.standard_normal(3)
W5, B5 = RNG.standard_normal(5), RNG.standard_normal(5)


def _pair(s: gradd.Session, a: np.ndarray, grad: bool = True) -> tuple:
    return s.tensor(a.copy(), requires_grad=grad), torch.tensor(a.copy(), requires_grad=grad)


def _close(ours: object, theirs: object) -> None:
    np.testing.assert_allclose(
        np.asarray(ours.detach().numpy()), theirs.detach().numpy(), 1e-10, 1e-12
    )


def test_layer_norm_values_grads_graph(session: gradd.Session) -> None:
    F = session.functional
    (x, tx), (w, tw), (b, tb) = _pair(session, X), _pair(session, W5), _pair(session, B5)
    y, ty = F.layer_norm(x, (5,), w, b), TF.layer_norm(tx, (5,), tw, tb)
    assert y.grad_fn.name() == "NativeLayerNormBackward0"
    _close(y, ty)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        _close(ours.grad, theirs.grad)


def test_group_norm_without_affine(session: gradd.Session) -> None:
    x, tx = _pair(session, RNG.standard_normal((2, 4, 3)))
    y, ty = session.functional.group_norm(x, 2), TF.group_norm(tx, 2)
    assert y.grad_fn.name() == "NativeGroupNormBackward0"
    _close(y, ty)
    y.pow(3).sum().backward()
    ty.pow(3).sum().backward()
    _close(x.grad, tx.grad)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 2, 2)])
def test_batch_norm_training_updates_running_stats(session: gradd.Session, shape: tuple) -> None:
    F = session.functional
    a = RNG.standard_normal(shape)
    (x, tx), (w, tw), (b, tb) = _pair(session, a), _pair(session, W3), _pair(session, B3)
    rm, trm = _pair(session, np.zeros(3), grad=False)
    rv, trv = _pair(session, np.ones(3), grad=False)
    for _ in range(2):
        y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2)
        ty = TF.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.2)
    assert y.grad_fn.name() == "NativeBatchNormBackward0"
    assert rm._version == trm._version and rv._version == trv._version
    _close(y, ty)
    _close(rm, trm)
    _close(rv, trv)
    (y.sin()).sum().backward()
    (ty.sin()).sum().backward()
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        _close(ours.grad, theirs.grad)
    e, te = F.batch_norm(x, rm, rv, w, b), TF.batch_norm(tx, trm, trv, tw, tb)
    _close(e, te)
    _close(rm, trm)  # evaluation reads the running statistics, never writes them


def test_norm_errors(session: gradd.Session) -> None:
    F = session.functional
    x = session.tensor(X)
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[4\], expected input"):
        F.layer_norm(x, (4,))
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(x, 2)
    with pytest.raises(RuntimeError, match="running_mean must be defined in evaluation mode"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        F.batch_norm(session.tensor(np.ones((1, 3))), None, None, training=True)
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 4"):
        F.batch_norm(x, session.zeros(4), session.ones(4))
    with pytest.raises(TypeError, match="normalized_shape"):
        F.layer_norm(x, 5)


def test_embedding_max_norm_moves_versions_on_both_sides(session: gradd.Session) -> None:
    F = session.functional
    a = RNG.standard_normal((5, 3)) * 2
    (w, tw) = _pair(session, a)
    idx = np.array([[1, 4], [1, 0]])
    y = F.embedding(session.tensor(idx), w, padding_idx=0, max_norm=1.0)
    ty = TF.embedding(torch.tensor(idx), tw, padding_idx=0, max_norm=1.0)
    assert w._version == tw._version == 1
    assert y.grad_fn.name() == "EmbeddingBackward0"
    _close(y, ty)
    _close(w, tw)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    _close(w.grad, tw.grad)


@pytest.mark.cpu_only("index values are checked on the CPU only (a GPU would sync per call)")
def test_embedding_index_out_of_range_is_an_index_error(session: gradd.Session) -> None:
    w = session.tensor(np.ones((4, 2)))
    with pytest.raises(IndexError, match="index out of range in self") as info:
        session.functional.embedding(session.tensor([1, 4]), w).tolist()
    if type(session).__name__ == "RemoteSession":  # found by the server: a bad argument
        assert info.value.code.name == "INVALID_ARGUMENT"


def test_embedding_refuses_sparse(session: gradd.Session) -> None:
    with pytest.raises(NotImplementedError, match="sparse=True"):
        session.functional.embedding(session.tensor([1]), session.ones(3, 2), sparse=True)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_remote(session: gradd.Session, mode: str) -> None:
    x, tx = _pair(session, RNG.standard_normal((1, 2, 3, 4)))
    y, ty = session.functional.pad(x, (1, 2, 2, -1), mode), TF.pad(tx, (1, 2, 2, -1), mode)
    _close(y, ty)
    if mode != "circular":
        assert y.grad_fn.name() == ty.grad_fn.name()
    y.pow(2).sum().backward()
    ty.pow(2).sum().backward()
    _close(x.grad, tx.grad)
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        session.functional.pad(x, (1,), mode)


@pytest.mark.parametrize("kind", ["mask", "causal"])
def test_scaled_dot_product_attention_remote(session: gradd.Session, kind: str) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    arrays = [RNG.standard_normal(s) for s in ((1, 4, 3, 4), (1, 2, 5, 4), (1, 2, 5, 2))]
    mask = RNG.random((3, 5)) > 0.3
    mask[1] = False  # a fully masked row: zeros, as torch
    ours = [session.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    kw = {"is_causal": True} if kind == "causal" else {}
    m, tm = (None, None) if kind == "causal" else (session.tensor(mask), torch.tensor(mask))
    y = session.functional.scaled_dot_product_attention(*ours, m, scale=0.5, enable_gqa=True, **kw)
    with sdpa_kernel(SDPBackend.MATH):
        ty = TF.scaled_dot_product_attention(*theirs, tm, scale=0.5, enable_gqa=True, **kw)
    _close(y, ty)
    y.sum().backward()
    ty.sum().backward()
    for a, b in zip(ours, theirs):
        _close(a.grad, b.grad)


@pytest.mark.parametrize(
    "kw",
    [{"label_smoothing": 0.2, "weight": W5}, {"ignore_index": 2, "reduction": "sum"}, {"soft": 1}],
)
def test_cross_entropy_extras_remote(session: gradd.Session, kw: dict) -> None:
    kw = dict(kw)
    target = RNG.random((4, 5)) if kw.pop("soft", 0) else np.array([0, 2, 4, 2])
    x, tx = _pair(session, RNG.standard_normal((4, 5)))
    ours = {k: session.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    theirs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    y = session.functional.cross_entropy(x, session.tensor(target), **ours)
    ty = TF.cross_entropy(tx, torch.tensor(target), **theirs)
    _close(y, ty)
    y.backward()
    ty.backward()
    _close(x.grad, tx.grad)


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 3, 2, 2)])
def test_spatial_nll_and_cross_entropy_remote(session: gradd.Session, shape: tuple) -> None:
    x, tx = _pair(session, RNG.standard_normal(shape))
    t = RNG.integers(0, 3, (shape[0], *shape[2:]))
    y = session.functional.cross_entropy(
        x, session.tensor(t), reduction="none", label_smoothing=0.1
    )
    ty = TF.cross_entropy(tx, torch.tensor(t), reduction="none", label_smoothing=0.1)
    _close(y, ty)
    z, tz = session.functional.nll_loss(x, session.tensor(t)), TF.nll_loss(tx, torch.tensor(t))
    assert z.grad_fn.name() == tz.grad_fn.name() == "NllLoss2DBackward0"
    (y.sum() + z).backward()
    (ty.sum() + tz).backward()
    _close(x.grad, tx.grad)
