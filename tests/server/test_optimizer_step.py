"""The OptimizerStep command: one step for many parameters, its state held as session tensors,
and every hostile input refused (INVALID_ARGUMENT, NOT_FOUND or RESOURCE_EXHAUSTED, never
INTERNAL) before anything changes."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from gradd.engine import optim_kernels as kernels
from gradd.v1 import command_pb2 as cpb
from server_harness import Client, Tensor, op, status, tensor

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ADAM = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
ADAM_FLAGS = {"amsgrad": 0.0, "maximize": 0.0}


def adam(*params: cpb.OptimizerParam, kind: str = "adam", **options: float) -> cpb.Command:
    group = cpb.OptimizerGroup(options={**ADAM, **ADAM_FLAGS, **options}, params=params)
    return cpb.Command(optimizer_step=cpb.OptimizerStep(kind=kind, groups=[group]))


def param(handle: str, state: list[str], init: bool = False, step: float = 1.0):
    return cpb.OptimizerParam(param=handle, state=state, init=init, step=step)


def _with_grads(session, *handles: str) -> None:
    """Parameters w (2,), v (3,) with grads from (w*w).sum() + (v*v).sum(), u (2,) without."""
    values = {"w": [1.0, -2.0], "v": [0.5, 0.25, -1.0], "u": [3.0, 4.0]}
    session.execute(
        *(tensor(h, np.array(values[h], np.float32), requires_grad=True) for h in values),
        op("mul", Tensor("w"), Tensor("w"), outs=["ww"]),
        op("sum", Tensor("ww"), outs=["sw"]),
        op("mul", Tensor("v"), Tensor("v"), outs=["vv"]),
        op("sum", Tensor("vv"), outs=["sv"]),
        op("add", Tensor("sw"), Tensor("sv"), outs=["loss"]),
        cpb.Command(backward=cpb.Backward(handle="loss")),
    )


def _expected_adam(values: list[float], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The parameter and exp_avg after Adam steps on (p*p).sum(), by the engine's rule on
    arrays (which tests/sdk/test_optim.py holds to PyTorch's numbers)."""
    p = np.array(values, np.float32)
    state = [np.zeros_like(p), np.zeros_like(p)]
    for step in range(1, steps + 1):
        kernels.RULES["adam"].update(
            np, p, 2 * p, state, float(step), {**ADAM, **ADAM_FLAGS}, False
        )
    return p, state[0]


def test_one_command_updates_every_parameter_and_keeps_state(session) -> None:
    _with_grads(session)
    session.execute(
        adam(
            param("w", ["m1", "s1"], init=True),
            param("v", ["m2", "s2"], init=True),
            param("u", ["m3", "s3"], init=True),
        )  # fmt: skip
    )
    w, m1 = _expected_adam([1.0, -2.0], 1)
    np.testing.assert_array_equal(session.array("w"), w)
    np.testing.assert_array_equal(session.array("m1"), m1)
    np.testing.assert_array_equal(session.array("v"), _expected_adam([0.5, 0.25, -1.0], 1)[0])
    assert session.array("u").tolist() == [3.0, 4.0]  # no grad: skipped, and no state made
    code, _ = status(lambda: session.fetch("m3"))
    assert code == NOT_FOUND
    # The next step finds the state by its handles (with a fresh gradient of the new w).
    session.execute(
        cpb.Command(zero_grad=cpb.ZeroGrad(handles=["w"], set_to_none=True)),
        op("mul", Tensor("w"), Tensor("w"), outs=["ww"]),
        op("sum", Tensor("ww"), outs=["sw"]),
        cpb.Command(backward=cpb.Backward(handle="sw")),
        adam(param("w", ["m1", "s1"], step=2.0)),
    )
    w, m1 = _expected_adam([1.0, -2.0], 2)
    np.testing.assert_array_equal(session.array("w"), w)
    np.testing.assert_array_equal(session.array("m1"), m1)


def test_the_step_bumps_version_counters(session) -> None:
    _with_grads(session)
    session.execute(
        op("mul", Tensor("w"), Tensor("w"), outs=["saved"]), op("sum", Tensor("saved"), outs=["s"])
    )
    session.execute(adam(param("w", ["m", "v2"], init=True)))
    code, message = status(lambda: session.execute(cpb.Command(backward=cpb.Backward(handle="s"))))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "modified by an inplace" in message


