"""ExecuteRequests read without copying their tensors: raw bytes stay views into the wire.

Parsing a message copies its bytes fields, and reading such a field copies it again; for a
64 MiB upload each copy costs as much as the network. So a large request is parsed with its
`tensor` commands' `data.raw` cut out (lengths of the enclosing messages rewritten), and each
cut-out payload is kept as a view into the received bytes, by command index.

The cutting reads the wire format in Python, so it is bounded whatever the bytes: varints of
at most 10 bytes, lengths checked against the end of their message, only the wire types
protobuf defines for proto3 (no groups), at most MAX_FIELDS fields read and recursion only
along the fixed path to `raw` (3 levels). Bytes that break these raise MalformedRequest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb
from gradd.wire.varint import varint

from .errors import MalformedRequest

LARGE = 1 << 16  # requests at least this big have their raw payloads cut out
MAX_COMMANDS = 1 << 14  # per ExecuteRequest (the SDK sends 512)
# Fields the scan of a large request may read: a command and the fields on its way to
# `tensor.data.raw` (8 for a tensor command with every field set), with room to spare.
MAX_FIELDS = 10 * MAX_COMMANDS
MAX_VARINT = 10  # bytes: 64 bits
MAX_FIELD_NUMBER = (1 << 29) - 1


def _number(message: Any, field: str) -> int:
    return message.DESCRIPTOR.fields_by_name[field].number


COMMANDS = _number(cpb.ExecuteRequest, "commands")
RAW_PATH = (_number(cpb.Command, "tensor"), _number(cpb.CreateTensor, "data"))
RAW_PATH += (_number(tpb.TensorData, "raw"),)
# Any other kind of Command after `tensor` clears it (they are members of one oneof).
_KINDS = cpb.Command.DESCRIPTOR.oneofs_by_name["kind"].fields
OTHER_KINDS = frozenset(f.number for f in _KINDS) - {RAW_PATH[0]}


class ReceivedRequest:
    """A parsed ExecuteRequest and the views of its cut-out raw payloads. Attribute reads go to
    the message, so it reads like one (to interceptors too)."""

    __slots__ = ("message", "raw_views")

    def __init__(self, message: cpb.ExecuteRequest, raw_views: dict[int, memoryview]) -> None:
        self.message = message
        self.raw_views = raw_views

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)


def read_execute_request(wire: bytes) -> ReceivedRequest:
    """Parse an ExecuteRequest, keeping large raw payloads as views (the deserializer).

    Raises MalformedRequest (or protobuf's DecodeError) for bytes that are not one."""
    if len(wire) < LARGE:  # protobuf's parser bounds the rest
        message = cpb.ExecuteRequest.FromString(wire)
        if len(message.commands) > MAX_COMMANDS:
            raise MalformedRequest(f"more than {MAX_COMMANDS} commands in one ExecuteRequest")
        return ReceivedRequest(message, {})
    reduced, views = strip_raw(wire)
    return ReceivedRequest(cpb.ExecuteRequest.FromString(reduced), views)


class _Budget:
    """How many more fields a scan may read: the bound on its time, whatever the bytes."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.left = self.limit = limit

    def exceeded(self) -> MalformedRequest:
        return MalformedRequest(
            f"more than {self.limit} fields to read in a request of {LARGE} bytes or more "
            f"(at most {MAX_COMMANDS} commands per request)"
        )


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    # At most MAX_VARINT bytes: an unbounded varint would grow a Python int without end.
    start, stop = pos, min(pos + MAX_VARINT, end)
    value = shift = 0
    while pos < stop:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    if stop == end and stop - start < MAX_VARINT:
        raise MalformedRequest(f"truncated varint at byte {start}")
    raise MalformedRequest(f"varint longer than {MAX_VARINT} bytes at byte {start}")


def _fields(
    buf: memoryview, pos: int, end: int, budget: _Budget
) -> Iterator[tuple[int, int, int, int]]:
    """(field number, key start, payload start, end) of each length-delimited field in
    buf[pos:end]; MalformedRequest for anything protobuf's wire format does not allow here."""
    left = budget.left  # a local count (the hot loop); shared with nested scans at each yield
    while pos < end:
        left -= 1
        if left < 0:
            raise budget.exceeded()
        key_start = pos
        key, pos = _varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if not 0 < number <= MAX_FIELD_NUMBER:
            raise MalformedRequest(f"field number {number} at byte {key_start}")
        if wire_type == 2:
            size, pos = _varint(buf, pos, end)
            if size > end - pos:
                raise MalformedRequest(
                    f"field {number} at byte {key_start} claims {size} bytes; "
                    f"{end - pos} are left in its message"
                )
            budget.left = left
            yield number, key_start, pos, pos + size
            left = budget.left
            pos += size
        elif wire_type == 0:
            _, pos = _varint(buf, pos, end)
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
            if pos > end:
                raise MalformedRequest(f"truncated fixed-size field {number} at byte {key_start}")
        else:  # 3 and 4 are proto2 groups, which gradd.v1 never uses; 6 and 7 do not exist
            raise MalformedRequest(f"wire type {wire_type} of field {number} at byte {key_start}")
    budget.left = left


def _without(
    buf: memoryview,
    start: int,
    end: int,
    path: tuple[int, ...],
    budget: _Budget,
    clearing: frozenset[int] = frozenset(),
) -> tuple[list, memoryview | None]:
    """buf[start:end] as chunks, without the field at `path` (the payload protobuf keeps: the
    last occurrence's, unless a field in `clearing` comes after it, as another member of its
    oneof does). Recursion follows `path` only: len(RAW_PATH) levels, whatever the bytes."""
    chunks: list = []
    last, found = start, None
    for number, key_start, s, e in _fields(buf, start, end, budget):
        if number != path[0]:
            if number in clearing:
                found = None  # the bytes already cut out were cleared by protobuf too
            continue
        if len(path) == 1:
            chunks.append(buf[last:key_start])
            last, found = e, buf[s:e]
            continue
        inner, view = _without(buf, s, e, path[1:], budget)
        if view is not None:
            size = sum(len(c) for c in inner)
            chunks += [buf[last:key_start], varint(number << 3 | 2), varint(size), *inner]
            last, found = e, view
    chunks.append(buf[last:end])
    return chunks, found


def strip_raw(wire: bytes) -> tuple[bytes, dict[int, memoryview]]:
    """The request without its commands' `tensor.data.raw`, and those payloads by index.

    Reads at most MAX_FIELDS fields (its time is linear in that, not in the bytes) and
    raises MalformedRequest for bytes that are not an ExecuteRequest's wire format."""
    buf = memoryview(wire)
    budget = _Budget(MAX_FIELDS)
    chunks: list = []
    views: dict[int, memoryview] = {}
    last = index = 0
    for number, key_start, start, end in _fields(buf, 0, len(buf), budget):
        if number != COMMANDS:
            continue
        if index == MAX_COMMANDS:
            raise MalformedRequest(f"more than {MAX_COMMANDS} commands in one ExecuteRequest")
        inner, view = _without(buf, start, end, RAW_PATH, budget, OTHER_KINDS)
        if view is not None:
            size = sum(len(c) for c in inner)
            chunks += [buf[last:key_start], varint(COMMANDS << 3 | 2), varint(size), *inner]
            last = end
            views[index] = view
        index += 1
    chunks.append(buf[last:])
    return b"".join(chunks), views


def nested_view(wire: bytes, path: tuple[int, ...]) -> memoryview | None:
    """The view of the field reached by following field numbers (last occurrences win)."""
    buf, start, end = memoryview(wire), 0, len(wire)
    budget = _Budget(len(wire))  # every field has a byte at least: no bound beyond the size
    for number in path:
        found = None
        for field, _, s, e in _fields(buf, start, end, budget):
            if field == number:
                found = (s, e)
        if found is None:
            return None
        start, end = found
    return buf[start:end]
