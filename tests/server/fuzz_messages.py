"""Hypothesis strategies for the fuzz suite: gradd.v1 messages built from their descriptors, with
values a real session knows (op names, factory kinds, devices, bound handles) mixed with random
ones, and byte-level mutations of valid requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st

MAX_DEPTH = 7  # message nesting: ExecuteRequest > Command > Op > Value > ValueTuple > Value > ...
HANDLES = ("a", "b", "i", "m", "s", "y", "new")  # bound by the fuzz session's setup, and one not
HANDLE_FIELDS = {"handle", "out", "tensor", "outs", "handles", "gradient", "grad", "inputs"}
KWARGS = ("dim", "keepdim", "reduction", "min", "max", "p", "training", "dtype", "weight", "bias")
KWARGS += ("other", "alpha", "exponent", "start", "end", "step", "value", "device", "target")
STRINGS = ("mean", "sum", "none", "cpu", "cuda", "")
ALWAYS_SET = {"session_id", "op", "kind", "out", "handle"}
MIN_ITEMS = {"gradd.v1.ExecuteRequest.commands": 1, "gradd.v1.Op.args": 1}
# Commands drawn more often than the others: those with arguments and data.
ONEOF_WEIGHTS = {"gradd.v1.Command.op": 6, "gradd.v1.Command.tensor": 2}
ONEOF_WEIGHTS["gradd.v1.Command.factory"] = 2


@dataclass(frozen=True)
class Known:
    """What a real server and session know: strings that reach deeper than random text."""

    session_id: str
    ops: tuple[str, ...]
    factories: tuple[str, ...]
    devices: tuple[str, ...]


_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(field: FieldDescriptor) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[field.type]
    small = st.integers(max(low, -3), min(high, 8))  # sizes, dims, indices that mean something
    edges = st.sampled_from(sorted({low, high, 0, min(high, 2**31), min(high, 2**40)}))
    return st.one_of(small, small, edges, st.integers(low, high))


def _mostly(known: st.SearchStrategy[str], other: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(known, known, known, known, other)  # 4 in 5: deeper than random text


def _string(field: FieldDescriptor, known: Known) -> st.SearchStrategy[str]:
    text = st.text(max_size=12)
    name = field.name
    if name == "session_id":  # bad ids are the random and mutated bytes' part
        return st.just(known.session_id)
    if name in HANDLE_FIELDS or field.containing_type.name == "ParamsEntry":  # graph labels
        return _mostly(st.sampled_from(HANDLES), text)
    if name == "op":
        return _mostly(st.sampled_from(known.ops), text)
    if name == "kind":
        return _mostly(st.sampled_from(known.factories), text)
    if name == "device":
        return _mostly(st.sampled_from(known.devices), text)
    if field.containing_type.GetOptions().map_entry and name == "key":
        return _mostly(st.sampled_from(KWARGS), text)
    return _mostly(st.sampled_from(STRINGS), text)


def _scalar(field: FieldDescriptor, known: Known) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _string(field, known)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=48)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        width = 32 if kind == FieldDescriptor.TYPE_FLOAT else 64
        return st.one_of(st.integers(-3, 8).map(float), st.floats(width=width))
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-1, max(numbers) + 2))
    return _integers(field)


def messages(descriptor: Descriptor, known: Known, depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of `descriptor` with random fields: each oneof one member (or none), other
    fields set or not, repeated fields of 0-4 items, maps of 0-3 entries; empty past
    MAX_DEPTH."""
    cls = message_factory.GetMessageClass(descriptor)
    if depth >= MAX_DEPTH:
        return st.just(cls())
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.containing_oneof is None:
            values = _field_values(field, known, depth)
            # A request's session is always named (mostly the real one): the rest is reached.
            parts[field.name] = (
                values if field.name == "session_id" else st.one_of(st.none(), values)
            )
    for oneof in descriptor.oneofs:
        choices = [
            st.tuples(st.just(f.name), _field_values(f, known, depth))
            for f in oneof.fields
            for _ in range(ONEOF_WEIGHTS.get(f.full_name, 1))
        ]
        parts[f"oneof {oneof.name}"] = st.one_of(st.none(), *choices)
    return st.fixed_dictionaries(parts).map(lambda drawn: _build(cls, drawn))


def _field_values(field: FieldDescriptor, known: Known, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = (
            field.message_type.fields_by_name["key"],
            field.message_type.fields_by_name["value"],
        )
        return st.dictionaries(
            _one(key, known, depth + 1), _one(value, known, depth + 1), max_size=3
        )
    one = _one(field, known, depth)
    if field.is_repeated:
        return st.lists(one, min_size=MIN_ITEMS.get(field.full_name, 0), max_size=4)
    return one


def _one(field: FieldDescriptor, known: Known, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        return st.deferred(lambda: messages(field.message_type, known, depth + 1))
    return _scalar(field, known)


def _build(cls: type, drawn: dict[str, Any]) -> Any:
    message = cls()
    for name, value in drawn.items():
        if value is None:
            continue
        if name.startswith("oneof "):
            name, value = value
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if field.message_type.fields_by_name["value"].message_type is None:
                    target[key] = item
                else:
                    target[key].CopyFrom(item)
        elif field.is_repeated:
            if field.message_type is None:
                target.extend(value)
            else:
                for item in value:
                    target.add().CopyFrom(item)
        elif field.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


@st.composite
def mutated(draw: st.DrawFn, wire: bytes) -> bytes:
    """`wire` with 1-4 mutations: bit flips, truncation, inserted fields of any wire type with
    garbage payloads, duplicated or deleted slices."""
    buf = bytearray(wire)
    kinds = ("flip", "truncate", "insert", "duplicate", "delete")
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        at = draw(st.integers(0, len(buf)))
        if kind == "flip" and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del buf[at:]
        elif kind == "insert":
            key = draw(st.integers(0, 2**32)) << 3 | draw(st.integers(0, 7))
            buf[at:at] = _varint(key) + draw(st.binary(max_size=24))
        elif kind == "duplicate":
            end, to = draw(st.integers(at, len(buf))), draw(st.integers(0, len(buf)))
            buf[to:to] = buf[at:end]
        else:
            del buf[at : draw(st.integers(at, len(buf)))]
    return bytes(buf)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
