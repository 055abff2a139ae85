"""The `custom_function` command: a client's backward program, checked before it is kept,
counted by the session's meter, freed with the graph, and replayed in backward."""

from __future__ import annotations

import gc
import weakref

import grpc
import numpy as np
import pytest
from gradd.server.command_runner import execute
from gradd.server.config import ServerConfig
from gradd.server.custom_function import MAX_PROGRAM_COMMANDS
from gradd.server.session_store import SessionStore
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from server_harness import DEVICE, Tensor, factory, op, tensor

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def new_session(**config: object):
    store = SessionStore(ServerConfig(device=DEVICE, **config), [DEVICE])
    session, _ = store.create(spb.CreateSessionRequest(seed=0))
    return session


def run(session, *commands):
    """(code, message) of the failure, or None."""
    with session.lock:
        failure = execute(session, commands, cpb.ExecuteResponse(), [])
    return None if failure is None else (failure[0], failure[1])


def twice(**fields) -> cpb.Command:
    """y = TwiceBackward(x): forward y = 2x, backward 2g (fields replace any part)."""
    message = {
        "name": "TwiceBackward",
        "inputs": ["x"],
        "outputs": ["y"],
        "outs": ["y"],
        "differentiable": [True],
        "dirty": [False],
        "grad_outputs": ["g"],
        "backward": [op("mul", Tensor("g"), 2.0, outs=["gx"])],
        "grad_inputs": ["gx"],
    }
    message.update(fields)
    return cpb.Command(custom_function=cpb.CustomFunction(**message))


def setup(session) -> None:
    assert (
        run(
            session,
            tensor("x", np.array([1.0, 2.0], np.float32), requires_grad=True),
            op("mul", Tensor("x"), 2.0, outs=["y"], no_grad=True),
        )
        is None
    )


def test_the_node_replays_its_program_in_backward():
    s = new_session()
    setup(s)
    assert run(s, twice(), op("sum", Tensor("y"), outs=["loss"])) is None
    assert s.table.get("y").grad_fn.name() == "TwiceBackward"
    assert run(s, cpb.Command(backward=cpb.Backward(handle="loss"))) is None
    assert s.table.get("x").grad.numpy().tolist() == [2.0, 2.0]
    # Its graph was freed, but its program reads no session tensor: a second pass runs.
    assert run(s, cpb.Command(backward=cpb.Backward(handle="loss"))) is None


