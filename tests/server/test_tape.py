"""Command.tape, the lean form of ops: it has the readable `op` form's effect for every op of
the table, slots are handles "#N" everywhere and count against the tensor limit, and malformed
tapes are INVALID_ARGUMENT (never INTERNAL), whatever the bytes."""

from __future__ import annotations

import inspect
import os
import struct

import gradd.engine as ge
import grpc
import numpy as np
import pytest
from gradd.engine.op_examples import C, Ex, S
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import service_pb2 as spb
from gradd.wire import tape as tp
from gradd.wire.dtypes import WIRE_DTYPES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_harness import Tensor, decode, op, status, tensor

OPS = sorted(ge.OPS)
CODE = {name: i for i, name in enumerate(OPS)}
FLOATS = (WIRE_DTYPES["float32"], WIRE_DTYPES["float64"])


def tape(*records: bytes) -> cpb.Command:
    return cpb.Command(tape=b"".join(records))


def rec(name: str, *args: tuple[int, object], outs: tuple = (), no_grad: bool = False) -> bytes:
    return tp.record(CODE[name], list(args), list(outs), no_grad)


def slot(n: int) -> tuple[int, int]:
    return (tp.SLOT, n)


def test_server_info_ops_are_the_op_codes(client) -> None:
    info = client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=30)
    assert list(info.ops) == OPS


def test_a_tape_runs_ops_on_slots_named_by_hash_handles(session) -> None:
    a, b = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    session.execute(
        tensor("#0", a, requires_grad=True),
        tensor("#1", b),
        tape(
            rec("mul", slot(0), slot(1), outs=(2,)),
            rec("add", slot(2), (tp.FLOAT, 0.5), outs=(3,)),
            rec("sum", slot(3), outs=(4,)),
        ),
        cpb.Command(backward=cpb.Backward(handle="#4")),
    )
    np.testing.assert_array_equal(session.array("#3"), a * b + 0.5)
    np.testing.assert_array_equal(session.array("#0", grad=True), b)
    info = session.fetch("#3", metadata_only=True).info
    assert info.grad_fn == "AddBackward0" and info.requires_grad
    session.execute(
        tape(rec("sub_", slot(0), slot(1), outs=(0,), no_grad=True)),  # in place, no graph
        op("mul", Tensor("#0"), 2.0, outs=["#5"]),  # the readable form reads and binds slots
        cpb.Command(release=cpb.Release(handles=["#1", "#2", "#7", "#x"])),
    )
    np.testing.assert_array_equal(session.array("#5"), (a - b) * 2)
    code, message = status(lambda: session.fetch("#1"))
    assert code == grpc.StatusCode.NOT_FOUND and "'#1'" in message


