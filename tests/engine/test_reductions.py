"""Reductions where the op table's random examples say little: zeros in prod and cumprod (first
and second derivatives), ties in amax/amin, huge logits in logsumexp, dtypes, errors; all
against torch."""

from __future__ import annotations

from typing import Any

import gradd.engine as ge
import numpy as np
import pytest

torch = pytest.importorskip("torch")


def both(values: Any) -> tuple[ge.Tensor, Any]:
    a = np.asarray(values, dtype=np.float64)
    return ge.tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)


def close(ours: Any, theirs: Any) -> None:
    np.testing.assert_allclose(
        ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12
    )


def first_and_second(fn_g: Any, fn_t: Any, values: Any) -> None:
    """Values, gradients and the gradient of the gradient's sum, gradd against torch."""
    x, tx = both(values)
    out, tout = fn_g(x), fn_t(tx)
    close(out, tout)
    seed = np.random.default_rng(0).standard_normal(tuple(out.shape))
    (gx,) = ge.grad([out], [x], [ge.tensor(seed)], create_graph=True)
    (tgx,) = torch.autograd.grad(tout, tx, torch.tensor(seed), create_graph=True)
    close(gx, tgx)
    (ggx,) = ge.grad([(gx * gx).sum()], [x])
    (tggx,) = torch.autograd.grad((tgx * tgx).sum(), tx)
    close(ggx, tggx)


ZEROS = [
    [[1.5, 0.0, 2.0], [3.0, 4.0, -0.5]],  # one zero in a row
    [[0.0, 0.0, 2.0], [3.0, 0.0, -0.5]],  # two zeros in a row
    [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]],
]


@pytest.mark.parametrize("values", ZEROS)
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_prod_with_zeros(values: list, dim: int | None) -> None:
    if dim is None:
        first_and_second(lambda x: x.prod(), lambda x: x.prod(), values)
    else:
        first_and_second(lambda x: x.prod(dim), lambda x: x.prod(dim), values)


@pytest.mark.parametrize("values", ZEROS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumprod_with_zeros(values: list, dim: int) -> None:
    first_and_second(lambda x: x.cumprod(dim), lambda x: x.cumprod(dim), values)


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("dim", [(), 1, (0, 1)])
def test_ties_share_the_gradient(name: str, dim: Any) -> None:
    values = [[1.0, 3.0, 3.0], [-2.0, -2.0, 0.5]]
    x, tx = both(values)
    out, tout = getattr(x, name)(dim), getattr(tx, name)(dim)
    close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    close(x.grad, tx.grad)


def test_logsumexp_is_stable() -> None:
    x, tx = both([[1e8, 1e8 - 1.0], [-1e8, -float("inf")]])
    close(ge.logsumexp(x, 1), torch.logsumexp(tx, 1))
    inf, tinf = both([-float("inf"), -float("inf")])
    close(ge.logsumexp(inf, 0), torch.logsumexp(tinf, 0))
    ge.logsumexp(x, 1).sum().backward()
    torch.logsumexp(tx, 1).sum().backward()
    close(x.grad, tx.grad)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: m.prod(x),
        lambda m, x: m.prod(x, 0),
        lambda m, x: m.cumsum(x, 1),
        lambda m, x: m.cumprod(x, 0),
        lambda m, x: m.logsumexp(x, 1),
        lambda m, x: m.amax(x, 0),
        lambda m, x: m.all(x),
        lambda m, x: m.any(x, 1),
        lambda m, x: m.count_nonzero(x, (0, 1)),
    ],
)
@pytest.mark.parametrize("kind", ["int64", "bool", "float32"])
def test_dtypes(call: Any, kind: str) -> None:
    a = np.array([[1, 0, 2], [3, 1, 0]]).astype(kind)
    ours, theirs = call(ge, ge.tensor(a)), call(torch, torch.tensor(a))
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_logsumexp_needs_dim() -> None:
    with pytest.raises(TypeError) as ours:
        ge.logsumexp(ge.tensor([1.0]))  # type: ignore[call-arg]
    with pytest.raises(TypeError) as theirs:
        torch.logsumexp(torch.tensor([1.0]))
    assert "dim" in str(ours.value) and "dim" in str(theirs.value)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        ((1,), {}),
        ((False,), {}),
        ((0, False, True), {}),
        ((), {"dim": (0, 1), "correction": 0}),
        ((1,), {"unbiased": True, "keepdim": True}),
        ((), {"dim": 1, "correction": 3}),  # N - correction < 0: inf, as PyTorch
    ],
)
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_signatures(name: str, args: tuple, kwargs: dict) -> None:
    values = [[1.0, 0.5, 2.0], [3.0, 4.0, -1.0]]
    x, tx = both(values)
    with pytest.warns(UserWarning) if kwargs.get("correction") == 3 else _nothing():
        tout = getattr(tx, name)(*args, **kwargs)
    out = getattr(x, name)(*args, **kwargs)
    assert out.grad_fn.name() == tout.grad_fn.name()
    close(out, tout)
    if kwargs.get("correction") != 3:
        out.sum().backward()
        tout.sum().backward()
        close(x.grad, tx.grad)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_var_errors() -> None:
    x = ge.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="cannot specify both unbiased and correction"):
        x.var(0, True, correction=1)
    with pytest.raises(TypeError):  # correction is keyword-only, as PyTorch's
        x.var(0, True, False, 1)
    with pytest.raises(RuntimeError) as ours:
        ge.tensor([1, 2]).std()
    with pytest.raises(RuntimeError) as theirs:
        torch.tensor([1, 2]).std()
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("p", [2, 1, 3, float("inf"), -float("inf"), 0, 0.5])
def test_vector_norm_of_zeros_and_ties(p: float) -> None:
    # A zero row: the 2-norm's gradient is 0 there, as PyTorch's; ties share the inf-norm's.
    values = [[0.0, 0.0, 0.0], [3.0, -3.0, 1.0]]
    x, tx = both(values)
    out = ge.linalg.vector_norm(x, p, 1)
    tout = torch.linalg.vector_norm(tx, p, 1)
    close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    if p == 0:  # a count: PyTorch leaves .grad None, gradd writes zeros (see the op)
        assert tx.grad is None
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))
    elif p >= 1:  # below 1 PyTorch's gradient at 0 is nan or inf, so is gradd's
        close(x.grad, tx.grad)


