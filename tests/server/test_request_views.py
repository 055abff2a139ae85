"""The ExecuteRequest reader against hostile bytes: every malformed body raises, and the work it
does is bounded whatever the size (counted in varints read, never timed)."""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_messages import mutated
from google.protobuf.message import DecodeError
from gradd.server import request_views as rv
from gradd.server.errors import MalformedRequest
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb
from gradd.wire.varint import varint
from hypothesis import given, settings
from hypothesis import strategies as st
from server_harness import Tensor, op, tensor

MiB = 1 << 20


@pytest.fixture
def varints_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the varints the reader decodes and the bytes each took (its unit of work)."""
    read: list[int] = []
    decode = rv._varint

    def counting(buf, pos, end):
        try:
            value, after = decode(buf, pos, end)
        except MalformedRequest:
            read.append(min(end - pos, rv.MAX_VARINT))
            raise
        read.append(after - pos)
        return value, after

    monkeypatch.setattr(rv, "_varint", counting)
    return read


def _field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _garbage(size: int) -> dict[str, bytes]:
    """Bodies of `size` bytes that are not ExecuteRequests, each a different attack."""
    command_of_unknowns = b"\x28\x00" * ((size - 8) // 2)  # Command field 5: varint 0, repeated
    return {
        "0xff": b"\xff" * size,
        "sequence varint of 0xff": b"\x18" + b"\xff" * (size - 1),
        "empty commands": b"\x12\x00" * (size // 2),
        "unknown varint fields": b"\x20\x00" * (size // 2),
        "a command of unknown fields": _field(2, command_of_unknowns),
        "a length past the end": b"\x12" + varint(2 * size) + b"\x00" * size,
        "a group": b"\x13" + b"\x00" * size,
        "field number 0": b"\x02" + varint(size) + b"\x00" * size,
        "a truncated fixed64": b"\x00" * (size - 3) + b"\x21\x01",
    }


@pytest.mark.timeout(120)
def test_garbage_is_refused_after_a_bounded_number_of_reads(varints_read):
    work: dict[str, list[int]] = {}
    for size in (MiB, 4 * MiB):
        for name, wire in _garbage(size).items():
            varints_read.clear()
            with pytest.raises(MalformedRequest):
                rv.read_execute_request(wire)
            assert max(varints_read) <= rv.MAX_VARINT, name  # no varint grows without end
            work.setdefault(name, []).append(len(varints_read))
    for name, (small, large) in work.items():
        # Four times the bytes, the same work: the reader stops at a bound, not at the end.
        assert small == large <= 2 * rv.MAX_FIELDS + 2, name


def test_the_attack_of_the_issue_is_a_clear_error():
    with pytest.raises(MalformedRequest, match="varint longer than 10 bytes at byte 1"):
        rv.read_execute_request(b"\x18" + b"\xff" * 600_000)
    with pytest.raises(MalformedRequest, match="more than 16384 commands"):
        rv.read_execute_request(b"\x12\x00" * 40_000)
    with pytest.raises(MalformedRequest, match="more than 16384 commands"):
        rv.read_execute_request(b"\x12\x00" * 20_000)  # under 64 KiB: parsed by protobuf
    with pytest.raises(DecodeError):  # small bodies: protobuf's own parser refuses them
        rv.read_execute_request(b"\x18" + b"\xff" * 100)


def test_work_on_valid_requests_does_not_grow_with_their_payloads(varints_read):
    work = []
    for size in (MiB, 4 * MiB):
        array = np.zeros(size // 4, np.float32)
        request = cpb.ExecuteRequest(
            session_id="s", commands=[tensor("a", array), op("neg", Tensor("a"), outs=["n"])]
        )
        varints_read.clear()
        received = rv.read_execute_request(request.SerializeToString())
        assert len(received.raw_views[0]) == size and received.commands[1].op.op == "neg"
        work.append(len(varints_read))
    assert work[0] == work[1]


def test_deep_nesting_is_refused_by_protobuf_without_python_recursion():
    # Value -> tuple -> Value ...: the reader never descends into Values, protobuf's parser
    # stops at its recursion limit (100 messages) for small and large bodies alike.
    value = cpb.Value(none=cpb.NoneValue()).SerializeToString()
    for _ in range(200):  # built as bytes: protobuf would not build the message either
        value = _field(11, _field(1, value))  # Value.tuple.items
    nested = _field(2, _field(4, _field(2, value)))  # ExecuteRequest.commands.op.args
    for wire in (nested, nested + _field(1, b"s" * (1 << 16))):
        with pytest.raises(DecodeError):
            rv.read_execute_request(wire)


def _command_part() -> st.SearchStrategy[bytes]:
    """One field of a Command: a `tensor` with or without raw bytes, or another kind."""
    raw = st.binary(max_size=16).map(
        lambda b: cpb.Command(
            tensor=cpb.CreateTensor(out="t", data=tpb.TensorData(dtype=tpb.BOOL, raw=b))
        )
    )
    typed = st.just(cpb.Command(tensor=cpb.CreateTensor(data=tpb.TensorData(int_values=[1]))))
    other = st.sampled_from([op("neg", Tensor("t")), cpb.Command(fetch=cpb.Fetch(handle="t"))])
    return st.one_of(raw, typed, other).map(lambda c: c.SerializeToString())


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.lists(st.lists(_command_part(), min_size=1, max_size=4), min_size=1, max_size=4))
def test_the_reader_agrees_with_protobuf(commands):
    # Repeated and switching oneof fields in one Command: protobuf merges a repeated `tensor`
    # and clears it when another kind follows. With the cut-out payloads put back, the reader's
    # message is protobuf's.
    padding = tensor("pad", np.zeros(1 << 14, np.float32)).SerializeToString()  # past 64 KiB
    wire = b"".join(_field(2, b"".join(parts)) for parts in [*commands, [padding]])
    expected = cpb.ExecuteRequest.FromString(wire)
    received = rv.read_execute_request(wire)
    message = received.message
    for index, view in received.raw_views.items():
        if message.commands[index].WhichOneof("kind") == "tensor":
            assert message.commands[index].tensor.data.raw == b""
            message.commands[index].tensor.data.raw = bytes(view)
    assert message == expected


def _large_request() -> bytes:
    small = [tensor("s", np.arange(3, dtype=np.float32)), op("neg", Tensor("s"), outs=["n"])]
    small.append(cpb.Command(fetch=cpb.Fetch(handle="n")))
    big = tensor("big", np.zeros(1 << 14, np.float32))
    return cpb.ExecuteRequest(session_id="s", commands=[*small, big, *small]).SerializeToString()


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_mutated_large_requests_read_as_protobuf_reads_them_or_not_at_all(data):
    wire = data.draw(mutated(_large_request()))
    try:
        received = rv.read_execute_request(wire)
    except (MalformedRequest, DecodeError):
        return  # refused: stricter than protobuf only for groups, which gradd.v1 never uses
    expected = cpb.ExecuteRequest.FromString(wire)  # the reader accepts nothing protobuf refuses
    message = received.message
    for index, view in received.raw_views.items():
        if message.commands[index].WhichOneof("kind") == "tensor":
            message.commands[index].tensor.data.raw = bytes(view)
    assert message == expected
