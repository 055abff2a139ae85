"""Memory: saved buffers go after backward, and a finished graph is freed by refcounting alone.

Every test that proves freeing runs with the cyclic garbage collector disabled: if anything
survives ``del``, a reference cycle (or a leak) keeps it, which is what PyTorch avoids too.
"""

from __future__ import annotations

import weakref
from typing import Any

import gradd.engine as ge
import numpy as np
import pytest

from .engine_examples import (
    call,
    example_cases,
    instantiate,
    is_differentiable,
    materialise,
    rng_for,
    tensor_outputs,
)


def leaf(*shape: int) -> ge.Tensor:
    return ge.tensor(np.random.default_rng(0).uniform(0.5, 1.5, shape), requires_grad=True)


def nodes_of(outs: list[ge.Tensor]) -> list[Any]:
    """Every node reachable from the outputs (AccumulateGrad included)."""
    found, seen = [], set()
    stack = [o.grad_fn for o in outs if o.grad_fn is not None]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        found.append(n)
        stack.extend(m for m in n.next if m is not None)
    return found


# -- saved buffers are released by backward ----------------------------------------------------


def test_backward_releases_saved_inputs_and_outputs() -> None:
    x = leaf(3)
    y = ((x * x).exp().sigmoid() / x).sum()
    nodes = [n for n in nodes_of([y]) if hasattr(n, "_saved")]
    assert any(n._saved for n in nodes) and any(n._out is not None for n in nodes)
    y.backward()
    for n in nodes:
        assert n.freed and not n._saved and n._out is None, n.name()


def test_retain_graph_keeps_saved_buffers() -> None:
    x = leaf(3)
    y = (x * x).sum()
    (mul,) = [n for n in nodes_of([y]) if n.name() == "MulBackward0"]
    y.backward(retain_graph=True)
    assert len(mul._saved) == 2 and not mul.freed


def test_a_big_saved_tensor_is_collectable_after_backward(no_gc: None) -> None:
    x = leaf(1000, 100)
    a = x * 2
    y = (a * a).sum()  # MulBackward0 saves a
    ref = weakref.ref(a)
    del a
    assert ref() is not None  # the graph holds it for backward
    y.backward()
    assert ref() is None  # released by backward, not by the collector
    assert y.grad_fn is not None  # while the graph itself is still there


@pytest.mark.parametrize("op", ["exp", "sigmoid", "tanh", "sqrt", "relu", "reciprocal"])
def test_a_saved_output_is_collectable_after_backward(op: str, no_gc: None) -> None:
    x = leaf(500, 100)
    y = getattr(x, op)().sum()  # the op's output tensor is gone; its node keeps the array
    (node,) = [n for n in nodes_of([y]) if n.name().lower().startswith(op)]
    ref = weakref.ref(node._out)
    assert ref() is not None
    y.backward()
    assert ref() is None


# -- a finished graph is freed when its tensors go ---------------------------------------------


def test_a_node_never_keeps_its_output_tensor_alive(no_gc: None) -> None:
    x = leaf(4)
    y = x.exp()
    z = y + 2  # AddBackward0 saves nothing, so only ExpBackward0 could hold y
    ref = weakref.ref(y)
    del y
    assert ref() is None  # ExpBackward0 keeps the array, not the Tensor
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x.detach().numpy()))


def _graph_refs(x: ge.Tensor, run_backward: bool) -> list[weakref.ref]:
    a = x * x
    b = a.exp()
    c = b.sigmoid() + b.tanh()
    d = (c / x).log_softmax(0)
    loss = ge.functional.cross_entropy(d.reshape(1, -1), ge.tensor([1]))
    if run_backward:
        loss.backward()
    objs = [a, b, c, d, loss, *nodes_of([loss])]
    return [weakref.ref(o) for o in objs]


@pytest.mark.parametrize("run_backward", [False, True], ids=["unused", "after_backward"])
def test_a_graph_is_freed_by_refcounting(run_backward: bool, no_gc: None) -> None:
    x = leaf(5)
    refs = _graph_refs(x, run_backward)
    alive = [r() for r in refs if r() is not None]
    # The leaf x lives on (the test holds it) but its AccumulateGrad goes with the graph.
    assert not alive, f"kept alive without the collector: {alive}"
    assert x.grad is not None or not run_backward


def test_leaves_are_freed_with_their_graph(no_gc: None) -> None:
    x = leaf(3)
    y = (x * 2).sum()
    xref = weakref.ref(x)
    del x
    assert xref() is not None  # the graph's AccumulateGrad needs the leaf
    del y
    assert xref() is None


def test_retain_grad_makes_no_cycle(no_gc: None) -> None:
    x = leaf(3)
    y = x * 2
    y.retain_grad()
    z = (y * y).sum()
    z.backward()
    refs = [weakref.ref(y), weakref.ref(z), weakref.ref(z.grad_fn)]
    del y, z
    assert all(r() is None for r in refs)


def test_repeated_training_steps_do_not_grow_memory(no_gc: None) -> None:
    w = leaf(10)
    x = ge.tensor(np.ones(10))
    refs = []
    for _ in range(20):
        loss = ((w * x - 1) ** 2).mean()
        loss.backward()
        with ge.no_grad():
            w -= 0.1 * w.grad
        w.grad.zero_()
        refs.append(weakref.ref(loss.grad_fn))
    del loss
    assert all(r() is None for r in refs)


# -- every op of the table: graphs built from its examples leave nothing behind ----------------

CASES = [(n, i) for n, i in example_cases() if is_differentiable(ge.OP_TABLE[n])]


def _example_refs(name: str, i: int, run_backward: bool) -> list[weakref.ref]:
    d = ge.OP_TABLE[name]
    case = materialise(d, d.examples[i], rng_for(name, i))
    args, kwargs, leaves = instantiate(case)
    outs = [o for o in tensor_outputs(call(d, args, kwargs)) if o.requires_grad]
    nodes = nodes_of(outs)
    if run_backward and outs:
        ge.backward(outs, [ge.ones_like(o) for o in outs])
        for n in nodes:
            if hasattr(n, "_saved"):
                assert not n._saved and n._out is None, f"{name}: {n.name()} kept its buffers"
    return [weakref.ref(o) for o in (*outs, *nodes, *leaves)]


@pytest.mark.parametrize("run_backward", [False, True], ids=["unused", "after_backward"])
def test_every_ops_graph_is_freed_by_refcounting(run_backward: bool, no_gc: None) -> None:
    kept = []
    for name, i in CASES:
        refs = _example_refs(name, i, run_backward)
        if any(r() is not None for r in refs):
            kept.append(f"{name}-{i}")
    assert not kept, f"graphs kept alive without the collector: {kept}"
