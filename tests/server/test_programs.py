"""Programs (CompileProgram, RunProgram, FreeProgram): checked once, replayed as eager ran them,
counted in the session's limits, freed with it, and hostile runs refused before they change
anything."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from gradd.server.command_runner import execute
from gradd.server.config import ServerConfig
from gradd.server.programs import MAX_PROGRAMS
from gradd.server.session_store import SessionStore
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from server_harness import DEVICE, Tensor, op, tensor

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def new_session(**config: object):
    store = SessionStore(ServerConfig(device=DEVICE, **config), [DEVICE])
    session, _ = store.create(spb.CreateSessionRequest(seed=0))
    return session


def run(session, *commands):
    """(code, message) of the failure, or None."""
    with session.lock:
        failure = execute(session, commands, cpb.ExecuteResponse(), [])
    return None if failure is None else (failure[0], failure[1])


def array(session, handle: str) -> np.ndarray:
    return session.table.get(handle).detach().numpy()


def article_step() -> list[cpb.Command]:
    """The article's step on inputs x, y and the session's b, w; lr is command 8's argument."""
    x, y, b, w = Tensor("x"), Tensor("y"), Tensor("b"), Tensor("w")
    return [
        op("mul", w, x, outs=["wx"]),
        op("add", b, Tensor("wx"), outs=["yhat"]),
        op("sub", y, Tensor("yhat"), outs=["err"]),
        op("pow", Tensor("err"), 2, outs=["sq"]),
        op("mean", Tensor("sq"), outs=["loss"]),
        cpb.Command(backward=cpb.Backward(handle="loss")),
        cpb.Command(grad_of=cpb.GradOf(out="gb", handle="b")),
        cpb.Command(grad_of=cpb.GradOf(out="gw", handle="w")),
        op("mul", Tensor("gb"), 0.1, outs=["db"], no_grad=True),
        op("sub_", b, Tensor("db"), no_grad=True),
        op("mul", Tensor("gw"), 0.1, outs=["dw"], no_grad=True),
        op("sub_", w, Tensor("dw"), no_grad=True),
        cpb.Command(zero_grad=cpb.ZeroGrad(handles=["b", "w"])),
    ]


def setup(session) -> None:
    rng = np.random.RandomState(0)
    xs = rng.rand(8, 1).astype(np.float32)
    assert (
        run(
            session,
            tensor("x", xs),
            tensor("y", 1 + 2 * xs),
            tensor("b", np.float32([0.3]), requires_grad=True),
            tensor("w", np.float32([0.1]), requires_grad=True),
        )
        is None
    )


def compile_article(session, name: str = "step") -> None:
    program = cpb.CompileProgram(
        program=name, commands=article_step(), inputs=["x", "y"], outputs=["loss"]
    )
    program.numbers.add(command=8, position=1)
    program.numbers.add(command=10, position=1)
    assert run(session, cpb.Command(compile_program=program)) is None


def run_command(name="step", inputs=("x", "y"), numbers=(0.1, 0.1), outs=("out",)):
    message = cpb.RunProgram(program=name, inputs=inputs, numbers=numbers, outs=outs)
    return cpb.Command(run_program=message)


def test_a_run_equals_the_commands_run_one_by_one() -> None:
    eager, programs = new_session(), new_session()
    setup(eager), setup(programs)
    compile_article(programs)
    for lr in (0.1, 0.05, 0.2):
        step = article_step()
        step[8].op.args[1].f = step[10].op.args[1].f = lr
        assert run(eager, *step) is None
        assert run(programs, run_command(numbers=(lr, lr), outs=("out",))) is None
        assert array(programs, "out").tolist() == array(eager, "loss").tolist()
    for h in ("b", "w"):
        assert array(programs, h).tolist() == array(eager, h).tolist()
    assert programs.steps == eager.steps == 3  # each backward is a Watch step
    assert "wx" not in programs.table and "loss" not in programs.table  # temporaries dropped
    assert programs.table.get("out").grad_fn.name() == "MeanBackward0"


@pytest.mark.parametrize(
    ("command", "code", "phrase"),
    [
        (run_command(name="nope"), NOT_FOUND, "unknown program"),
        (run_command(inputs=("x",)), INVALID, "takes 2 inputs, 1 given"),
        (run_command(numbers=(0.1,)), INVALID, "takes 2 numbers, 1 given"),
        (run_command(outs=()), INVALID, "takes 1 outs, 0 given"),
        (run_command(inputs=("x", "missing")), NOT_FOUND, "unknown tensor handle"),
        (run_command(outs=("",)), INVALID, "a handle must be"),
    ],
)
def test_hostile_runs_change_nothing(command, code, phrase) -> None:
    session = new_session()
    setup(session)
    compile_article(session)
    before = [array(session, h).tolist() for h in ("b", "w")]
    failure = run(session, command)
    assert failure is not None and failure[0] == code and phrase in failure[1]
    assert [array(session, h).tolist() for h in ("b", "w")] == before
    assert session.steps == 0


