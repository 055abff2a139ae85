"""``s.optim`` against ``torch.optim``: 30-step trajectories of every optimizer and option
combination, embedded and on a server, in float64 and float32; groups, state dicts, repr,
errors, version counters, skipped parameters; and one command per step() and zero_grad()."""

from __future__ import annotations

import gradd
import numpy as np
import pytest
from gradd.v1 import command_pb2 as cpb

torch = pytest.importorskip("torch")

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "maximize": True, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ("RMSprop", {"lr": 0.001, "centered": True, "maximize": True, "eps": 1e-4}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "maximize": True}),
]
STEPS = 30
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}  # float32: PyTorch's sqrt is MKL's (see below)


def _data(dtype: str) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    return {
        "x": rng.randn(16, 5).astype(dtype),
        "y": rng.randn(16, 3).astype(dtype),
        "w": (rng.randn(5, 3) * 0.5).astype(dtype),
        "b": rng.randn(3).astype(dtype),
        "unused": rng.randn(2).astype(dtype),
    }


def _train(lib, make_optimizer, data: dict, steps: int = STEPS) -> tuple[list, dict, object]:
    """Losses, final parameters and the optimizer, training with ``lib`` (torch or a session)."""
    x, y = lib.tensor(data["x"]), lib.tensor(data["y"])
    params = {k: lib.tensor(data[k], requires_grad=True) for k in ("w", "b", "unused")}
    opt = make_optimizer(list(params.values()))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((x @ params["w"] + params["b"]).tanh() - y).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss)
    return (
        [float(v.item()) for v in losses],
        {k: v.detach().numpy() for k, v in params.items()},
        opt,
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=lambda c: str(c))
def test_trajectories_match_pytorch(session, name, kwargs, dtype) -> None:
    data = _data(dtype)
    losses, params, opt = _train(session, lambda p: getattr(session.optim, name)(p, **kwargs), data)
    want_losses, want, topt = _train(torch, lambda p: getattr(torch.optim, name)(p, **kwargs), data)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(losses, want_losses, rtol=tol, atol=tol * 1e-2)
    for k in want:
        np.testing.assert_allclose(params[k], want[k], rtol=tol, atol=tol * 1e-2, err_msg=k)
    assert params["unused"].tolist() == data["unused"].tolist()  # no grad: skipped
    _same_state_dicts(opt.state_dict(), topt.state_dict(), tol)


def _same_state_dicts(got: dict, want: dict, tol: float) -> None:
    assert got["param_groups"] == want["param_groups"]
    assert list(got["state"]) == list(want["state"])  # the unused parameter has no state
    for index, state in want["state"].items():
        assert list(got["state"][index]) == list(state)
        for key, value in state.items():
            mine = got["state"][index][key]
            assert tuple(mine.shape) == tuple(value.shape) and str(mine.dtype) == str(value.dtype)
            np.testing.assert_allclose(mine.numpy(), value.numpy(), rtol=tol, atol=tol * 1e-2)


def test_float32_agrees_bit_for_bit_but_for_sqrt() -> None:
    """Sans PyTorch's sqrt (MKL's, not always correctly rounded), gradd's float32 arithmetic is
    PyTorch's to the bit: the rules use PyTorch's sqrt here and must then match exactly."""
    from gradd.engine import optim_kernels as kernels

    class TorchSqrt:
        def __getattr__(self, name: str) -> object:
            return getattr(np, name)

        def sqrt(self, a: np.ndarray) -> np.ndarray:
            return torch.from_numpy(np.ascontiguousarray(a)).sqrt().numpy()

    rng = np.random.RandomState(1)
    for name, kwargs in CASES:
        p0 = rng.randn(257).astype(np.float32)
        tp = torch.tensor(p0, requires_grad=True)
        topt = getattr(torch.optim, name)([tp], **kwargs)
        rule = kernels.RULES[topt.__class__.__name__.lower()]
        o = kernels.options_of(rule, topt.param_groups[0])
        state = [np.full(257, rule.fill(o), np.float32) for _ in rule.slots(o)]
        p = p0.copy()
        for step in range(1, 11):
            g = rng.randn(257).astype(np.float32)
            tp.grad = torch.from_numpy(g.copy())
            topt.step()
            rule.update(TorchSqrt(), p, g, state, float(step), o, step == 1)
        assert p.tobytes() == tp.detach().numpy().tobytes(), (name, kwargs)