def test_norm_forms() -> None:
    x, tx = both([[1.0, -2.0], [3.0, 0.5]])
    for args, kwargs in [((), {}), (("fro",), {}), ((1, 0), {}), ((), {"p": 3, "dim": 1})]:
        out, tout = x.norm(*args, **kwargs), tx.norm(*args, **kwargs)
        close(out, tout)
        assert out.grad_fn.name() == tout.grad_fn.name() == "LinalgVectorNormBackward0"
    with pytest.raises(RuntimeError) as ours:
        ge.linalg.vector_norm(ge.tensor([1, 2]))
    with pytest.raises(RuntimeError) as theirs:
        torch.linalg.vector_norm(torch.tensor([1, 2]))
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(NotImplementedError):
        x.norm("nuc")


def test_linalg_namespace() -> None:
    assert "vector_norm" in dir(ge.linalg)
    with pytest.raises(AttributeError):
        ge.linalg.matrix_power  # noqa: B018


def test_sort_argsort_indices_and_stability() -> None:
    values = [[3.0, 1.0, 3.0, 2.0, 1.0], [0.5, 0.5, -1.0, 2.0, 0.5]]  # ties
    x, tx = both(values)
    for kwargs in [{}, {"descending": True}, {"dim": 0}, {"stable": True, "descending": True}]:
        ours, theirs = x.sort(**kwargs), tx.sort(**kwargs)
        close(ours.values, theirs.values)
        assert ours.values.grad_fn.name() == theirs.values.grad_fn.name()
        if kwargs.get("stable"):  # stable: the same indices as PyTorch, ties in order
            np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        # whatever the order of ties, the indices pick the values
        picked = np.take_along_axis(np.asarray(values), ours.indices.numpy(), kwargs.get("dim", -1))
        np.testing.assert_array_equal(picked, ours.values.detach().numpy())
    stable = ge.argsort(x, 1, True, stable=True)
    np.testing.assert_array_equal(
        stable.numpy(), torch.argsort(tx, dim=1, descending=True, stable=True).numpy()
    )
    assert stable.dtype is ge.int64 and stable.grad_fn is None


def test_sort_topk_median_second_derivatives() -> None:
    values = np.random.default_rng(3).standard_normal((3, 5))
    for fg, ft in [
        (lambda x: x.sort(1).values ** 2, lambda x: x.sort(1).values ** 2),
        (lambda x: x.topk(2, 0).values ** 3, lambda x: x.topk(2, 0).values ** 3),
        (lambda x: x.median() ** 2, lambda x: x.median() ** 2),
        (lambda x: x.median(1).values ** 2, lambda x: x.median(1).values ** 2),
    ]:
        first_and_second(fg, ft, values)


def test_topk_and_median_details() -> None:
    x, tx = both([[4.0, 1.0, 2.0, 3.0], [0.0, -1.0, 5.0, 2.0]])
    for args, kwargs in [((2,), {}), ((3,), {"largest": False}), ((1, 0), {}), ((0,), {})]:
        ours, theirs = x.topk(*args, **kwargs), tx.topk(*args, **kwargs)
        close(ours.values, theirs.values)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        x.topk(5)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        tx.topk(5)
    # an even count: the lower of the two middle values, as PyTorch (not their mean)
    close(x.median(), tx.median())
    ours, theirs = x.median(1, keepdim=True), tx.median(1, keepdim=True)
    close(ours.values, theirs.values)
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    assert type(ours).__name__ == "median" and type(x.topk(1)).__name__ == "topk"
    ints = ge.tensor([[3, 1, 2]])
    assert ints.median().dtype is ge.int64 and int(ints.median().item()) == 2
