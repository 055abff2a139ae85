"""ExecuteRequests read without copying their tensors: raw bytes stay views into the wire.

Parsing a message copies its bytes fields, and reading such a field copies it again; for a
64 MiB upload each copy costs as much as the network. So a large request is parsed with its
`tensor` commands' `data.raw` cut out (lengths of the enclosing messages rewritten), and each
cut-out payload is kept as a view into the received bytes, by command index.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb

LARGE = 1 << 16  # requests at least this big have their raw payloads cut out


def _number(message: Any, field: str) -> int:
    return message.DESCRIPTOR.fields_by_name[field].number


COMMANDS = _number(cpb.ExecuteRequest, "commands")
RAW_PATH = (_number(cpb.Command, "tensor"), _number(cpb.CreateTensor, "data"))
RAW_PATH += (_number(tpb.TensorData, "raw"),)


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
    """Parse an ExecuteRequest, keeping large raw payloads as views (the deserializer)."""
    if len(wire) < LARGE:
        return ReceivedRequest(cpb.ExecuteRequest.FromString(wire), {})
    reduced, views = strip_raw(wire)
    return ReceivedRequest(cpb.ExecuteRequest.FromString(reduced), views)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, key start, payload start, end) of each length-delimited field."""
    while pos < end:
        key_start = pos
        key, pos = _varint(buf, pos)
        wire_type = key & 7
        if wire_type == 2:
            size, pos = _varint(buf, pos)
            yield key >> 3, key_start, pos, pos + size
            pos += size
        elif wire_type == 0:
            _, pos = _varint(buf, pos)
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")


def _without(
    buf: memoryview, start: int, end: int, path: tuple[int, ...]
) -> tuple[list, memoryview | None]:
    """buf[start:end] as chunks, without the field at `path` (the last occurrence's payload)."""
    chunks: list = []
    last, found = start, None
    for number, key_start, s, e in _fields(buf, start, end):
        if number != path[0]:
            continue
        if len(path) == 1:
            chunks.append(buf[last:key_start])
            last, found = e, buf[s:e]
            continue
        inner, view = _without(buf, s, e, path[1:])
        if view is not None:
            size = sum(len(c) for c in inner)
            chunks += [buf[last:key_start], varint(number << 3 | 2), varint(size), *inner]
            last, found = e, view
    chunks.append(buf[last:end])
    return chunks, found


def strip_raw(wire: bytes) -> tuple[bytes, dict[int, memoryview]]:
    """The request without its commands' `tensor.data.raw`, and those payloads by index."""
    buf = memoryview(wire)
    chunks: list = []
    views: dict[int, memoryview] = {}
    last = index = 0
    for number, key_start, start, end in _fields(buf, 0, len(buf)):
        if number != COMMANDS:
            continue
        inner, view = _without(buf, start, end, RAW_PATH)
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
    for number in path:
        found = None
        for field, _, s, e in _fields(buf, start, end):
            if field == number:
                found = (s, e)
        if found is None:
            return None
        start, end = found
    return buf[start:end]
