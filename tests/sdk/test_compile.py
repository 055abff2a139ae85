"""``s.compile`` on both kinds of session: compiled functions give eager's results bit for bit;
guards, graph breaks and the recompile limit behave as torch.compile's."""

from __future__ import annotations

import gc
import warnings

import gradd
import gradd.torch as torch_ns
import numpy as np
import pytest
from gradd import command_encoding as enc
from gradd.compile_guards import RECOMPILE_LIMIT, GraphBreakError
from gradd.v1 import command_pb2 as cpb

from .test_article import article_step, data, params


def run_article(s: gradd.Session, article_data: tuple, compiled: bool, epochs: int = 30):
    x, y = data(s, article_data)
    b, w = params(s)

    def step(x: object, y: object, lr: float) -> object:
        return article_step(s, x, y, b, w, lr)

    fn = s.compile(step) if compiled else step
    losses = [fn(x, y, 0.1) for _ in range(epochs)]
    return [t.item() for t in losses], b, w, losses[-1]


def test_article_loop_compiled_equals_eager(session: gradd.Session, article_data: tuple) -> None:
    eager, b0, w0, last0 = run_article(session, article_data, False)
    compiled, b1, w1, last1 = run_article(session, article_data, True)
    assert compiled == eager  # bit for bit
    assert b1.tolist() == b0.tolist() and w1.tolist() == w0.tolist()
    assert last1.grad_fn.name() == last0.grad_fn.name() == "MeanBackward0"
    assert b1.grad.tolist() == [0.0] and b1.requires_grad and b1.is_leaf


def test_learning_rate_is_an_input(session: gradd.Session, article_data: tuple) -> None:
    x, y = data(session, article_data)
    b, w = params(session)
    traces = []

    def step(x: object, y: object, lr: float) -> object:
        traces.append(lr)
        return article_step(session, x, y, b, w, lr)

    fn = session.compile(step)
    got = [fn(x, y, lr).item() for lr in (0.1, 0.05, 0.2, 0.01)]
    # On a server one trace: the learning rate is a program input; an embedded plan guards
    # floats by value (it cannot see what fn computes from them).
    assert len(traces) == (1 if hasattr(session, "target") else 4)
    b2, w2 = params(session)
    want = [article_step(session, x, y, b2, w2, lr).item() for lr in (0.1, 0.05, 0.2, 0.01)]
    assert got == want
    assert b.tolist() == b2.tolist() and w.tolist() == w2.tolist()


def test_a_float_used_in_python_is_guarded_by_value(session: gradd.Session) -> None:
    x = session.ones(3)
    traces = []

    @session.compile
    def scaled(x: object, k: float) -> object:
        traces.append(k)
        return x * (k * 2)  # k * 2 is a Python number: the program holds its value

    assert scaled(x, 1.0).tolist() == [2.0] * 3
    assert scaled(x, 1.0).tolist() == [2.0] * 3
    assert scaled(x, 3.0).tolist() == [6.0] * 3
    assert len(traces) == 2


def test_mlp_step_with_nn_and_optim(session: gradd.Session) -> None:
    def make() -> tuple:
        session.manual_seed(0)
        nn = session.nn
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 3))
        opt = session.optim.Adam(model.parameters(), lr=1e-2)
        return model, opt

    session.manual_seed(1)
    xs = [session.randn(5, 8) for _ in range(6)]
    ys = [session.randint(0, 3, (5,)) for _ in range(6)]

    def results(compiled: bool) -> tuple:
        model, opt = make()
        loss_fn = session.nn.CrossEntropyLoss()

        def step(x: object, y: object) -> object:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = session.compile(step) if compiled else step
        losses = [fn(x, y) for x, y in zip(xs, ys)]
        names = {t.grad_fn.name() for t in losses}
        return [t.item() for t in losses], [p.tolist() for p in model.parameters()], names, opt

    eager = results(False)
    compiled = results(True)
    assert compiled[0] == eager[0] and compiled[1] == eager[1]  # dropout draws the same stream
    assert compiled[2] == eager[2] == {"NllLossBackward0"}
    assert [s["step"].item() for s in compiled[3].state.values()] == [6.0] * 4


