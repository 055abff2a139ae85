"""The optimizers' rules on their own: the checks a server runs on a client's step (numbers
against PyTorch are tests/sdk/test_optim.py's)."""

from __future__ import annotations

import gradd.engine as ge
import pytest
from gradd.engine import optim_kernels as kernels
from gradd.engine.tensor import wrap

SGD = {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0}
SGD_FLAGS = {"nesterov": 0.0, "maximize": 0.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": -0.5}, "Invalid lr value: -0.5"),
        ({"dampening": float("-inf")}, "Invalid dampening value: -inf"),
        ({"momentum": float("nan")}, "Invalid momentum value: nan"),
        ({"nesterov": 2.0}, "nesterov is a flag: 0 or 1"),
        ({"nesterov": 1.0, "dampening": 0.5}, "Nesterov momentum requires a momentum"),
        ({"betas": 0.5}, "unknown ['betas'], missing []"),
    ],
)
def test_wire_options_are_checked(change, message) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        kernels.check_wire_options(kernels.RULES["sgd"], {**SGD, **SGD_FLAGS, **change})
    kernels.check_wire_options(kernels.RULES["sgd"], {**SGD, **SGD_FLAGS})  # the good ones pass


def test_state_and_parameters_must_be_writable_and_alike() -> None:
    rule, o = kernels.RULES["sgd"], {**SGD, **SGD_FLAGS}
    p = ge.zeros(3, requires_grad=True)
    kernels.check_state(rule, o, p, [ge.zeros(3)])
    one = ge.zeros(1)._data  # one element seen three times: written to, it would be a race
    broadcast = wrap(p.device.xp.broadcast_to(one, (3,)), p.device)
    with pytest.raises(RuntimeError, match="single memory location"):
        kernels.check_state(rule, o, p, [broadcast])
    with pytest.raises(RuntimeError, match="single memory location"):
        kernels.check_param(broadcast)
    with pytest.raises(ValueError, match="'momentum_buffer' must match its parameter"):
        kernels.check_state(rule, o, p, [ge.zeros(3, dtype=ge.float64)])
    with pytest.raises(ValueError, match="keeps 1 state tensors"):
        kernels.check_state(rule, o, p, [])
    with pytest.raises(ValueError, match="floating-point"):
        kernels.check_param(ge.zeros(3, dtype=ge.int64))


def test_apply_moves_versions_as_pytorchs_in_place_ops() -> None:
    p = ge.ones(2, requires_grad=True)
    p.grad = ge.ones(2)
    adamw = kernels.RULES["adamw"]
    o = kernels.options_of(
        adamw,
        {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}
        | {"amsgrad": False, "maximize": False},
    )
    state = kernels.new_state(adamw, o, p)
    kernels.apply(adamw, o, p, state, 1.0, True)
    assert p._version == 2 and [t._version for t in state] == [1, 1]
    kernels.apply(adamw, {**o, "weight_decay": 0.0}, p, state, 2.0, False)
    assert p._version == 3
