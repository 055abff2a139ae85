"""Memory meters: sizes predicted by the op table before forwards run, buffers charged by their
root while they live (views, saved tensors, .grad), refusals that change nothing."""

from __future__ import annotations

import gradd.engine as ge
import numpy as np
import pytest
from gradd.engine.memory_meter import NODE_BYTES, MemoryMeter, SessionMemoryError, metering
from gradd.engine.op_table import predicted_nbytes

from .engine_examples import call, canonical, example_cases, instantiate, materialise, rng_for

MB = 1 << 20


# Composite ops are predicted by the ops they call; in-place ops write into their tensor.
PREDICTED = [
    (n, i) for n, i in example_cases() if ge.OP_TABLE[n].shape and not ge.OP_TABLE[n].inplace
]


@pytest.mark.parametrize("name,i", PREDICTED)
def test_the_prediction_covers_every_example_result(name: str, i: int) -> None:
    opdef = ge.OP_TABLE[name]
    case = materialise(opdef, opdef.examples[i], rng_for(name, i))
    args, kwargs, _ = instantiate(case)
    inputs, attrs = canonical(opdef, args, kwargs)
    predicted = predicted_nbytes(opdef, inputs, attrs)
    out = call(opdef, args, kwargs)
    if opdef.view and out._base is not None:
        assert predicted == 0  # a view allocates nothing
        return
    root = out._data
    while root.base is not None:  # what the meter charges: the buffer the result lives in
        root = root.base
    assert predicted >= root.nbytes, (predicted, root.nbytes)
    assert predicted <= 2 * root.nbytes or root.nbytes == 0


def test_a_broadcast_too_large_is_refused_before_it_is_computed() -> None:
    meter = MemoryMeter(64 * MB)
    with metering(meter):
        a, b = ge.zeros(20000, 1), ge.zeros(1, 20000)
        with pytest.raises(SessionMemoryError, match="op 'add' needs 1600000000 more"):
            a + b
    assert meter.used == 160000  # a and b; nothing of the 1.6 GB result


def test_a_view_keeps_its_whole_base_counted(no_gc: None) -> None:
    meter = MemoryMeter(64 * MB)
    with metering(meter):
        base = ge.zeros(1 << 20)  # 4 MiB
        views = [base[i : i + 1] for i in range(12)]
        more = base.reshape(1024, 1024).t()
    assert meter.used == 4 * MB  # once, however many views
    del base, more
    assert meter.used == 4 * MB  # one-element views keep the whole base alive
    del views
    assert meter.used == 0


def test_saved_buffers_are_counted_while_the_graph_lives(no_gc: None) -> None:
    meter = MemoryMeter(64 * MB)
    with metering(meter):
        x = ge.ones(1 << 20, requires_grad=True)  # 4 MiB
        a = x * 2
        loss = (a * a).sum()  # MulBackward0 saves a
        del a
        nodes = 3 * NODE_BYTES  # two MulBackward0 and a SumBackward0, alive while loss is
        assert meter.used == 8 * MB + nodes  # x, and a held by the graph only
        loss.backward()
        assert meter.used == 8 * MB + nodes  # a released by backward; x.grad is new
        x.grad = None
    assert meter.used == 4 * MB + nodes
    del loss
    assert meter.used == 4 * MB  # the nodes went with the graph


def test_backward_is_refused_before_it_starts_when_the_grads_do_not_fit() -> None:
    meter = MemoryMeter(6 * MB)
    with metering(meter):
        y = ge.ones(1 << 20, requires_grad=True)  # 4 MiB
        loss = y.sum() * 3.0  # a 4 MiB .grad for y would pass 6 MiB
        with pytest.raises(SessionMemoryError, match=r"new \.grad buffers needs 4194304 more"):
            loss.backward()
    assert y.grad is None and meter.used == 4 * MB + 2 * NODE_BYTES  # y; SumBackward0, MulBackward0
    loss.backward()  # the refused pass freed nothing: the graph still runs (unmetered here)
    np.testing.assert_array_equal(y.grad.numpy(), np.full(1 << 20, 3.0, np.float32))


def test_a_refused_inplace_op_changes_nothing() -> None:
    meter = MemoryMeter(64 * MB)
    with metering(meter):
        a, b = ge.zeros(2000, 1), ge.ones(1, 2000)
        with pytest.raises(RuntimeError, match=r"output with shape \[2000, 1\] doesn't match"):
            a.add_(b)
    assert a._version == 0 and not a.numpy().any()


def test_without_a_meter_nothing_is_charged() -> None:
    meter = MemoryMeter(1)
    with metering(meter):
        pass
    x = ge.zeros(1 << 20) + 1  # no meter active: no check, no charge
    assert meter.used == 0 and x.shape == (1 << 20,)


def test_factories_check_before_they_draw() -> None:
    gen = ge.Generator().manual_seed(7)
    state = gen.get_state()
    with metering(MemoryMeter(MB)), pytest.raises(SessionMemoryError, match="4194304 more"):
        ge.randn(1 << 20, generator=gen)
    assert gen.get_state() == state


def test_small_buffers_are_counted_in_bulk_once_each(no_gc: None) -> None:
    meter = MemoryMeter(64 * MB)
    with metering(meter):
        kept = [ge.ones(1000) for _ in range(10_000)]  # 4000 bytes each: counted in bulk
        also = [t.detach() for t in kept]  # the same buffers again: still counted once
        assert meter.used == 10_000 * 4000
        del kept[5000:], also
        assert meter.used == 5000 * 4000
        scalars = [ge.ones(1) for _ in range(1000)]  # one element each: not metered
        assert meter.used == 5000 * 4000 and len(scalars) == 1000
