"""gradd.v1 commands encoded straight to protobuf wire bytes.

Building generated message objects costs 1-2 us per op; joining a few cached byte strings costs
a fifth of that, and the client builds one command per tensor op, so the hot path writes the
wire format itself. Field numbers are read from the generated descriptors (never typed in), and
tests/sdk/test_command_encoding.py parses every kind of command back with the generated classes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb
from gradd.wire.dtypes import WIRE_DTYPES
from gradd.wire.varint import SMALL as _SMALL
from gradd.wire.varint import varint

_pack_double = struct.Struct("<d").pack


def _key(message: Any, field: str, wire_type: int) -> bytes:
    return varint(message.DESCRIPTOR.fields_by_name[field].number << 3 | wire_type)


def _len_key(message: Any, field: str) -> bytes:
    return _key(message, field, 2)


def length_delimited(key: bytes, payload: bytes) -> bytes:
    """A LEN field: key, length, payload."""
    n = len(payload)
    return key + (_SMALL[n] if n < 128 else varint(n)) + payload


# --- Value ---------------------------------------------------------------------------------
V_TENSOR = _len_key(cpb.Value, "tensor")
V_F = _key(cpb.Value, "f", 1)
V_I = _key(cpb.Value, "i", 0)
V_B = _key(cpb.Value, "b", 0)
V_S = _len_key(cpb.Value, "s")
V_DTYPE = _key(cpb.Value, "dtype", 0)
V_INTS = _len_key(cpb.Value, "ints")
V_SLICE = _len_key(cpb.Value, "slice")
V_NONE = _len_key(cpb.Value, "none") + b"\x00"
V_ELLIPSIS = _len_key(cpb.Value, "ellipsis") + b"\x00"
V_TUPLE = _len_key(cpb.Value, "tuple")
V_LIST = _len_key(cpb.Value, "list")
_ITEMS = _len_key(cpb.ValueTuple, "items")
_INTS_VALUES = _len_key(cpb.Ints, "values")
_SLICE_KEYS = tuple(_key(cpb.Slice, f, 0) for f in ("start", "stop", "step"))


def tensor_value(handle: bytes) -> bytes:
    """The Value naming a tensor by its handle."""
    return length_delimited(V_TENSOR, handle)


def value(x: Any) -> bytes:
    """A Python op argument (number, str, dtype, slice, None, ..., tuple, list, tensor) as a
    Value message."""
    t = type(x)
    if t is float:
        return V_F + _pack_double(x)
    if t is bool:
        return V_B + (b"\x01" if x else b"\x00")
    if t is int:
        return V_I + varint(x)
    if x is None:
        return V_NONE
    handle = getattr(x, "_h", None)
    if handle is not None and hasattr(x, "_gradd_record"):
        return length_delimited(V_TENSOR, handle)
    if t is str:
        return length_delimited(V_S, x.encode())
    if t is tuple:
        if x and all(type(v) is int for v in x):
            return length_delimited(V_INTS, length_delimited(_INTS_VALUES, ints(x)))
        return length_delimited(V_TUPLE, b"".join(length_delimited(_ITEMS, value(v)) for v in x))
    if t is list:
        return length_delimited(V_LIST, b"".join(length_delimited(_ITEMS, value(v)) for v in x))
    if t is slice:
        parts = b"".join(
            k + varint(_index(v))
            for k, v in zip(_SLICE_KEYS, (x.start, x.stop, x.step))
            if v is not None
        )
        return length_delimited(V_SLICE, parts)
    if x is Ellipsis:
        return V_ELLIPSIS
    name = getattr(x, "name", None)
    if name in WIRE_DTYPES and hasattr(x, "is_floating_point"):
        return V_DTYPE + varint(WIRE_DTYPES[name])
    if isinstance(x, float):  # a subclass (a compiled function's traced float argument)
        return value(float(x))
    if hasattr(x, "tolist") and hasattr(x, "dtype"):  # NumPy scalars and arrays (index keys)
        return value(x.tolist() if getattr(x, "ndim", 0) else x.item())
    raise TypeError(f"gradd cannot send an argument of type {t.__name__} to the server")


def _index(v: Any) -> int:
    if type(v) is int:
        return v
    if hasattr(v, "__index__"):
        return v.__index__()
    raise TypeError(f"slice indices must be integers or None, not {type(v).__name__}")


def ints(values: Iterable[int]) -> bytes:
    """Packed repeated int64."""
    return b"".join(varint(v) for v in values)


# --- Op ------------------------------------------------------------------------------------
OP_NAME = _len_key(cpb.Op, "op")
OP_ARG = _len_key(cpb.Op, "args")
OP_KWARG = _len_key(cpb.Op, "kwargs")
OP_OUT = _len_key(cpb.Op, "outs")
OP_NO_GRAD = _key(cpb.Op, "no_grad", 0) + b"\x01"
_ENTRY_KEY = b"\x0a"  # map entries: key = field 1, value = field 2 (fixed by the protobuf spec)
_ENTRY_VALUE = b"\x12"


def op_name(name: str) -> bytes:
    """The Op.op field for an op name (cache it per op)."""
    return length_delimited(OP_NAME, name.encode())


def op_arg(value_bytes: bytes) -> bytes:
    """One positional argument (an Op.args entry) from Value bytes."""
    return length_delimited(OP_ARG, value_bytes)


def op_kwarg(name: str, value_bytes: bytes) -> bytes:
    """One keyword argument (an Op.kwargs map entry)."""
    entry = length_delimited(_ENTRY_KEY, name.encode()) + length_delimited(
        _ENTRY_VALUE, value_bytes
    )
    return length_delimited(OP_KWARG, entry)


def op_out(handle: bytes) -> bytes:
    """One Op.outs entry."""
    return length_delimited(OP_OUT, handle)


# --- Commands ------------------------------------------------------------------------------
def _command_key(kind: str) -> bytes:
    return _len_key(cpb.Command, kind)


CMD = {name: _command_key(name) for name in cpb.Command.DESCRIPTOR.fields_by_name}
REQ_COMMAND = _len_key(cpb.ExecuteRequest, "commands")
REQ_SESSION = _len_key(cpb.ExecuteRequest, "session_id")
REQ_SEQUENCE = _key(cpb.ExecuteRequest, "sequence", 0)
CMD_OP = CMD["op"]


def framed(kind_key: bytes, payload: bytes) -> bytes:
    """A Command of one kind, framed as an ExecuteRequest.commands entry."""
    return length_delimited(REQ_COMMAND, length_delimited(kind_key, payload))


def tape_command(records: bytes) -> bytes:
    """A framed Command.tape from its records (gradd.wire.tape)."""
    return framed(CMD["tape"], records)


def op_command(body: bytes) -> bytes:
    """A framed Op command from its already joined fields."""
    return framed(CMD_OP, body)


def _str(message: Any, field: str, text: str | bytes) -> bytes:
    raw = text if type(text) is bytes else text.encode()
    return length_delimited(_len_key(message, field), raw) if raw else b""


def _bool(message: Any, field: str, flag: bool) -> bytes:
    return _key(message, field, 0) + b"\x01" if flag else b""


_DATA_DTYPE = _key(tpb.TensorData, "dtype", 0)
_DATA_SHAPE = _len_key(tpb.TensorData, "shape")
_DATA_RAW = _len_key(tpb.TensorData, "raw")
_CREATE_DATA = _len_key(cpb.CreateTensor, "data")


def create_tensor_parts(
    out: bytes, wire_dtype: int, shape: tuple, raw: Any, requires_grad: bool
) -> list:
    """`out = tensor(raw, requires_grad)` as a framed command in parts: the raw elements (bytes
    or a memoryview of the array itself) stay one part, so a large tensor is copied only when
    the request is joined."""
    n = len(raw)
    head = _DATA_DTYPE + varint(wire_dtype)
    if shape:
        head += length_delimited(_DATA_SHAPE, ints(shape))
    if n:
        head += _DATA_RAW + varint(n)
    data_len = len(head) + n
    body_head = _str(cpb.CreateTensor, "out", out) + _CREATE_DATA + varint(data_len)
    tail = _bool(cpb.CreateTensor, "requires_grad", requires_grad)
    body_len = len(body_head) + data_len + len(tail)
    cmd_head = CMD["tensor"] + varint(body_len)
    cmd_len = len(cmd_head) + body_len
    return [REQ_COMMAND + varint(cmd_len) + cmd_head + body_head + head, raw, tail]


def create_tensor(
    out: bytes, wire_dtype: int, shape: tuple, raw: bytes, requires_grad: bool
) -> bytes:
    """`out = tensor(raw bytes of dtype and shape, requires_grad)`."""
    return b"".join(create_tensor_parts(out, wire_dtype, shape, raw, requires_grad))


def factory(
    out: bytes, kind: str, shape: tuple, args: tuple, wire_dtype: int, requires_grad: bool
) -> bytes:
    """`out = randn/rand/zeros/ones/full/arange(...)` on the session's generator."""
    body = _str(cpb.Factory, "out", out) + _str(cpb.Factory, "kind", kind)
    if shape:
        body += length_delimited(_len_key(cpb.Factory, "shape"), ints(shape))
    for a in args:
        body += length_delimited(_len_key(cpb.Factory, "args"), value(a))
    if wire_dtype:
        body += _key(cpb.Factory, "dtype", 0) + varint(wire_dtype)
    body += _bool(cpb.Factory, "requires_grad", requires_grad)
    return framed(CMD["factory"], body)


