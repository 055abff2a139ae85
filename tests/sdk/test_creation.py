"""Creation ops through a session, embedded and on a server, against PyTorch: values (random
ones bit for bit from the same seed), dtypes, shapes, requires_grad and errors."""

from __future__ import annotations

from typing import Any

import gradd
import numpy as np
import pytest
import torch
from gradd.engine import dtypes as dt
from gradd.remote_session import RemoteSession

TORCH = {d: getattr(torch, d.name) for d in dt.ALL}


def same(got: Any, want: torch.Tensor, exact: bool = True) -> None:
    assert TORCH[got.dtype] == want.dtype
    assert tuple(got.shape) == tuple(want.shape)
    assert got.requires_grad == want.requires_grad
    g, w = got.detach().numpy(), want.detach().numpy()
    if exact:
        np.testing.assert_array_equal(g, w)
    else:
        np.testing.assert_allclose(g, w, rtol=2e-6, atol=1e-6)


def both(session: gradd.Session, seed: int = 0) -> None:
    session.manual_seed(seed)
    torch.manual_seed(seed)


def raises_like(fn: Any, tfn: Any, kind: type = RuntimeError) -> None:
    with pytest.raises(kind) as want:
        tfn()
    with pytest.raises(kind) as got:
        fn()
    # a server's error found later names the queued call's site after torch's message
    assert str(got.value).split("\n  (the server ran")[0] == str(want.value)


def test_deterministic_factories(session: gradd.Session) -> None:
    s = session
    same(s.eye(3), torch.eye(3))
    same(s.eye(2, 4, dtype=s.int32), torch.eye(2, 4, dtype=torch.int32))
    same(s.eye(2, 3, dtype=s.bool), torch.eye(2, 3, dtype=torch.bool))
    same(s.empty(2, 3).shape and s.zeros(2, 3), torch.zeros(2, 3))
    assert s.empty((4,), dtype=s.int8).dtype is s.int8
    same(s.linspace(0, 1, 5), torch.linspace(0, 1, 5))
    same(s.linspace(-3.3, 11.7, 101), torch.linspace(-3.3, 11.7, 101), exact=False)
    same(s.linspace(0, 10, 4, dtype=s.int64), torch.linspace(0, 10, 4, dtype=torch.int64))
    same(s.linspace(2, 5, 1), torch.linspace(2, 5, 1))
    same(s.linspace(0, 1, 3, requires_grad=True), torch.linspace(0, 1, 3, requires_grad=True))
    same(s.logspace(0, 2, 3), torch.logspace(0, 2, 3))
    same(s.logspace(0, 3, 4, base=2, dtype=s.int32), torch.logspace(0, 3, 4, 2, dtype=torch.int32))
    same(
        s.logspace(-1, 1, 7, dtype=s.float64),
        torch.logspace(-1, 1, 7, dtype=torch.float64),
        exact=False,
    )
    same(s.full((2,), 7, dtype=s.uint8), torch.full((2,), 7, dtype=torch.uint8))
    same(
        s.zeros(2, dtype=s.half, requires_grad=True),
        torch.zeros(2, dtype=torch.half, requires_grad=True),
    )


def test_factory_errors(session: gradd.Session) -> None:
    s = session
    raises_like(lambda: s.linspace(0, 1, -1), lambda: torch.linspace(0, 1, -1))
    raises_like(lambda: s.eye(-1), lambda: torch.eye(-1))
    raises_like(lambda: s.eye(2, -1), lambda: torch.eye(2, -1))
    raises_like(lambda: s.randint(3, 3, (2,)), lambda: torch.randint(3, 3, (2,)))
    raises_like(
        lambda: s.randint(300, (2,), dtype=s.uint8),
        lambda: torch.randint(300, (2,), dtype=torch.uint8),
    )
    raises_like(
        lambda: s.randint(5, (2,), dtype=s.bool), lambda: torch.randint(5, (2,), dtype=torch.bool)
    )
    raises_like(lambda: s.normal(0.0, -1.0, (2,)), lambda: torch.normal(0.0, -1.0, (2,)))
    raises_like(
        lambda: s.normal(0.0, 1.0, (2,), dtype=s.long),
        lambda: torch.normal(0.0, 1.0, (2,), dtype=torch.long),
        NotImplementedError,
    )
    raises_like(
        lambda: s.linspace(0, 1, 3, dtype=s.bool),
        lambda: torch.linspace(0, 1, 3, dtype=torch.bool),
        NotImplementedError,
    )
    raises_like(lambda: s.randperm(-1), lambda: torch.randperm(-1))
    with pytest.raises(RuntimeError, match="floating point"):
        s.randint(5, (2,), requires_grad=True)
    with pytest.raises(NotImplementedError, match="check_uniform_bounds"):
        s.rand_like(s.zeros(2, dtype=s.int64))


