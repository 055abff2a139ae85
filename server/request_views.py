"""Zero-copy views of the raw tensor bytes inside a serialized ExecuteRequest.

Reading a bytes field of a parsed message copies it; for a 64 MiB upload that copy costs as
much as the network. So the server keeps the request's wire bytes and finds each `tensor`
command's `data.raw` in them by walking the wire format (only when a command is large).
"""

from __future__ import annotations

from collections.abc import Iterator

from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb

LARGE = 1 << 16  # requests at least this big are read through views


def _number(message: object, field: str) -> int:
    return message.DESCRIPTOR.fields_by_name[field].number


COMMANDS = _number(cpb.ExecuteRequest, "commands")
TENSOR = _number(cpb.Command, "tensor")
DATA = _number(cpb.CreateTensor, "data")
RAW = _number(tpb.TensorData, "raw")


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field in buf[pos:end]."""
    while pos < end:
        key, pos = _varint(buf, pos)
        wire_type = key & 7
        if wire_type == 2:
            size, pos = _varint(buf, pos)
            yield key >> 3, pos, pos + size
            pos += size
        elif wire_type == 0:
            _, pos = _varint(buf, pos)
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")


def nested_view(wire: bytes, path: tuple[int, ...]) -> memoryview | None:
    """The view of the field reached by following field numbers (last occurrences win)."""
    buf, start, end = memoryview(wire), 0, len(wire)
    for number in path:
        found = None
        for field, s, e in _fields(buf, start, end):
            if field == number:
                found = (s, e)
        if found is None:
            return None
        start, end = found
    return buf[start:end]


def raw_views(wire: bytes) -> dict[int, memoryview]:
    """command index -> view of its `tensor.data.raw` (the last one, as parsers take it)."""
    buf = memoryview(wire)
    views: dict[int, memoryview] = {}
    index = 0
    for field, start, end in _fields(buf, 0, len(buf)):
        if field != COMMANDS:
            continue
        for kind, s2, e2 in _fields(buf, start, end):
            if kind != TENSOR:
                continue
            for part, s3, e3 in _fields(buf, s2, e2):
                if part != DATA:
                    continue
                for leaf, s4, e4 in _fields(buf, s3, e3):
                    if leaf == RAW:
                        views[index] = buf[s4:e4]
        index += 1
    return views