def test_groups_state_dict_and_resuming(session) -> None:
    data = _data("float64")

    def groups(lib):
        def make(params):
            w, b, unused = params
            return lib.optim.Adam([{"params": [w]}, {"params": [b, unused], "lr": 0.05}], lr=0.01)

        return make

    _, _, opt = _train(session, groups(session), data, steps=5)
    _, _, topt = _train(torch, groups(torch), data, steps=5)
    saved, tsaved = opt.state_dict(), topt.state_dict()
    _same_state_dicts(saved, tsaved, 1e-10)
    assert repr(opt) == repr(topt)
    # A new optimizer on new parameters loads the state and goes on as PyTorch's does.
    params = [session.tensor(data[k], requires_grad=True) for k in ("w", "b", "unused")]
    resumed = session.optim.Adam([{"params": params[:1]}, {"params": params[1:]}])
    resumed.load_state_dict(saved)
    tparams = [torch.tensor(data[k], requires_grad=True) for k in ("w", "b", "unused")]
    tresumed = torch.optim.Adam([{"params": tparams[:1]}, {"params": tparams[1:]}])
    tresumed.load_state_dict(tsaved)
    for ps, o in ((params, resumed), (tparams, tresumed)):
        (ps[0].sum() * 2 + ps[1].pow(2).sum()).backward()
        o.step()
    assert resumed.param_groups[1]["lr"] == 0.05
    for mine, theirs in zip(params, tparams):
        np.testing.assert_allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    assert float(resumed.state[params[0]]["step"]) == 6.0
    assert resumed.state[params[0]]["exp_avg"] is not saved["state"][0]["exp_avg"]  # a copy


def test_adagrad_state_is_made_with_it(session) -> None:
    p = session.ones(3, requires_grad=True)
    sd = session.optim.Adagrad([p], initial_accumulator_value=0.25).state_dict()
    tsd = torch.optim.Adagrad([torch.ones(3, requires_grad=True)], initial_accumulator_value=0.25)
    _same_state_dicts(sd, tsd.state_dict(), 0)


def test_version_counters_and_saved_tensors(session) -> None:
    for lib in (session, torch):
        w = lib.ones(3, requires_grad=True)
        opt = lib.optim.AdamW([w], weight_decay=0.1)
        y = w * w  # saves w
        y.sum().backward(retain_graph=True)
        opt.step()
        assert w._version == 2  # param.mul_ and param.addcdiv_
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_zero_grad(session) -> None:
    w = session.ones(3, requires_grad=True)
    opt = session.optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    g = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is g and w.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None
    (w * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0, 3.0]