@pytest.mark.cpu_only("PyTorch's CPU random numbers")
def test_random_factories_bit_for_bit(session: gradd.Session) -> None:
    s = session
    both(s, 7)
    for n in (3, 16, 37):
        same(s.randint(10, (n,)), torch.randint(10, (n,)))
        same(s.randint(-5, 2**40, (2, n)), torch.randint(-5, 2**40, (2, n)))
        same(
            s.randint(3, 9, size=(n,), dtype=s.int16),
            torch.randint(3, 9, size=(n,), dtype=torch.int16),
        )
        same(s.randperm(n), torch.randperm(n))
        same(s.randperm(n, dtype=s.float32), torch.randperm(n, dtype=torch.float32))
        same(s.normal(2.0, 3.0, (n,)), torch.normal(2.0, 3.0, (n,)))
        same(
            s.normal(-1.0, 0.5, (n, 2), dtype=s.float64),
            torch.normal(-1.0, 0.5, (n, 2), dtype=torch.float64),
        )
        same(s.randn(n, dtype=s.double), torch.randn(n, dtype=torch.double))
        same(s.rand(n, dtype=s.half), torch.rand(n, dtype=torch.half))
    for n in (5, 32):  # float16 normals: torch's own last partial block is not followed
        same(s.randn(n, dtype=s.half), torch.randn(n, dtype=torch.half))
        same(s.normal(1.0, 2.0, (n,), dtype=s.half), torch.normal(1.0, 2.0, (n,), dtype=torch.half))