def test_a_failing_record_names_itself_and_keeps_the_records_before_it(session) -> None:
    session.execute(tensor("#0", np.ones((2, 3))), tensor("#1", np.ones((4, 5))))
    bad = tape(
        rec("neg", slot(0), outs=(2,)),
        rec("matmul", slot(0), slot(1), outs=(3,)),
        rec("neg", slot(0), outs=(4,)),
    )
    code, message = status(lambda: session.execute(op("neg", Tensor("#0"), outs=["h"]), bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("command 1 (tape): record 1 (op 'matmul'): ")
    assert "cannot be multiplied" in message  # the engine's (PyTorch's) message
    session.fetch("#2")  # record 0 stayed applied
    for unbound in ("#3", "#4"):
        assert status(lambda h=unbound: session.fetch(h))[0] == grpc.StatusCode.NOT_FOUND


def test_slots_count_against_the_tensor_limit(client) -> None:
    s = client.session(limits=spb.SessionLimits(max_tensors=3))
    try:
        s.execute(tensor("a", np.ones(2)), tensor("#0", np.ones(2)))
        s.execute(tape(rec("neg", slot(0), outs=(1,))))  # 3 bound: a, #0, #1
        s.execute(tape(rec("neg", slot(1), outs=(0,))))  # rebinding a bound slot is no new one
        code, message = status(lambda: s.execute(tape(rec("neg", slot(0), outs=(2,)))))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 3" in message
        code, message = status(lambda: s.execute(op("neg", Tensor("#0"), outs=["#2"])))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        code, message = status(lambda: s.execute(op("neg", Tensor("#0"), outs=["b"])))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        s.execute(cpb.Command(release=cpb.Release(handles=["#1"])))
        code, message = status(lambda: s.execute(tape(rec("neg", slot(0), outs=(5,)))))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "slot 5 is past" in message
        s.execute(tape(rec("neg", slot(0), outs=(2,))))  # a released slot's room is free again
    finally:
        s.close()


@pytest.mark.parametrize("handle", ["#", "#01", "#-1", "#1.0", "#١", "# 1", "#99999999999"])
def test_hash_handles_are_only_slot_numbers(session, handle: str) -> None:
    code, message = status(lambda: session.execute(tensor(handle, np.ones(1))))
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


# --- malformed tapes -------------------------------------------------------------------------
def _malformed_cases() -> dict[str, bytes]:
    good = rec("neg", slot(0), outs=(1,))
    return {
        "a truncated head": good[:3],
        "a truncated payload": good[:-1],
        "an unknown op code": tp.HEAD.pack(len(OPS), 0, 0, 0),
        "unknown flags": tp.HEAD.pack(CODE["neg"], 2, 1, 1) + good[5:],
        "an unknown kind": tp.HEAD.pack(CODE["neg"], 0, 1, 0) + b"\x09" + b"\x00" * 8,
        "a bool of 2": rec("add", slot(0), slot(0), outs=(1,))[:5]
        + b"\x00\x03"
        + b"\0" * 4
        + b"\x02",
        "a None of 1": tp.HEAD.pack(CODE["neg"], 0, 1, 0) + b"\x04\x01",
        "dtype 0": rec("to_dtype", slot(0), (tp.DTYPE, 0), outs=(1,)),
        "nargs past the end": tp.HEAD.pack(CODE["neg"], 0, 255, 255),
    }


@pytest.mark.parametrize("case", sorted(_malformed_cases()))
def test_malformed_tapes_are_invalid_argument(session, case: str) -> None:
    session.execute(tensor("#0", np.ones(3)))
    code, message = status(lambda: session.execute(tape(_malformed_cases()[case])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert "record 0" in message


EXAMPLES = int(os.environ.get("GRADD_FUZZ_EXAMPLES", "60"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="GRADD_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.builds(
                lambda code, flags, args, outs: (
                    tp.HEAD.pack(code, flags, len(args), len(outs))
                    + bytes(k for k, _ in args)
                    + b"".join(p for _, p in args)
                    + b"".join(struct.pack("<I", o) for o in outs)
                ),
                st.integers(0, len(OPS) + 3),
                st.integers(0, 3),
                st.lists(
                    st.tuples(st.integers(0, 7), st.binary(min_size=1, max_size=8)), max_size=4
                ),
                st.lists(st.integers(0, 12), max_size=3),
            ),
        ),
        max_size=6,
    )
)
def test_any_tape_is_answered_without_internal_errors(session, parts: list[bytes]) -> None:
    session.execute(tensor("#0", np.ones((2, 2))), tensor("#1", np.arange(4)))
    try:
        session.execute(tape(*parts))
    except grpc.RpcError as err:
        assert err.code() != grpc.StatusCode.INTERNAL, err.details()
        assert err.code() != grpc.StatusCode.UNKNOWN, err.details()
    session.fetch("#0")  # the session goes on


# --- both forms agree on every op ---------------------------------------------------------------
def _example(d: ge.OpDef) -> Ex | None:
    """The op's first example that the tape can carry (positional arguments only)."""
    examples = list(d.examples) or [
        Ex(
            *(
                S(2, 3)
                for p in d.params
                if p.default is inspect.Parameter.empty and p.kind is not p.VAR_POSITIONAL
            )
        )
    ]
    for ex in examples:
        if (
            not ex.kwargs
            and all(
                isinstance(a, (S, C)) or type(a) in (float, int, bool) or a is None for a in ex.args
            )
            and d.arity != -1
        ):
            return ex
    return None


TAPE_OPS = [name for name in OPS if _example(ge.OPS[name]) is not None]


def test_most_ops_have_a_tape_example() -> None:
    assert len(TAPE_OPS) > len(OPS) // 2, (len(TAPE_OPS), len(OPS))


def _inputs(ex: Ex, inplace: bool) -> list:
    rng = np.random.default_rng(0)
    out = []
    for a in ex.args:
        if isinstance(a, S):
            out.append(("t", a.make(rng), a.grad and not inplace))
        elif isinstance(a, C):
            out.append(("t", a.value, False))
        else:
            out.append(("v", a, False))
    return out


def _wire_arg(kind_value: tuple) -> tuple[int, object]:
    v = kind_value
    if v is None:
        return (tp.NONE, 0)
    if type(v) is bool:
        return (tp.BOOL, v)
    if type(v) is int:
        return (tp.INT, v)
    return (tp.FLOAT, v)


@pytest.mark.parametrize("name", TAPE_OPS)
def test_the_lean_and_readable_forms_agree(session, name: str) -> None:
    d = ge.OPS[name]
    ex = _example(d)
    inputs = _inputs(ex, d.inplace)
    arrays = [ge.tensor(v, requires_grad=g) if k == "t" else v for k, v, g in inputs]
    try:
        local = ge.call_op(name, *arrays)
        nouts = len(local) if isinstance(local, tuple) else 1
        if not all(isinstance(r, ge.Tensor) for r in (local if nouts > 1 else (local,))):
            nouts = 0
    except Exception:
        nouts = 1  # both forms must then fail alike
    answers = []
    for form in ("readable", "lean"):
        base = 0 if form == "readable" else 50
        cmds = [cpb.Command(manual_seed=cpb.ManualSeed(seed=7))]
        args_r, args_l = [], []
        for i, (k, v, g) in enumerate(inputs):
            if k == "t":
                cmds.append(tensor(f"#{base + i}", v, requires_grad=g))
                args_r.append(Tensor(f"#{base + i}"))
                args_l.append(slot(base + i))
            else:
                args_r.append(v)
                args_l.append(_wire_arg(v))
        outs = [base + 20 + j for j in range(nouts)]
        if form == "readable":
            cmds.append(op(name, *args_r, outs=[f"#{o}" for o in outs]))
        else:
            cmds.append(tape(rec(name, *args_l, outs=tuple(outs))))
        session.execute(*cmds[:-1])
        try:
            session.execute(cmds[-1])
        except grpc.RpcError as err:
            message = err.details().split(": ", 1)[1]
            if form == "lean":
                message = message.split(f"record 0 (op '{name}'): ", 1)[1]
            answers.append(("error", err.code(), message))
            continue
        got = []
        for o in outs:
            v = session.fetch(f"#{o}")
            got.append((decode(v).tolist(), str(v.info)))
            if v.info.requires_grad and v.data.dtype in (
                WIRE_DTYPES["float32"],
                WIRE_DTYPES["float64"],
            ):
                session.execute(
                    op("sum", Tensor(f"#{o}"), outs=[f"#{base + 40}"]),
                    cpb.Command(backward=cpb.Backward(handle=f"#{base + 40}")),
                )
                for i, (_, _, g) in enumerate(inputs):
                    if g:
                        grad = session.fetch(f"#{base + i}", grad=True)
                        got.append(None if grad.is_none else decode(grad).tolist())
                break
        for i, (k, _, _) in enumerate(inputs):
            if k == "t":
                v = session.fetch(f"#{base + i}")
                got.append((decode(v).tolist(), v.info.version))
        answers.append(("ok", got))
    readable, lean = answers
    assert lean == readable


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="GRADD_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.sampled_from(["neg", "exp", "add", "to_dtype"]), min_size=1, max_size=5), st.data()
)
def test_a_tape_cut_inside_a_record_is_invalid_argument_after_the_records_before_it(
    session, names: list[str], data: st.DataObject
) -> None:
    args = {
        "neg": [slot(0)],
        "exp": [slot(0)],
        "add": [slot(0), (tp.FLOAT, 2.5)],
        "to_dtype": [slot(0), (tp.DTYPE, WIRE_DTYPES["float32"])],
    }
    records = [rec(name, *args[name], outs=(10 + i,)) for i, name in enumerate(names)]
    whole = b"".join(records)
    bounds = {sum(len(r) for r in records[:i]) for i in range(len(records) + 1)}
    cut = data.draw(st.integers(1, len(whole) - 1).filter(lambda c: c not in bounds))
    complete = sum(1 for b in bounds if 0 < b <= cut)
    session.execute(
        tensor("#0", np.ones(3)),
        cpb.Command(release=cpb.Release(handles=[f"#{10 + i}" for i in range(5)])),
    )
    code, message = status(lambda: session.execute(tape(whole[:cut])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert f"record {complete}" in message and "truncated" in message, message
    for i in range(len(records)):
        if i < complete:
            session.fetch(f"#{10 + i}")  # applied
        else:
            assert status(lambda i=i: session.fetch(f"#{10 + i}"))[0] == grpc.StatusCode.NOT_FOUND


def test_graph_labels_of_released_slots_are_left_out(session) -> None:
    session.execute(
        tensor("#0", np.ones(2), requires_grad=True), op("neg", Tensor("#0"), outs=["#1"])
    )
    labelled = cpb.Graph(handle="#1", params={"w": "#0"}, publish=True)
    session.execute(cpb.Command(graph=labelled))
    session.execute(cpb.Command(release=cpb.Release(handles=["#0"])))
    session.execute(cpb.Command(graph=cpb.Graph(handle="#1", publish=True)))  # labels: none bound
    code, _ = status(lambda: session.execute(cpb.Command(graph=cpb.Graph(handle="#x"))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