def manual_seed(seed: int) -> bytes:
    """Reseed the session's generator."""
    return framed(CMD["manual_seed"], _key(cpb.ManualSeed, "seed", 0) + varint(seed))


def backward(
    handle: bytes,
    gradient: bytes,
    retain_graph: bool | None,
    create_graph: bool,
    inputs: Iterable[bytes] = (),
) -> bytes:
    """`handle.backward(gradient, retain_graph, create_graph, inputs)`."""
    body = _str(cpb.Backward, "handle", handle) + _str(cpb.Backward, "gradient", gradient)
    if retain_graph is not None:
        body += _key(cpb.Backward, "retain_graph", 0) + (b"\x01" if retain_graph else b"\x00")
    body += _bool(cpb.Backward, "create_graph", create_graph)
    key = _len_key(cpb.Backward, "inputs")
    body += b"".join(length_delimited(key, h) for h in inputs)
    return framed(CMD["backward"], body)


def grad_of(out: bytes, handle: bytes) -> bytes:
    """Bind `out` to `handle.grad`."""
    body = _str(cpb.GradOf, "out", out) + _str(cpb.GradOf, "handle", handle)
    return framed(CMD["grad_of"], body)


def set_grad(handle: bytes, grad: bytes) -> bytes:
    """`handle.grad = grad` (empty: None)."""
    body = _str(cpb.SetGrad, "handle", handle) + _str(cpb.SetGrad, "grad", grad)
    return framed(CMD["set_grad"], body)


