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