@pytest.mark.parametrize(
    ("program", "code", "phrase"),
    [
        (dict(commands=[cpb.Command(fetch=cpb.Fetch(handle="x"))]), INVALID, "programs hold"),
        (dict(commands=[op("nope", Tensor("x"))]), INVALID, "unknown op"),
        (dict(commands=[op("neg", Tensor("missing"), outs=["o"])]), NOT_FOUND, "unknown tensor"),
        (dict(inputs=["x", "x"]), INVALID, "named twice"),
        (
            dict(
                commands=[op("neg", Tensor("x"), outs=["o"])],
                numbers=[cpb.ProgramNumber(command=0)],
            ),
            INVALID,
            "not a float",
        ),  # fmt: skip
        (dict(numbers=[cpb.ProgramNumber(command=3)]), INVALID, "past its end"),
        (dict(program=""), INVALID, "a handle must be"),
    ],
)
def test_bad_programs_are_refused(program, code, phrase) -> None:
    session = new_session()
    setup(session)
    message = cpb.CompileProgram(**{"program": "p", **program})
    failure = run(session, cpb.Command(compile_program=message))
    assert failure is not None and failure[0] == code and phrase in failure[1]
    assert not session.programs


def test_a_failing_command_stops_the_run_as_a_batch() -> None:
    session = new_session()
    setup(session)
    program = cpb.CompileProgram(
        program="p",
        commands=[
            op("add_", Tensor("b"), 1.0, no_grad=True),  # applied, and stays applied
            op("matmul", Tensor("x"), Tensor("x"), outs=["bad"]),  # (8, 1) @ (8, 1) fails
            op("add_", Tensor("w"), 1.0, no_grad=True),
        ],
        outputs=["bad"],
    )
    assert run(session, cpb.Command(compile_program=program)) is None
    failure = run(session, run_command(name="p", inputs=(), numbers=(), outs=("o",)))
    assert failure is not None and failure[0] == INVALID
    assert array(session, "b").tolist() == [pytest.approx(1.3)]
    assert array(session, "w").tolist() == [pytest.approx(0.1)]
    assert "o" not in session.table and "bad" not in session.table


def test_programs_are_counted_and_freed() -> None:
    session = new_session()
    setup(session)
    used = session.meter.used
    compile_article(session)
    assert session.meter.used > used  # the program's bytes
    for i in range(MAX_PROGRAMS - 1):
        compile_article(session, f"p{i}")
    program = cpb.CompileProgram(program="one-more", inputs=["x"], outputs=["x"])
    failure = run(session, cpb.Command(compile_program=program))
    assert failure is not None and failure[0] == EXHAUSTED and "program limit" in failure[1]
    assert run(session, cpb.Command(free_program=cpb.FreeProgram(program="p0"))) is None
    assert run(session, cpb.Command(free_program=cpb.FreeProgram(program="p0"))) is None
    assert run(session, cpb.Command(compile_program=program)) is None
    session.close("test")
    assert not session.programs


def test_a_run_past_the_tensor_limit_is_refused() -> None:
    session = new_session(max_session_tensors=6)
    setup(session)
    compile_article(session)
    failure = run(session, run_command())
    assert failure is not None and failure[0] == EXHAUSTED
    assert session.steps == 0 and array(session, "b").tolist() == [pytest.approx(0.3)]


def test_a_program_past_the_session_bytes_is_refused() -> None:
    session = new_session(max_session_bytes=1 << 20)
    big = tensor("c", np.zeros(300_000, np.float32))  # 1.2 MB of constant in the program
    message = cpb.CompileProgram(program="p", commands=[big], outputs=["c"])
    failure = run(session, cpb.Command(compile_program=message))
    assert failure is not None and failure[0] == EXHAUSTED
    assert not session.programs


def test_a_program_has_at_most_so_many_commands() -> None:
    from gradd.server.programs import MAX_PROGRAM_COMMANDS

    session = new_session()
    setup(session)
    commands = [op("neg", Tensor("x"), outs=["o"])] * (MAX_PROGRAM_COMMANDS + 1)
    message = cpb.CompileProgram(program="p", commands=commands, outputs=["o"])
    failure = run(session, cpb.Command(compile_program=message))
    assert failure is not None and failure[0] == INVALID and "at most" in failure[1]


@pytest.mark.parametrize(
    "command",
    [
        cpb.Command(factory=cpb.Factory(out="o", kind="nope", shape=[2])),
        cpb.Command(factory=cpb.Factory(out="o", kind="zeros", args=[cpb.Value(tensor="x")])),
        cpb.Command(tensor=cpb.CreateTensor(out="o", data={"dtype": 99, "shape": [1]})),
    ],
)
def test_constants_are_checked_when_compiled(command) -> None:
    session = new_session()
    setup(session)
    message = cpb.CompileProgram(program="p", commands=[command], outputs=["x"])
    failure = run(session, cpb.Command(compile_program=message))
    assert failure is not None and failure[0] == INVALID
    assert not session.programs