def set_data(handle: bytes, data: bytes) -> bytes:
    """`handle.data = data`."""
    body = _str(cpb.SetData, "handle", handle) + _str(cpb.SetData, "data", data)
    return framed(CMD["set_data"], body)


def zero_grad(handles: Iterable[bytes], set_to_none: bool) -> bytes:
    """Zero the `.grad` of tensors, or set it to None."""
    key = _len_key(cpb.ZeroGrad, "handles")
    body = b"".join(length_delimited(key, h) for h in handles)
    return framed(CMD["zero_grad"], body + _bool(cpb.ZeroGrad, "set_to_none", set_to_none))


def retain_grad(handle: bytes) -> bytes:
    """`handle.retain_grad()`."""
    return framed(CMD["retain_grad"], _str(cpb.RetainGrad, "handle", handle))


def set_requires_grad(handle: bytes, flag: bool) -> bytes:
    """`handle.requires_grad_(flag)`."""
    body = _str(cpb.SetRequiresGrad, "handle", handle)
    return framed(CMD["requires_grad"], body + _bool(cpb.SetRequiresGrad, "requires_grad", flag))


def detach(out: bytes, handle: bytes) -> bytes:
    """`out = handle.detach()`."""
    body = _str(cpb.Detach, "out", out) + _str(cpb.Detach, "handle", handle)
    return framed(CMD["detach"], body)