def test_step_with_closure(session) -> None:
    w = session.tensor([1.0, 2.0], requires_grad=True)
    opt = session.optim.SGD([w], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 5.0
    assert w.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("SGD", {"lr": -1}, "Invalid learning rate: -1"),
        ("SGD", {"momentum": -0.5}, "Invalid momentum value: -0.5"),
        ("SGD", {"weight_decay": -1e-3}, "Invalid weight_decay value: -0.001"),
        ("SGD", {"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
        ("Adam", {"lr": -0.1}, "Invalid learning rate: -0.1"),
        ("Adam", {"eps": -1.0}, "Invalid epsilon value: -1.0"),
        ("Adam", {"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0: 1.0"),
        ("AdamW", {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
        ("Adam", {"betas": (0, 0.9)}, "betas must be either both floats or both Tensors"),
        ("RMSprop", {"alpha": -1}, "Invalid alpha value: -1"),
        ("RMSprop", {"momentum": -1}, "Invalid momentum value: -1"),
        ("Adagrad", {"lr_decay": -1}, "Invalid lr_decay value: -1"),
        ("Adagrad", {"initial_accumulator_value": -1}, "Invalid initial_accumulator_value"),
    ],
)
def test_bad_hyperparameters_raise_pytorchs_errors(session, name, kwargs, message) -> None:
    p = session.ones(2, requires_grad=True)
    with pytest.raises(ValueError) as mine:
        getattr(session.optim, name)([p], **kwargs)
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.ones(2, requires_grad=True)], **kwargs)
    assert str(mine.value) == str(theirs.value) and message in str(mine.value)


def test_bad_parameters_raise_pytorchs_errors(session) -> None:
    p = session.ones(2, requires_grad=True)
    cases = [
        (lambda lib, q: lib.optim.SGD(q, lr=0.1), TypeError),  # a tensor, not an iterable
        (lambda lib, q: lib.optim.SGD([], lr=0.1), ValueError),
        (lambda lib, q: lib.optim.SGD([q * 2], lr=0.1), ValueError),  # not a leaf
        (lambda lib, q: lib.optim.SGD([q, 1.0], lr=0.1), TypeError),
        (lambda lib, q: lib.optim.SGD([{"params": [q]}, {"params": q}]), ValueError),
        (lambda lib, q: lib.optim.SGD([{"params": {q}}]), TypeError),
    ]
    tp = torch.ones(2, requires_grad=True)
    for make, kind in cases:
        with pytest.raises(kind) as mine:
            make(session, p)
        with pytest.raises(kind) as theirs:
            make(torch, tp)
        assert str(mine.value) == str(theirs.value)


def test_step_and_zero_grad_are_one_command_each(remote) -> None:
    """Twenty parameters: one OptimizerStep per step(), one ZeroGrad per zero_grad()."""
    params = [remote.randn(4, 3, requires_grad=True) for _ in range(20)]
    opt = remote.optim.Adam(params, lr=0.01, amsgrad=True)
    sent: list[bytes] = []
    push = remote._push  # what every queued command goes through
    remote._push = lambda cmd, site: (sent.append(cmd), push(cmd, site))[1]
    try:
        sum((p * p).sum() for p in params).backward()
        for _ in range(3):
            for call, kind in ((opt.step, "optimizer_step"), (opt.zero_grad, "zero_grad")):
                del sent[:]
                call()
                (command,) = cpb.ExecuteRequest.FromString(b"".join(sent)).commands
                assert command.WhichOneof("kind") == kind
            sum((p * p).sum() for p in params).backward()
    finally:
        remote._push = push
    step = command  # the last zero_grad; the state lives on the server as session tensors
    assert len(step.zero_grad.handles) == 20
    state = opt.state[params[0]]
    assert [float(state["step"])] == [3.0] and state["exp_avg"].shape == (4, 3)
    assert state["max_exp_avg_sq"].numpy().min() > 0


# A PyTorch program that trains with torch.optim and a schedule, run with only its import changed.
PROGRAM = """\
import torch

torch.manual_seed(0)
x = torch.randn(64, 3)
y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
w = torch.zeros(3, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.05}], lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
for epoch in range(30):
    opt.zero_grad()
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    opt.step()
    sched.step()
    if epoch % 10 == 9:
        print(f"epoch {epoch} loss {loss.item():.5f} lr {sched.get_last_lr()}")
print([round(v, 4) for v in w.detach().flatten().tolist()], round(b.item(), 4))
print(sorted(opt.state_dict()["state"]), opt.state_dict()["param_groups"][1]["lr"])
"""


@pytest.mark.cpu_only("PyTorch's CPU random numbers for the data")
@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_a_pytorch_program_trains_the_same(mode, request, tmp_path, capsys) -> None:
    from .test_torch_module import check_session_line, gradd_variant, run_script, target_for

    exec(compile(PROGRAM, "program.py", "exec"), {"__name__": "__main__"})
    expected = capsys.readouterr().out
    script = tmp_path / "program.py"
    script.write_text(gradd_variant(PROGRAM))
    target = target_for(mode, request)
    assert check_session_line(run_script(script, target=target), mode, target) == expected


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_server_and_embedded_run_one_rule(remote, name) -> None:
    """The server's fused step and an embedded optimizer are the same code: the same bits."""
    kwargs = {"RMSprop": {"momentum": 0.5, "centered": True}, "SGD": {"momentum": 0.9}}
    data = _data("float32")
    results = []
    for s in (remote, gradd.connect()):
        _, params, _ = _train(
            s, lambda p, s=s: getattr(s.optim, name)(p, **kwargs.get(name, {})), data, 10
        )
        results.append({k: v.tobytes() for k, v in params.items()})
    assert results[0] == results[1]


def test_loads_pytorchs_state_dict(session) -> None:
    """A PyTorch optimizer's state_dict loads into gradd's, which goes on as PyTorch's does."""
    data = _data("float64")
    _, _, topt = _train(torch, lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True), data, 5)
    saved = topt.state_dict()
    params = [session.tensor(data[k], requires_grad=True) for k in ("w", "b", "unused")]
    opt = session.optim.Adam(params, lr=0.5, amsgrad=True)
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] == 0.01
    tparams = [torch.tensor(data[k], requires_grad=True) for k in ("w", "b", "unused")]
    tnext = torch.optim.Adam(tparams, lr=0.5, amsgrad=True)
    tnext.load_state_dict(saved)
    for ps, o in ((params, opt), (tparams, tnext)):
        (ps[0].pow(2).sum() + ps[1].sum()).backward()
        o.step()
    for mine, theirs in zip(params, tparams):
        np.testing.assert_allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    _same_state_dicts(opt.state_dict(), tnext.state_dict(), 1e-12)


def test_loaded_state_that_does_not_fit_is_refused(session) -> None:
    """State of the wrong shape (a state_dict of another model) fails the step, embedded as a
    ValueError, on a server as the server's INVALID_ARGUMENT (also a ValueError)."""
    p = session.ones(3, requires_grad=True)
    opt = session.optim.SGD([p], lr=0.1, momentum=0.9)
    saved = opt.state_dict()
    saved["state"] = {0: {"momentum_buffer": np.zeros(2, np.float32)}}
    opt.load_state_dict(saved)
    (p * 2).sum().backward()
    with pytest.raises(ValueError, match="'momentum_buffer' must match its parameter"):
        opt.step()
        session.synchronize()
