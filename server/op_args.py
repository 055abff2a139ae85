"""Op arguments: gradd.v1 Value messages -> the Python values `gradd.engine.call_op` takes.

Only plain data comes out (numbers, strings, dtypes, slices, None, Ellipsis, tuples, lists and
the session's own tensors): clients never send code. Values nest, so their depth and number per
request are bounded (MAX_VALUE_DEPTH, MAX_VALUES), and so are strings (MAX_STRING).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradd.v1 import command_pb2 as cpb
from gradd.wire.dtypes import ENGINE_DTYPES, wire_name

from .errors import invalid, shown


def engine_dtype(dtype: int) -> Any:
    """The engine's dtype for a wire DType; INVALID_ARGUMENT for DTYPE_UNSPECIFIED."""
    try:
        return ENGINE_DTYPES[dtype]
    except KeyError:
        raise invalid(f"a dtype is needed here, got {wire_name(dtype)}") from None


MAX_VALUE_DEPTH = 32  # tuples and lists inside tuples and lists (indexing needs 2 or 3)
MAX_VALUES = 1 << 20  # Values per request, tuple/list items and `ints` elements included
MAX_STRING = 256  # characters of a string Value or a kwarg name


class ValueBudget:
    """How many more argument Values one request may carry (a request is one budget)."""

    __slots__ = ("left",)

    def __init__(self, limit: int = MAX_VALUES) -> None:
        self.left = limit

    def take(self, count: int) -> None:
        """Count `count` more Values; INVALID_ARGUMENT past the limit."""
        self.left -= count
        if self.left < 0:
            raise invalid(
                f"a request carries at most {MAX_VALUES} argument Values "
                "(tuple and list items and ints elements included)"
            )


def short_string(text: str, what: str) -> str:
    """`text` if it has at most MAX_STRING characters; INVALID_ARGUMENT otherwise."""
    if len(text) > MAX_STRING:
        raise invalid(f"{what} has at most {MAX_STRING} characters, got {shown(text)}")
    return text


def _slice(value: cpb.Value) -> slice:
    s = value.slice
    return slice(
        s.start if s.HasField("start") else None,
        s.stop if s.HasField("stop") else None,
        s.step if s.HasField("step") else None,
    )


# One converter per oneof field without Values inside (tuple and list recurse in to_python).
_CONVERT: dict[str, Callable[[cpb.Value], Any]] = {
    "f": lambda v: v.f,
    "i": lambda v: v.i,
    "b": lambda v: v.b,
    "s": lambda v: short_string(v.s, "a string Value"),
    "dtype": lambda v: engine_dtype(v.dtype),
    "slice": _slice,
    "none": lambda v: None,
    "ellipsis": lambda v: Ellipsis,
}


def to_python(
    value: cpb.Value, lookup: Callable[[str], Any], budget: ValueBudget, depth: int = 0
) -> Any:
    """The Python value of an op argument; `lookup` resolves a handle to the session's tensor.
    The caller has counted `value` itself in `budget`; the items inside it are counted here.
    INVALID_ARGUMENT if no field is set or a limit is passed."""
    kind = value.WhichOneof("kind")
    if kind == "tensor":  # most arguments are tensors
        return lookup(value.tensor)
    if kind is None:
        raise invalid('an argument Value has no field set (use {"none": {}} for None)')
    if kind == "ints":
        ints = value.ints.values
        budget.take(len(ints))
        return tuple(ints)
    if kind == "tuple" or kind == "list":
        if depth == MAX_VALUE_DEPTH:
            raise invalid(f"argument Values nest at most {MAX_VALUE_DEPTH} tuples or lists deep")
        items = getattr(value, kind).items
        budget.take(len(items))  # before converting any: a huge list fails at once
        converted = [to_python(x, lookup, budget, depth + 1) for x in items]
        return tuple(converted) if kind == "tuple" else converted
    return _CONVERT[kind](value)