_RELEASE_KEY = _len_key(cpb.Release, "handles")


def release(handles: Iterable[bytes]) -> bytes:
    """Unbind handles (idempotent on the server)."""
    return framed(CMD["release"], b"".join(length_delimited(_RELEASE_KEY, h) for h in handles))


def free_program(name: str) -> bytes:
    """A framed FreeProgram (a compiled function's program, once it is collected)."""
    return framed(CMD["free_program"], _str(cpb.FreeProgram, "program", name))


def fetch(handle: bytes, grad: bool = False, metadata_only: bool = False) -> bytes:
    """Read a tensor (or its grad): answered in the batch's results."""
    body = _str(cpb.Fetch, "handle", handle) + _bool(cpb.Fetch, "grad", grad)
    return framed(CMD["fetch"], body + _bool(cpb.Fetch, "metadata_only", metadata_only))


def graph(handle: bytes, params: Mapping[str, bytes], publish: bool = False) -> bytes:
    """Snapshot the graph behind `handle` (make_dot), leaves labelled by `params`."""
    body = _str(cpb.Graph, "handle", handle)
    key = _len_key(cpb.Graph, "params")
    for label, h in params.items():
        entry = length_delimited(_ENTRY_KEY, label.encode()) + length_delimited(_ENTRY_VALUE, h)
        body += length_delimited(key, entry)
    return framed(CMD["graph"], body + _bool(cpb.Graph, "publish", publish))


_OPT_KIND = _len_key(cpb.OptimizerStep, "kind")
_OPT_GROUP = _len_key(cpb.OptimizerStep, "groups")
_GROUP_OPTION = _len_key(cpb.OptimizerGroup, "options")
_GROUP_PARAM = _len_key(cpb.OptimizerGroup, "params")
_PARAM_STATE = _len_key(cpb.OptimizerParam, "state")
_PARAM_STEP = _key(cpb.OptimizerParam, "step", 1)
_ENTRY_DOUBLE = b"\x11"  # a map entry's value (field 2) as a double


def optimizer_step(kind: str, groups: Iterable[tuple[Mapping[str, float], list]]) -> bytes:
    """One fused optimizer step: per group its options and its parameters, each as
    ``(handle, state handles, init, step)``."""
    body = _str(cpb.OptimizerStep, "kind", kind)
    for options, params in groups:
        group = b"".join(
            length_delimited(
                _GROUP_OPTION,
                length_delimited(_ENTRY_KEY, name.encode()) + _ENTRY_DOUBLE + _pack_double(v),
            )
            for name, v in options.items()
        )
        for handle, state, init, step in params:
            entry = _str(cpb.OptimizerParam, "param", handle)
            entry += b"".join(length_delimited(_PARAM_STATE, h) for h in state)
            entry += _bool(cpb.OptimizerParam, "init", init)
            if step:
                entry += _PARAM_STEP + _pack_double(step)
            group += length_delimited(_GROUP_PARAM, entry)
        body += length_delimited(_OPT_GROUP, group)
    return framed(CMD["optimizer_step"], body)


def session_prefix(session_id: str) -> bytes:
    """The ExecuteRequest.session_id field, written once per session."""
    return length_delimited(REQ_SESSION, session_id.encode())


def execute_request(prefix: bytes, commands: list[bytes], sequence: int) -> bytes:
    """A whole ExecuteRequest from the session prefix and framed commands."""
    return b"".join((prefix, *commands, REQ_SEQUENCE, varint(sequence)))
