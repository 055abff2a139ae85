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

from . import wire_tensor as wire
from .request_views import varint

LEN = 2  # the wire type of length-delimited fields


def _key(message: Any, field: str) -> bytes:
    return varint(message.DESCRIPTOR.fields_by_name[field].number << 3 | LEN)


VALUE_DATA = _key(tpb.TensorValue, "data")
DATA_RAW = _key(tpb.TensorData, "raw")
RESULT_TENSOR = _key(cpb.CommandResult, "tensor")
RESULT_GRAPH = _key(cpb.CommandResult, "graph")
RESPONSE_RESULTS = _key(cpb.ExecuteResponse, "results")
RESULT_INDEX = varint(cpb.CommandResult.DESCRIPTOR.fields_by_name["index"].number << 3)


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
    array = np.ascontiguousarray(array, dtype=wire.NP_DTYPES[head.data.dtype])
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
