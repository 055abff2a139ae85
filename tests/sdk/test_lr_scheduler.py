"""``s.optim.lr_scheduler`` against ``torch.optim.lr_scheduler``: the same learning rates (and
cycled momenta) step by step, ``get_last_lr``, ``state_dict`` keys, closed forms and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# Some tests step a schedule without training: PyTorch warns of the order, and so does gradd.
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of")

STEPS = 40
SCHEDULES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [3, 10, 10, 25], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.93}),
    ("CosineAnnealingLR", {"T_max": 12}),
    ("CosineAnnealingLR", {"T_max": 9, "eta_min": 0.001}),
    ("LambdaLR", {"lr_lambda": lambda epoch: 0.95**epoch + (epoch % 3) * 0.01}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS}),
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "epochs": 4, "steps_per_epoch": 10}),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": STEPS, "anneal_strategy": "linear"}),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": STEPS, "three_phase": True}),
]


def _optimizer(lib, kind: str, w, b):
    groups = [{"params": [w]}, {"params": [b], "lr": 0.05}]
    if kind == "Adam":
        return lib.optim.Adam(groups, lr=0.1)
    return lib.optim.SGD(groups, lr=0.1, momentum=0.9)


def _run(lib, name: str, kwargs: dict, kind: str) -> tuple[list, list, object]:
    w = lib.tensor([1.0, -2.0], requires_grad=True)
    b = lib.tensor([0.5], requires_grad=True)
    opt = _optimizer(lib, kind, w, b)
    sched = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
    rates, momenta = [sched.get_last_lr()], []
    for _ in range(STEPS - 1 if name == "OneCycleLR" else STEPS):
        (w * w).sum().add(b.sum()).backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        rates.append(sched.get_last_lr())
        momenta.append([g.get("betas", (g.get("momentum"),))[0] for g in opt.param_groups])
    return rates, momenta, sched


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize(("name", "kwargs"), SCHEDULES, ids=lambda c: str(c))
def test_schedules_match_pytorch(session, name, kwargs, kind) -> None:
    rates, momenta, sched = _run(session, name, kwargs, kind)
    want_rates, want_momenta, tsched = _run(torch, name, kwargs, kind)
    assert rates == want_rates
    assert momenta == want_momenta
    assert sorted(sched.state_dict()) == sorted(tsched.state_dict())


def test_closed_forms_with_an_epoch(session) -> None:
    for name, kwargs in SCHEDULES[:5]:
        lrs = []
        for lib in (session, torch):
            w = lib.tensor([1.0], requires_grad=True)
            sched = getattr(lib.optim.lr_scheduler, name)(lib.optim.SGD([w], lr=0.1), **kwargs)
            with pytest.warns(UserWarning) as warned:
                sched.step(17)
            lrs.append(sorted(str(w.message)[:40] for w in warned))  # PyTorch's two warnings
            lrs.append(sched.get_last_lr())
        assert lrs[:2] == lrs[2:], name


def test_reduce_lr_on_plateau(session) -> None:
    losses = [1.0, 0.9, 0.95, 0.96, 0.97, 0.97, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85]
    options = [
        {"patience": 2},
        {"mode": "max", "factor": 0.5, "patience": 1, "cooldown": 2, "threshold_mode": "abs"},
        {"patience": 0, "min_lr": [0.02, 0.04], "factor": 0.3},
    ]
    for kwargs in options:
        got = []
        for lib in (session, torch):
            w, b = lib.tensor([1.0], requires_grad=True), lib.tensor([1.0], requires_grad=True)
            opt = _optimizer(lib, "SGD", w, b)
            sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
            rates = []
            for loss in losses:
                sched.step(loss)
                rates.append(sched.get_last_lr())
            got.append((rates, sched.num_bad_epochs, sched.best, sorted(sched.state_dict())))
        assert got[0] == got[1], kwargs


def test_state_dict_round_trip(session) -> None:
    w = session.tensor([1.0], requires_grad=True)
    opt = session.optim.SGD([w], lr=0.1)
    sched = session.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    for _ in range(4):
        sched.step()
    saved = sched.state_dict()
    again = session.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
    again.load_state_dict(saved)
    assert (again.step_size, again.gamma, again.last_epoch) == (3, 0.5, 4)
    again.step(), again.step()
    assert math.isclose(again.get_last_lr()[0], 0.025)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("OneCycleLR", {"max_lr": 0.1}),
        ("OneCycleLR", {"max_lr": 0.1, "total_steps": 0}),
        ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1}),
        ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10, "anneal_strategy": "cubic"}),
        ("OneCycleLR", {"max_lr": [0.1, 0.2, 0.3], "total_steps": 10}),
        ("ReduceLROnPlateau", {"factor": 1.0}),
        ("ReduceLROnPlateau", {"mode": "middle"}),
        ("LambdaLR", {"lr_lambda": [lambda e: 1.0] * 3}),
    ],
)
def test_errors_are_pytorchs(session, name, kwargs) -> None:
    messages = []
    for lib in (session, torch):
        w, b = lib.tensor([1.0], requires_grad=True), lib.tensor([1.0], requires_grad=True)
        with pytest.raises(ValueError) as caught:
            getattr(lib.optim.lr_scheduler, name)(_optimizer(lib, "SGD", w, b), **kwargs)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_one_cycle_refuses_to_step_past_its_end(session) -> None:
    w = session.tensor([1.0], requires_grad=True)
    sched = session.optim.lr_scheduler.OneCycleLR(session.optim.SGD([w]), 0.1, total_steps=2)
    sched.step(), sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        sched.step()
    assert np.isfinite(sched.get_last_lr()).all()


def test_a_schedule_is_no_command_on_a_server(remote) -> None:
    w = remote.tensor([1.0], requires_grad=True)
    opt = remote.optim.SGD([w], lr=0.1)
    sched = remote.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    sent = []
    push = remote._push
    remote._push = lambda cmd, site: (sent.append(site[0]), push(cmd, site))[1]
    try:
        for _ in range(5):
            sched.step()
    finally:
        remote._push = push
    assert sent == []