def test_session_tensors_it_reads_are_kept_by_the_node_and_freed_with_it():
    s = new_session()
    setup(s)
    program = [op("mul", Tensor("g"), Tensor("w"), outs=["gx"])]
    assert (
        run(
            s,
            tensor("w", np.full(100_000, 3.0, np.float32)),
            op("mul", Tensor("x"), 1.0, outs=["one"]),  # a graph that the node leads into
            op("sum", Tensor("w"), outs=["unused"], no_grad=True),
        )
        is None
    )
    w = weakref.ref(s.table.get("w"))
    x2 = np.ones(100_000, np.float32)
    assert (
        run(
            s,
            tensor("x2", x2, requires_grad=True),
            op("mul", Tensor("x2"), 2.0, outs=["y2"], no_grad=True),
            twice(inputs=["x2"], outputs=["y2"], outs=["y2"], backward=program),
            cpb.Command(release=cpb.Release(handles=["w"])),
            op("sum", Tensor("y2"), outs=["loss"]),
        )
        is None
    )
    gc.collect()
    assert w() is not None  # the node keeps what its program reads
    held = s.meter.used
    assert run(s, cpb.Command(backward=cpb.Backward(handle="loss"))) is None
    assert s.table.get("x2").grad.numpy()[:2].tolist() == [3.0, 3.0]
    gc.collect()
    assert w() is None  # freed with the graph's saved tensors
    code, message = run(s, cpb.Command(backward=cpb.Backward(handle="loss")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "a second time" in message
    assert run(s, cpb.Command(release=cpb.Release(handles=["y2", "loss"]))) is None
    gc.collect()
    assert s.meter.used <= held  # w's 400,000 bytes went, x2's new .grad (as many) came


def test_the_program_is_counted_by_the_meter():
    s = new_session()
    setup(s)
    base = s.meter.used
    big = [op("add", Tensor("g"), float(i), outs=["gx"]) for i in range(2000)]
    assert run(s, twice(backward=big)) is None
    grown = s.meter.used - base
    assert grown >= twice(backward=big).ByteSize() - 100
    assert run(s, cpb.Command(release=cpb.Release(handles=["y", "x"]))) is None
    gc.collect()
    assert s.meter.used <= base  # the node went with y, and its program with it


BAD = [
    (twice(name="n" * 300), INVALID, "at most 256 characters"),
    (twice(outs=["y", "z"]), INVALID, "outs needs one entry per output"),
    (twice(grad_inputs=[]), INVALID, "grad_inputs needs one entry per input"),
    (twice(dirty=[True]), INVALID, "not one of its inputs"),
    (twice(inputs=["nope"]), grpc.StatusCode.NOT_FOUND, "unknown tensor handle"),
    (twice(inputs=["y"], outputs=["x"]), INVALID, "computed without a graph"),
    (
        twice(backward=[cpb.Command(backward=cpb.Backward(handle="x"))]),
        INVALID,
        "only op, detach, factory and tensor commands",
    ),
    (twice(backward=[op("evil", Tensor("g"), outs=["gx"])]), INVALID, "unknown op"),
    (twice(backward=[op("dropout", Tensor("g"), outs=["gx"])]), INVALID, "cannot draw"),
    (twice(backward=[factory("c", "randn", [2])]), INVALID, "cannot make a 'randn'"),
    (twice(backward=[op("mul", Tensor("g"), Tensor("gone"), outs=["gx"])]), None, "gone"),
    (twice(backward=[op("mul", Tensor("g"), 2.0, outs=[""])]), INVALID, "1 to 256 characters"),
    (
        twice(backward=[op("neg", Tensor("g"), outs=["gx"])] * (MAX_PROGRAM_COMMANDS + 1)),
        INVALID,
        f"at most {MAX_PROGRAM_COMMANDS} commands",
    ),
    (twice(grad_inputs=["never"]), grpc.StatusCode.NOT_FOUND, "never"),
]


@pytest.mark.parametrize("command, code, phrase", BAD)
def test_bad_programs_are_refused_before_anything_is_kept(command, code, phrase):
    s = new_session()
    setup(s)
    failure = run(s, command)
    assert failure is not None and phrase in failure[1], failure
    assert failure[0] == (code or grpc.StatusCode.NOT_FOUND)
    y = s.table.get("y")
    assert y.grad_fn is None and not y.requires_grad  # nothing changed


def test_a_constant_past_the_memory_limit_is_refused():
    s = new_session(max_session_bytes=1 << 20)
    setup(s)
    constant = tensor("c", np.ones(1 << 19, np.float32))  # 2 MiB
    program = [constant, op("mul", Tensor("g"), Tensor("c"), outs=["gx"])]
    code, message = run(s, twice(backward=program))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "memory limit" in message


def test_a_failing_replay_is_the_user_s_error_and_the_session_goes_on():
    s = new_session()
    setup(s)
    program = [op("matmul", Tensor("g"), Tensor("g"), Tensor("g"), outs=["gx"])]
    assert run(s, twice(backward=program), op("sum", Tensor("y"), outs=["loss"])) is None
    code, _ = run(s, cpb.Command(backward=cpb.Backward(handle="loss")))
    assert code in (INVALID, grpc.StatusCode.FAILED_PRECONDITION)
    assert run(s, op("add", Tensor("x"), 1.0, outs=["z"])) is None


def test_a_program_is_refused_memory_the_backward_pass_would_otherwise_be_lent():
    s = new_session(max_session_bytes=64 << 20)
    setup(s)
    huge = [op("repeat", Tensor("g"), 100_000, 100_000, outs=["gx"])]  # 80 GB
    assert run(s, twice(backward=huge), op("sum", Tensor("y"), outs=["loss"])) is None
    code, message = run(s, cpb.Command(backward=cpb.Backward(handle="loss")))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "memory limit" in message
    assert s.meter.lenient == 0
    assert run(s, op("add", Tensor("x"), 1.0, outs=["z"])) is None