def test_guards_trace_again(session: gradd.Session) -> None:
    traces = []

    @session.compile
    def f(x: object) -> object:
        traces.append(1)
        return (x * 2).sum()

    a = session.ones(3, requires_grad=True)
    f(a), f(a)
    assert len(traces) == 1
    f(session.ones(4, requires_grad=True))  # shape
    f(session.ones(3, dtype=session.float64, requires_grad=True))  # dtype
    f(session.ones(3))  # requires_grad
    with session.no_grad():  # grad mode
        out = f(a)
    assert len(traces) == 5 and out.grad_fn is None and f(a).grad_fn.name() == "SumBackward0"
    assert len(traces) == 5


def test_graph_break(session: gradd.Session) -> None:
    x = session.ones(3)

    def reads(x: object) -> object:
        y = x * 2
        if y.sum().item() > 0:  # a value read: a graph break
            y = y + 1
        return y

    with pytest.raises(GraphBreakError, match=r"test_compile\.py:\d+.*fullgraph"):
        session.compile(reads, fullgraph=True)(x)
    fn = session.compile(reads)
    with pytest.warns(UserWarning, match="graph break"):
        assert fn(x).tolist() == [3.0] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning: it runs eagerly, quietly, from then on
        assert fn(x).tolist() == [3.0] * 3


def test_recompile_limit(session: gradd.Session) -> None:
    traces = []

    @session.compile
    def f(x: object, n: int) -> object:
        traces.append(n)
        return x + n

    x = session.zeros(2)
    for n in range(RECOMPILE_LIMIT):
        assert f(x, n).tolist() == [n, n]
    with pytest.warns(UserWarning, match="recompile_limit"):
        assert f(x, 100).tolist() == [100, 100]
    assert f(x, 101).tolist() == [101, 101]
    assert len(traces) == RECOMPILE_LIMIT + 2


def test_results_of_every_kind(session: gradd.Session) -> None:
    w = session.ones(2, requires_grad=True)

    @session.compile(fullgraph=True)
    def f(x: object, k: float) -> object:
        y = (w * x * k).sum()
        return {"y": y, "parts": [x, w, None, 3, k]}

    x = session.tensor([1.0, 2.0])
    for k in (1.0, 2.0):
        out = f(x, k)
        assert out["y"].item() == 3.0 * k and out["y"].grad_fn.name() == "SumBackward0"
        assert out["parts"][0] is x and out["parts"][1] is w and out["parts"][2:] == [None, 3, k]


def test_torch_namespace_compile(session: gradd.Session) -> None:
    with torch_ns.use(session):
        fn = torch_ns.compile(lambda t: t * 2)
        assert fn(session.ones(2)).tolist() == [2.0, 2.0]
        assert fn(session.ones(2)).tolist() == [2.0, 2.0]


def test_compiled_program_is_freed(remote: gradd.Session) -> None:
    fn = remote.compile(lambda t: t + 1)
    t = remote.ones(2)
    fn(t)
    assert fn(t).tolist() == [2.0, 2.0]
    name = fn._programs[0].name
    del fn
    gc.collect()
    remote.synchronize()
    run = cpb.RunProgram(program=name, inputs=[t._h.decode()], outs=["zz"])
    remote._push(enc.framed(enc.CMD["run_program"], run.SerializeToString()), ("run", "", 0))
    with pytest.raises(gradd.GraddError, match="unknown program"):
        remote.synchronize()
    assert np.array_equal(t.numpy(), [1.0, 1.0])


def test_captured_objects_are_guarded(session: gradd.Session) -> None:
    w = session.ones(2, requires_grad=True)
    traces = []

    def f(x: object) -> object:
        traces.append(1)
        return (w * x).sum()

    fn = session.compile(f)
    x = session.ones(2)
    assert fn(x).item() == fn(x).item() == 2.0 and len(traces) == 1
    w = session.full((2,), 3.0, requires_grad=True)  # the closure cell holds another tensor now
    assert fn(x).item() == 6.0 and len(traces) == 2

    model = session.nn.Linear(2, 1)
    g = session.compile(lambda x: model(x).sum())
    assert g(x).item() == g(x).item()
    model.weight = session.nn.Parameter(session.zeros(1, 2))  # a parameter replaced: traced again
    assert g(x).item() == model.bias.item()