BAD_OPTIONS = [
    ({"lr": -1.0}, "Invalid lr value: -1.0"),
    ({"lr": float("nan")}, "Invalid lr value: nan"),
    ({"eps": float("inf")}, "Invalid eps value: inf"),
    ({"beta1": 1.0}, "Invalid beta parameter at index 0: 1.0"),
    ({"amsgrad": 0.5}, "amsgrad is a flag"),
    ({"momentum": 0.9}, "unknown ['momentum']"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS, ids=lambda x: str(x))
def test_bad_options_are_invalid_and_change_nothing(session, options, message) -> None:
    _with_grads(session)
    code, text = status(lambda: session.execute(adam(param("w", ["m", "s"], init=True), **options)))
    assert code == INVALID and message in text
    assert session.array("w").tolist() == [1.0, -2.0]


def test_missing_options_and_unknown_kinds(session) -> None:
    _with_grads(session)
    group = cpb.OptimizerGroup(options={"lr": 0.1}, params=[param("w", [], init=True)])
    for kind, text in (("adam", "missing ['amsgrad'"), ("lbfgs", "unknown optimizer 'lbfgs'")):
        command = cpb.Command(optimizer_step=cpb.OptimizerStep(kind=kind, groups=[group]))
        code, message = status(lambda c=command: session.execute(c))
        assert code == INVALID and text in message


def test_bad_parameters_and_state_are_invalid_and_change_nothing(session) -> None:
    _with_grads(session)
    session.execute(
        tensor("ints", np.array([1, 2])),
        tensor("small", np.zeros(1, np.float32)),
        tensor("double", np.zeros(2, np.float64)),
        tensor("m", np.zeros(2, np.float32)),
    )
    cases = [
        (adam(param("w", ["m"], init=True)), INVALID, "makes 2 state tensors"),
        (adam(param("w", ["m"])), INVALID, "keeps 2 state tensors"),
        (adam(param("w", ["m", "small"])), INVALID, "'exp_avg_sq' must match its parameter"),
        (adam(param("w", ["m", "double"])), INVALID, "torch.float64"),
        (adam(param("w", ["m", "nope"])), NOT_FOUND, "unknown tensor handle 'nope'"),
        (adam(param("nope", [])), NOT_FOUND, "unknown tensor handle"),
        (adam(param("ints", [])), INVALID, "floating-point"),
        (adam(param("w", ["m", "m"], step=0.0)), INVALID, "step must be finite and >= 1"),
        (adam(param("w", ["m", "m"], step=float("inf"))), INVALID, "step must be finite"),
        (adam(param("w", ["", "x"], init=True)), INVALID, "a handle must be 1 to 256"),
        # A good parameter first: the bad one after it still leaves it untouched.
        (adam(param("v", ["a", "b"], init=True), param("w", ["m"])), INVALID, "keeps 2"),
    ]
    for command, code, text in cases:
        got, message = status(lambda c=command: session.execute(c))
        assert (got, text in message) == (code, True), (text, message)
    assert session.array("w").tolist() == [1.0, -2.0]
    assert session.array("v").tolist() == [0.5, 0.25, -1.0]
    assert session.array("m").tolist() == [0.0, 0.0]
    code, _ = status(lambda: session.fetch("a"))
    assert code == NOT_FOUND  # the failed step made no state


def test_every_kind_runs_with_its_own_options(session) -> None:
    _with_grads(session)
    for kind, rule in kernels.RULES.items():
        options = {name: 0.0 for name in rule.options}
        options.update(lr=0.01)
        options.update({k: v for k, v in {"beta1": 0.9, "beta2": 0.99, "eps": 1e-8,
                                          "alpha": 0.99}.items() if k in options})  # fmt: skip
        slots = [f"{kind}{i}" for i in range(len(rule.slots(options)))]
        group = cpb.OptimizerGroup(options=options, params=[param("w", slots, init=True)])
        session.execute(cpb.Command(optimizer_step=cpb.OptimizerStep(kind=kind, groups=[group])))
    assert np.isfinite(session.array("w")).all() and session.array("w")[0] < 1.0


def test_new_state_is_metered_before_it_is_made(start_server) -> None:
    server = start_server("--max-session-bytes", "1M")
    s = Client(server.addr).session(seed=1)
    big = 96 * 1024  # float32 elements: 384 KiB each; the state of Adam doubles it twice over
    s.execute(
        tensor("p", np.ones(big, np.float32), requires_grad=True),
        op("sum", Tensor("p"), outs=["l"]),
        cpb.Command(backward=cpb.Backward(handle="l")),
    )
    code, message = status(lambda: s.execute(adam(param("p", ["m", "s"], init=True))))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "optimizer's new state" in message
    s.execute(op("getitem", Tensor("p"), slice(0, 4), outs=["head"], no_grad=True))
    assert s.array("head").tolist() == [1.0] * 4  # unchanged