def test_like_ops(session: gradd.Session) -> None:
    s = session
    x, tx = s.tensor([[1.5, 2.0, -3.0]]), torch.tensor([[1.5, 2.0, -3.0]])
    i, ti = s.tensor([1, 2], dtype=s.int32), torch.tensor([1, 2], dtype=torch.int32)
    for name in ("zeros_like", "ones_like"):
        fn, tfn = getattr(s, name), getattr(torch, name)
        same(fn(x), tfn(tx))
        same(fn(i), tfn(ti))
        same(fn(x, dtype=s.int8), tfn(tx, dtype=torch.int8))
        out = fn(x, requires_grad=True)
        assert out.requires_grad and out.is_leaf
    e, te = s.empty_like(i, dtype=s.float16), torch.empty_like(ti, dtype=torch.float16)
    assert e.shape == te.shape and TORCH[e.dtype] == te.dtype
    same(s.full_like(x, 2.5), torch.full_like(tx, 2.5))
    same(s.full_like(i, 2.7), torch.full_like(ti, 2.7))
    same(s.full_like(x, 4, dtype=s.uint8), torch.full_like(tx, 4, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="floating point"):
        s.zeros_like(i, requires_grad=True)


@pytest.mark.cpu_only("PyTorch's CPU random numbers")
def test_random_ops_bit_for_bit(session: gradd.Session) -> None:
    s = session
    both(s, 11)
    for n in (5, 16, 40):
        x, tx = s.zeros(n), torch.zeros(n)
        d, td = s.zeros(2, n, dtype=s.float64), torch.zeros(2, n, dtype=torch.float64)
        same(s.rand_like(x), torch.rand_like(tx))
        same(s.randn_like(d), torch.randn_like(td))
        same(s.rand_like(x, dtype=s.float64), torch.rand_like(tx, dtype=torch.float64))
        same(s.randint_like(x, 10), torch.randint_like(tx, 10))
        same(
            s.randint_like(d, -3, 3, dtype=s.int32),
            torch.randint_like(td, -3, 3, dtype=torch.int32),
        )
        p = np.linspace(0, 1, n)
        for pd in (np.float32, np.float64):
            same(s.bernoulli(s.tensor(p.astype(pd))), torch.bernoulli(torch.tensor(p.astype(pd))))
            if isinstance(s, RemoteSession):  # an engine tensor's methods draw from the
                # process's stream (gradd.engine.manual_seed), not an embedded session's
                same(s.tensor(p.astype(pd)).bernoulli(), torch.tensor(p.astype(pd)).bernoulli())
        same(s.bernoulli(x, 0.3), torch.bernoulli(tx, 0.3))
        m, tm = s.tensor(p), torch.tensor(p)
        same(s.normal(m, 2.0), torch.normal(tm, 2.0))
        same(s.normal(1.5, m), torch.normal(1.5, tm))
        same(s.normal(m, m + 1), torch.normal(tm, tm + 1))
        w = np.abs(np.sin(np.arange(3 * n))).reshape(3, n).astype(np.float32)
        w2, tw = s.tensor(w), torch.tensor(w)
        for k, r in ((1, False), (4, False), (n, False), (1, True), (7, True)):
            same(s.multinomial(w2, k, r), torch.multinomial(tw, k, r))
            if isinstance(s, RemoteSession):
                same(w2[0].multinomial(k, replacement=r), tw[0].multinomial(k, replacement=r))


@pytest.mark.cpu_only("value checks run on the CPU only (on a GPU they would wait for it)")
def test_random_op_errors(session: gradd.Session) -> None:
    s = session
    w, tw = s.tensor([0.2, 0.8]), torch.tensor([0.2, 0.8])
    raises_like(lambda: s.multinomial(w, 3), lambda: torch.multinomial(tw, 3))
    raises_like(lambda: s.multinomial(w, 0), lambda: torch.multinomial(tw, 0))
    raises_like(
        lambda: s.multinomial(s.zeros(2, 2, 2), 1),
        lambda: torch.multinomial(torch.zeros(2, 2, 2), 1),
    )
    raises_like(lambda: s.bernoulli(w, 1.5), lambda: torch.bernoulli(tw, 1.5))
    s.synchronize()
    bad = [(lambda: s.bernoulli(s.tensor([1.5])), lambda: torch.bernoulli(torch.tensor([1.5])))]
    bad.append(
        (
            lambda: s.normal(s.zeros(2), s.tensor([-1.0, 1.0])),
            lambda: torch.normal(torch.zeros(2), torch.tensor([-1.0, 1.0])),
        )
    )
    bad.append(
        (
            lambda: s.multinomial(s.tensor([-1.0, 1.0]), 1),
            lambda: torch.multinomial(torch.tensor([-1.0, 1.0]), 1),
        )
    )
    bad.append(
        (
            lambda: s.multinomial(s.tensor([0.0, 0.0]), 1),
            lambda: torch.multinomial(torch.tensor([0.0, 0.0]), 1),
        )
    )
    for fn, tfn in bad:  # found by the forward (on a server: when the session next waits)
        raises_like(lambda fn=fn: (fn(), s.synchronize()), tfn)


def test_new_methods(session: gradd.Session) -> None:
    s = session
    x, tx = s.ones(2, dtype=s.float64), torch.ones(2, dtype=torch.float64)
    same(x.new_zeros(2, 3), tx.new_zeros(2, 3))
    same(x.new_zeros((2, 3), dtype=s.int16), tx.new_zeros((2, 3), dtype=torch.int16))
    same(x.new_ones(4), tx.new_ones(4))
    same(x.new_ones((1, 2), dtype=s.bool), tx.new_ones((1, 2), dtype=torch.bool))
    assert x.new_empty(3, 2).shape == tx.new_empty(3, 2).shape
    same(x.new_full((2, 2), 3.5), tx.new_full((2, 2), 3.5))
    same(x.new_full((3,), 4, dtype=s.int32), tx.new_full((3,), 4, dtype=torch.int32))
    same(x.new_tensor([[1, 2], [3, 4]]), tx.new_tensor([[1, 2], [3, 4]]))
    same(x.new_tensor(2.5, dtype=s.int64), tx.new_tensor(2.5, dtype=torch.int64))
    same(x.new_tensor(np.arange(3)), tx.new_tensor(np.arange(3)))
    same(x.new_zeros(2, requires_grad=True), tx.new_zeros(2, requires_grad=True))


def test_as_tensor(session: gradd.Session) -> None:
    s = session
    x = s.ones(3)
    assert s.as_tensor(x) is x
    assert s.as_tensor(x, dtype=s.float64).dtype is s.float64
    same(s.as_tensor([1, 2]), torch.as_tensor([1, 2]))
    a = np.arange(3, dtype=np.int16)
    same(s.as_tensor(a), torch.as_tensor(a))
