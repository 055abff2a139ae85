"""Op arguments: gradd.v1 Value messages -> the Python values `gradd.engine.call_op` takes.

Only plain data comes out (numbers, strings, dtypes, slices, None, Ellipsis, tuples, lists and
the session's own tensors): clients never send code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradd.engine as ge
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import tensor_pb2 as tpb

from .errors import invalid

ENGINE_DTYPES: dict[int, Any] = {
    tpb.FLOAT32: ge.float32,
    tpb.FLOAT64: ge.float64,
    tpb.INT64: ge.int64,
    tpb.BOOL: ge.bool_,
}


def engine_dtype(dtype: int) -> Any:
    """The engine's dtype for a wire DType; INVALID_ARGUMENT for DTYPE_UNSPECIFIED."""
    try:
        return ENGINE_DTYPES[dtype]
    except KeyError:
        raise invalid(f"a dtype is needed here, got {tpb.DType.Name(dtype)}") from None


def _slice(value: cpb.Value, _: Callable[[str], Any]) -> slice:
    s = value.slice
    return slice(
        s.start if s.HasField("start") else None,
        s.stop if s.HasField("stop") else None,
        s.step if s.HasField("step") else None,
    )


# One converter per oneof field; `lookup` resolves a handle to the session's tensor.
_CONVERT: dict[str, Callable[[cpb.Value, Callable[[str], Any]], Any]] = {
    "tensor": lambda v, lookup: lookup(v.tensor),
    "f": lambda v, _: v.f,
    "i": lambda v, _: v.i,
    "b": lambda v, _: v.b,
    "s": lambda v, _: v.s,
    "dtype": lambda v, _: engine_dtype(v.dtype),
    "ints": lambda v, _: tuple(v.ints.values),
    "slice": _slice,
    "none": lambda v, _: None,
    "ellipsis": lambda v, _: Ellipsis,
    "tuple": lambda v, lookup: tuple(to_python(x, lookup) for x in v.tuple.items),
    "list": lambda v, lookup: [to_python(x, lookup) for x in v.list.items],
}


def to_python(value: cpb.Value, lookup: Callable[[str], Any]) -> Any:
    """The Python value of an op argument; INVALID_ARGUMENT if no field is set."""
    kind = value.WhichOneof("kind")
    if kind == "tensor":  # most arguments are tensors
        return lookup(value.tensor)
    if kind is None:
        raise invalid('an argument Value has no field set (use {"none": {}} for None)')
    return _CONVERT[kind](value, lookup)