def test_a_tensor_a_module_kept_is_read_afresh(session: gradd.Session) -> None:
    nn = session.nn

    class Keeps(nn.Module):
        def forward(self, x: object) -> object:
            self.hidden = x * 2  # made inside the module's call, read by fn afterwards
            return x + 1

    model = Keeps()
    traces = []

    @session.compile
    def f(x: object) -> object:
        traces.append(1)
        out = model(x)
        return out + model.hidden

    for k in (1.0, 2.0, 3.0):
        assert f(session.full((2,), k)).tolist() == [3 * k + 1] * 2
    # A server's program names the tensor; an embedded plan cannot (no traced call made it),
    # so the function is traced at each call.
    assert len(traces) == (1 if hasattr(session, "target") else 3)


def test_grads_read_before_compiling(session: gradd.Session) -> None:
    w = session.ones(3, requires_grad=True)
    (w * 2).sum().backward()
    g = w.grad  # bound before fn is traced

    @session.compile
    def step(lr: float) -> object:
        loss = (w * w).sum()
        loss.backward()
        with session.no_grad():
            w.sub_(lr * w.grad)
        w.grad.zero_()
        return loss

    del g
    gc.collect()
    losses = [step(0.1).item() for _ in range(4)]
    w2 = session.ones(3, requires_grad=True)
    (w2 * 2).sum().backward()
    want = []
    for _ in range(4):
        loss = (w2 * w2).sum()
        loss.backward()
        with session.no_grad():
            w2.sub_(0.1 * w2.grad)
        w2.grad.zero_()
        want.append(loss.item())
    assert losses == want and w.tolist() == w2.tolist()


def test_gradients_of_tensor_arguments(session: gradd.Session) -> None:
    @session.compile
    def f(x: object) -> object:
        loss = (x * x).sum()
        loss.backward()
        return loss

    for k in (1.0, 2.0, 3.0):
        x = session.full((2,), k, requires_grad=True)
        assert f(x).item() == 2 * k * k
        assert x.grad is not None and x.grad.tolist() == [2 * k] * 2


def test_each_backward_of_a_run_is_a_watch_step(remote: gradd.Session, article_data: tuple) -> None:
    run_article(remote, article_data, True, epochs=5)
    remote.synchronize()
    events = remote.watch(steps_only=True)
    try:
        started = next(iter(events))
        assert isinstance(started, gradd.WatchStarted) and started.step == 5
    finally:
        events.close()


def test_numpy_scalars_are_guarded_by_value(session: gradd.Session) -> None:
    traces = []

    @session.compile
    def f(x: object, k: object) -> object:
        traces.append(1)
        return x * k

    x = session.ones(2)
    assert f(x, np.float64(2.0)).tolist() == [2.0, 2.0]
    assert f(x, np.float64(2.0)).tolist() == [2.0, 2.0]
    assert f(x, np.float64(3.0)).tolist() == [3.0, 3.0]
    assert len(traces) == 2


@pytest.mark.parametrize("read", [print, bool, lambda t: t.tolist(), lambda t: t.numpy(), float])
def test_every_value_read_is_a_graph_break(session: gradd.Session, read: object) -> None:
    def reads(x: object) -> object:
        y = x.sum() * 2
        read(y)
        return y + 1

    with pytest.raises(GraphBreakError, match="fullgraph"):
        session.compile(reads, fullgraph=True)(session.ones(3))
    with pytest.warns(UserWarning, match="graph break"):
        assert session.compile(reads)(session.ones(3)).item() == 7.0


def test_a_tensor_a_program_reads_keeps_its_slot(remote: gradd.Session) -> None:
    # Slots are reused once released: a tensor the program reads by handle (here reached
    # through an attribute no guard covers, read once at trace time as documented) must stay
    # bound, or a later tensor in its slot would be read instead.
    class Box:
        pass

    box = Box()
    box.w = remote.tensor([2.0, 3.0])

    @remote.compile
    def f(x: object) -> object:
        return x * box.w

    assert f(remote.ones(2)).tolist() == [2.0, 3.0]
    box.w = None  # the program's reference is the only one left
    gc.collect()
    others = [remote.full((2,), 100.0 + k) for k in range(8)]  # they take freed slots
    remote.synchronize()
    assert f(remote.ones(2)).tolist() == [2.0, 3.0]
    assert [o.tolist()[0] for o in others] == [100.0 + k for k in range(8)]
