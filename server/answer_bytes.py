"""Answers framed as protobuf wire bytes, so that a large tensor is copied once, not four times.

A TensorValue with raw data is written as the message without `data.raw`, followed by a second
`data` field holding only `raw`: protobuf merges repeated occurrences of a message field, so
every parser reads one TensorValue. The elements go from the tensor's memory straight into the
answer (one copy) instead of tobytes(), the field setter and the serializer each copying them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb
from gradd.wire.dtypes import NP_DTYPES
from gradd.wire.varint import varint

from . import wire_tensor as wire

LEN = 2  # the wire type of length-delimited fields


def _key(message: Any, field: str) -> bytes:
    return varint(message.DESCRIPTOR.fields_by_name[field].number << 3 | LEN)


VALUE_DATA = _key(tpb.TensorValue, "data")
DATA_RAW = _key(tpb.TensorData, "raw")
RESULT_TENSOR = _key(cpb.CommandResult, "tensor")
RESULT_GRAPH = _key(cpb.CommandResult, "graph")
RESPONSE_RESULTS = _key(cpb.ExecuteResponse, "results")
RESULT_INDEX = varint(cpb.CommandResult.DESCRIPTOR.fields_by_name["index"].number << 3)


HEAD_BYTES = 256  # a TensorValue without its elements: info, item, framing (at most)
TYPED_WIRE_BYTES = {"f": 8, "i": 10, "u": 10, "b": 1}  # double, varint int64, bool per value
TYPED_MEMORY_BYTES = 48  # per value: the Python object tolist() makes, its list slot, the field


def answer_size(
    handle: str, tensor: Any, *, metadata_only: bool = False, typed_values: bool = False
) -> tuple[int, int]:
    """(bytes on the wire, bytes of memory for its elements) of `tensor_value`'s answer,
    known before it is built: the elements joined into the message, plus a contiguous or host
    copy of them when the tensor is a strided view or on a GPU, or the Python values that
    typed values go through."""
    head = HEAD_BYTES + 2 * len(handle) + 11 * tensor.ndim
    if metadata_only:
        return head, 0
    data = tensor._data
    numel = data.size
    if typed_values:
        wire = numel * TYPED_WIRE_BYTES[data.dtype.kind]
        return head + wire, wire + numel * TYPED_MEMORY_BYTES
    copied = not (type(data) is np.ndarray and data.flags.c_contiguous)
    return head + data.nbytes, data.nbytes * (2 if copied else 1)


def tensor_value(
    handle: str, tensor: Any, *, metadata_only: bool = False, typed_values: bool = False
) -> list[Any]:
    """A TensorValue as a list of byte chunks (joined by the caller, once)."""
    if metadata_only or typed_values:
        value = wire.tensor_value(
            handle, tensor, metadata_only=metadata_only, typed_values=typed_values
        )
        return [value.SerializeToString()]
    array = tensor.detach().numpy()  # the tensor's own host memory on cpu: no copy
    head = wire.tensor_value(handle, tensor, metadata_only=True, host=array)
    head.data.dtype = head.info.dtype
    head.data.shape.extend(array.shape)
    array = np.ascontiguousarray(array, dtype=NP_DTYPES[head.data.dtype])
    raw = memoryview(array.reshape(-1)).cast("B")
    n = raw.nbytes
    inner = [DATA_RAW, varint(n), raw]
    size = len(DATA_RAW) + len(inner[1]) + n
    return [head.SerializeToString(), VALUE_DATA, varint(size), *inner]


def none_value(handle: str) -> list[Any]:
    """The TensorValue of a None grad."""
    return [tpb.TensorValue(handle=handle, is_none=True).SerializeToString()]


def command_result(index: int, field_key: bytes, chunks: Sequence[Any]) -> list[Any]:
    """An ExecuteResponse.results entry around a TensorValue or GraphSnapshot's chunks."""
    size = sum(len(c) for c in chunks)  # bytes, or memoryviews cast to bytes
    body = [RESULT_INDEX, varint(index), field_key, varint(size), *chunks]
    body_size = size + len(RESULT_INDEX) + len(body[1]) + len(field_key) + len(body[3])
    return [RESPONSE_RESULTS, varint(body_size), *body]
