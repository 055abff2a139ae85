"""scaled_dot_product_attention against torch's math backend: values, gradients (first and
second order), masks, causal, scale, grouped-query attention, fully masked rows, errors."""

from __future__ import annotations

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

F = ge.functional
TF = torch.nn.functional
RNG = np.random.default_rng(13)


def run(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None, **kw):
    ours = [ge.tensor(a.copy(), requires_grad=True) for a in (q, k, v)]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in (q, k, v)]
    y = F.scaled_dot_product_attention(*ours, None if mask is None else ge.tensor(mask), **kw)
    with sdpa_kernel(SDPBackend.MATH):
        ty = TF.scaled_dot_product_attention(
            *theirs, None if mask is None else torch.tensor(mask), **kw
        )
    return (y, ours), (ty, theirs)


VARIANTS = [
    ((2, 3, 4), (2, 5, 4), (2, 5, 6), None, {}),
    ((1, 2, 3, 4), (1, 2, 4, 4), (1, 2, 4, 2), None, {"is_causal": True}),
    ((2, 4, 3), (2, 3, 3), (2, 3, 2), None, {"is_causal": True, "scale": 0.3}),
    ((2, 3, 4), (2, 5, 4), (2, 5, 6), "bool", {}),
    ((2, 3, 4), (2, 5, 4), (2, 5, 6), "float", {}),
    ((1, 4, 3, 2), (1, 2, 5, 2), (1, 2, 5, 3), None, {"enable_gqa": True}),
    ((3, 4), (5, 4), (5, 2), "bool", {"scale": 2.0}),
]


def _mask(kind: str | None, lq: int, lk: int) -> np.ndarray | None:
    if kind == "bool":
        m = RNG.random((lq, lk)) > 0.4
        m[:, 0] = True
        return m
    if kind == "float":
        return RNG.standard_normal((lq, lk))
    return None


@pytest.mark.parametrize(("qs", "ks", "vs", "mask", "kw"), VARIANTS)
def test_values_and_gradients_match_the_math_backend(qs, ks, vs, mask, kw) -> None:
    m = _mask(mask, qs[-2], ks[-2])
    (y, ours), (ty, theirs) = run(
        RNG.standard_normal(qs), RNG.standard_normal(ks), RNG.standard_normal(vs), m, **kw
    )
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), 1e-12, 1e-12)
    g = RNG.standard_normal(ty.shape)
    y.backward(ge.tensor(g))
    ty.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), 1e-10, 1e-12)


def test_second_derivatives_match_torch() -> None:
    (y, ours), (ty, theirs) = run(*(RNG.standard_normal((2, 3, 4)) for _ in range(3)))
    gs = ge.grad((y * y).sum(), ours, create_graph=True)
    tgs = torch.autograd.grad((ty * ty).sum(), theirs, create_graph=True)
    ge.backward([sum((g * g).sum() for g in gs[1:]) + gs[0].sum()])
    (sum((g * g).sum() for g in tgs[1:]) + tgs[0].sum()).backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), 1e-9, 1e-11)


def test_a_fully_masked_row_gives_zeros_and_finite_gradients() -> None:
    m = np.ones((3, 5), bool)
    m[1] = False
    (y, ours), (ty, theirs) = run(*(RNG.standard_normal(s) for s in ((3, 4), (5, 4), (5, 2))), m)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), 1e-12, 1e-12)
    assert not y.detach().numpy()[1].any()
    y.sum().backward()
    ty.sum().backward()
    for a, b in zip(ours, theirs):
        assert np.isfinite(a.grad.numpy()).all()
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), 1e-10, 1e-12)


def test_dropout_zeroes_whole_weights_and_scales_the_rest() -> None:
    q = ge.tensor(np.zeros((1, 1, 4)))
    v = ge.tensor(np.eye(4)[None])
    ge.manual_seed(0)
    y = F.scaled_dot_product_attention(q, ge.tensor(np.zeros((1, 4, 4))), v, dropout_p=0.5)
    kept = y.numpy().ravel()
    assert set(np.round(kept, 12)) <= {0.0, 0.5}  # uniform weights 1/4, kept ones over 1 - p


ERRORS = [
    lambda f, t: f.scaled_dot_product_attention(
        t(np.ones((2, 3, 4))), t(np.ones((2, 5, 4))), t(np.ones((2, 5, 6))),
        attn_mask=t(np.ones((3, 5), bool)), is_causal=True,
    ),
    lambda f, t: f.scaled_dot_product_attention(
        t(np.ones((2, 3, 4))), t(np.ones((2, 5, 4))), t(np.ones((2, 5, 6))),
        attn_mask=t(np.ones((3, 5), np.int64)),
    ),
    lambda f, t: f.scaled_dot_product_attention(
        t(np.ones((2, 3, 4))), t(np.ones((2, 5, 4), np.float32)), t(np.ones((2, 5, 6))),
    ),
    lambda f, t: f.scaled_dot_product_attention(t(np.ones(4)), t(np.ones(4)), t(np.ones(4))),
    lambda f, t: f.scaled_dot_product_attention(
        t(np.ones((2, 3, 4))), t(np.ones((2, 5, 4))), t(np.ones((2, 5, 6))), dropout_p=1.5
    ),
    lambda f, t: f.scaled_dot_product_attention(
        t(np.ones((1, 4, 3, 8))), t(np.ones((1, 3, 5, 8))), t(np.ones((1, 3, 5, 8))),
        enable_gqa=True,
    ),
]  # fmt: skip


@pytest.mark.parametrize("fn", ERRORS, ids=range(len(ERRORS)))
def test_errors_are_pytorchs(fn) -> None:
    with pytest.raises(Exception) as theirs:
        fn(TF, torch.tensor)
    with pytest.raises(Exception) as ours:
        fn(F, ge.tensor)
    assert isinstance(ours.value, type(theirs.value))
    assert str(ours.value) == str(theirs.value)
