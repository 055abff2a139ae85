"""Convolutions and pools through a session, embedded and remote (a real server): PyTorch's
values, gradients and grad_fn names, gradients of gradients, errors as PyTorch's (never
INTERNAL), and a hostile convolution refused by the session's memory limit."""

from __future__ import annotations

import gradd
import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(len(shape) + sum(shape)).uniform(-1, 1, shape)


def _net(F, x, w1, b1, w2):  # noqa: N803
    h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2, return_indices=True)[0]
    h = F.avg_pool2d(F.conv2d(h, w2, stride=1, dilation=2), 1, padding=0)
    w = w2.permute(1, 0, 2, 3)[:, :, 0]
    return F.adaptive_avg_pool2d(F.conv1d(h.flatten(2), w, padding="same"), (1, 2))


def _both(session: gradd.Session) -> tuple:
    arrays = rand(4, 1, 8, 8), rand(3, 1, 3, 3), rand(3), rand(4, 3, 2, 2)
    ours = [session.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, _net(session.functional, *ours), theirs, _net(TF, *theirs)


def test_a_small_cnn_matches_torch(session: gradd.Session) -> None:
    ours, out, theirs, tout = _both(session)
    assert out.grad_fn.name() == tout.grad_fn.name() == "AdaptiveAvgPool2DBackward0"
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), 1e-10, 1e-12)
    out.sum().backward()
    tout.sum().backward()
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), 1e-10, 1e-12)


def test_gradients_of_gradients_match_torch(session: gradd.Session) -> None:
    ours, out, theirs, tout = _both(session)
    grads = session.autograd.grad(out.sum(), ours, create_graph=True)
    tgrads = torch.autograd.grad(tout.sum(), theirs, create_graph=True)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), 1e-10, 1e-12)
    sum((g * g).sum() for g in grads).backward()
    sum((g * g).sum() for g in tgrads).backward()
    for a, t in zip(ours, theirs):
        assert a.grad is not None
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), 1e-9, 1e-11)


def test_max_pool2d_returns_indices(session: gradd.Session) -> None:
    x = rand(2, 3, 5, 5)
    out, idx = session.functional.max_pool2d(session.tensor(x), 3, 2, 1, return_indices=True)
    tout, tidx = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    assert idx.dtype == session.int64
    assert idx.tolist() == tidx.tolist()
    np.testing.assert_array_equal(out.numpy(), tout.numpy())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda F, t: F.conv2d(t(2, 3, 5, 5), t(4, 2, 3, 3)), "to have 2 channels"),
        (lambda F, t: F.conv2d(t(2, 3, 5, 5), t(4, 3, 3, 3), stride=0), "non-positive stride"),
        (lambda F, t: F.conv1d(t(2, 3, 5), t(4, 3, 3), padding="full"), "Invalid padding"),
        (lambda F, t: F.max_pool2d(t(2, 3, 6, 6), 2, padding=2), "at most half"),
        (lambda F, t: F.avg_pool2d(t(2, 3, 6, 6), 2, divisor_override=0), "must be not zero"),
        (lambda F, t: F.adaptive_avg_pool2d(t(6, 6), 2), "Expected 3D or 4D"),
    ],
)
def test_bad_arguments_get_pytorchs_errors(session: gradd.Session, call, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        call(session.functional, session.ones)
    assert (session.ones(2) * 2).sum().item() == 4.0  # the session goes on


def test_a_convolution_too_large_for_the_session_is_refused(remote: gradd.Session) -> None:
    x = remote.zeros(2, 64, 256, 256)  # 32 MiB: fits the 2 GiB a session may hold
    w = remote.zeros(1, 64, 11, 11)
    remote.synchronize()
    with pytest.raises(gradd.GraddError, match="op 'convolution' needs") as info:
        # The result is 512 KiB; its 11x11 column buffer (3.9 GiB) is refused before it exists.
        remote.functional.conv2d(x, w, padding=5).tolist()
    assert info.value.code.name == "RESOURCE_EXHAUSTED" and info.value.site[0] == "conv2d"
    assert (remote.ones(2) * 2).sum().item() == 4.0
