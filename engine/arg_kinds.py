"""What an op's parameters accept, declared once as annotations on the op's public signature.

``def add(xp, self: arg.TensorOrNumber, other: arg.TensorOrNumber, alpha: arg.Number = 1)``
says what a caller may pass; the op table reads the annotations and every caller of the op
(Tensor methods, functions, the server's ``call_op``) checks its arguments before anything runs,
with PyTorch's ``TypeError``: ``neg(): argument 'input' (position 1) must be Tensor, not int``.

Each kind has a full check (the message) and a cheap guard: a Python expression that, when
true, already proves the value acceptable, so the common call pays a few type tests only.
Kinds combine with ``|`` (``arg.Int | None``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_IN_INT64 = f"{INT64_MIN} <= {{v}} <= {INT64_MAX}"  # guards compare with literals: no lookups

# Types whose instances are tensors: the engine's own, plus any tensor kind that records itself
# (``_gradd_record``, the SDK's remote tensors), added the first time one is seen.
TENSOR_TYPES: set[type] = set()


def is_tensor(value: Any) -> bool:
    t = type(value)
    if t in TENSOR_TYPES:
        return True
    if getattr(t, "_gradd_record", None) is not None:
        TENSOR_TYPES.add(t)
        return True
    return False


def _type_name(value: Any) -> str:
    t = type(value)
    if t.__module__ in ("builtins", None):
        return t.__name__
    if t.__module__ == "numpy":
        return f"numpy.{t.__name__}"
    return t.__name__


class ArgError(Exception):
    """How a value fails a kind: the exception class and the words after "argument 'x' "."""

    def __init__(self, cls: type[Exception], detail: str) -> None:
        super().__init__(detail)
        self.cls, self.detail = cls, detail


def _int_in_range(value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ArgError(ValueError, f"overflows a 64-bit int: {value}")


class Kind:
    """One parameter kind: a name for messages, a full check and a fast guard."""

    __slots__ = ("name", "_accept", "guard")

    def __init__(self, name: str, accept: Callable[[Any], bool], guard: str | None) -> None:
        self.name = name
        self._accept = accept  # True if accepted, False for a wrong type; may raise ArgError
        self.guard = guard  # an expression over "{v}" that implies acceptance (None: no shortcut)

    def check(self, value: Any) -> None:
        """Raise ArgError unless ``value`` is of this kind."""
        if not self._accept(value):
            raise ArgError(TypeError, f"must be {self.name}, not {_type_name(value)}")

    def __or__(self, other: Kind | None) -> Kind:
        other = NONE if other is None else other
        first, second = self, other

        def accept(v: Any) -> bool:
            return first._accept(v) or second._accept(v)

        # A guard need only be sufficient: a part without one just has no shortcut.
        guards = [g for g in (first.guard, second.guard) if g is not None]
        guard = f"({' or '.join(guards)})" if guards else None
        name = first.name if second is NONE else f"{first.name} or {second.name}"
        return Kind(name, accept, guard)

    def __ror__(self, other: None) -> Kind:
        return self | other

    def __repr__(self) -> str:
        return f"<arg kind {self.name}>"


NONE = Kind("None", lambda v: v is None, "{v} is None")
# Anything goes: the op's own code validates it (getitem's key).
Anything = Kind("any value", lambda v: True, "True")

Tensor = Kind("Tensor", is_tensor, "type({v}) in _TT")


def _is_number(v: Any) -> bool:
    t = type(v)
    if t is bool or t is float:
        return True
    if t is int:
        if not INT64_MIN <= v < 2**64:  # PyTorch converts up to an unsigned 64-bit int
            raise ArgError(ValueError, f"is too big to convert to a number: {v}")
        return True
    return isinstance(v, (float, np.bool_, np.integer, np.floating))


# A Python (or NumPy) scalar: PyTorch's Scalar.
Number = Kind("Number", _is_number, f"(type({{v}}) is float or type({{v}}) is int and {_IN_INT64})")


def _is_array(v: Any) -> bool:
    return isinstance(v, np.ndarray) and v.dtype.kind in "biuf"


# A tensor, or a NumPy array in its place: as PyTorch's operators, ``ndarray * t`` is a tensor op.
Operand = Kind("Tensor", lambda v: is_tensor(v) or _is_array(v), Tensor.guard)
# A tensor (or array), or a Python scalar in its place (``x * 2.0``, ``2 - x``).
TensorOrNumber = Kind("Tensor", lambda v: is_tensor(v) or _is_array(v) or _is_number(v), None)
TensorOrNumber.guard = f"({Tensor.guard} or {Number.guard})"


def _is_int(v: Any) -> bool:
    t = type(v)
    if t is int:
        _int_in_range(v)
        return True
    return isinstance(v, np.integer)


Int = Kind("int", _is_int, f"(type({{v}}) is int and {_IN_INT64})")


def _is_float(v: Any) -> bool:
    t = type(v)
    if t is float or t is bool:
        return True
    if t is int:
        _int_in_range(v)
        return True
    return isinstance(v, (np.integer, np.floating, float))


Float = Kind("float", _is_float, "type({v}) is float")
Bool = Kind("bool", lambda v: type(v) is bool, "type({v}) is bool")
Str = Kind("str", lambda v: type(v) is str, "type({v}) is str")


def _is_dtype(v: Any) -> bool:
    from .dtypes import DType

    return isinstance(v, (DType, str, np.dtype)) or v in (float, int, bool)


# A dtype: gradd's, a name ("float32"), a NumPy dtype or float/int/bool; names are checked by
# the op (``dtypes.as_dtype``).
DTypeArg = Kind("dtype", _is_dtype, None)


def _is_device(v: Any) -> bool:
    from .device import Device

    return isinstance(v, (str, Device))


Device = Kind("device", _is_device, "type({v}) is str")


def _int_list(v: Any, allow_bool: bool) -> bool:
    if type(v) not in (tuple, list):
        return False
    for pos, x in enumerate(v, 1):
        t = type(x)
        if t is int:
            if not INT64_MIN <= x <= INT64_MAX:
                raise ArgError(
                    ValueError,
                    f"failed to unpack the object at pos {pos} with error "
                    '"Overflow when unpacking long long"',
                )
        elif not (isinstance(x, np.integer) or (allow_bool and t is bool)):
            raise ArgError(
                TypeError,
                f"failed to unpack the object at pos {pos} with error "
                f'"type must be tuple of ints, but got {_type_name(x)}"',
            )
    return True


def _is_sizes(v: Any) -> bool:
    # ``*sizes``: ints, or one tuple/list of ints; PyTorch takes bools as sizes too.
    if type(v) is tuple and len(v) == 1:
        if type(v[0]) in (tuple, list):
            v = v[0]
        elif not isinstance(v[0], (int, np.integer)):
            return False  # ``reshape("a")``: "must be tuple of ints, not str"
    return _int_list(v, allow_bool=True)


def all_ints(sizes: tuple) -> bool:
    """The guard of ``Sizes``: a tuple of in-range Python ints."""
    for x in sizes:
        if type(x) is not int or not INT64_MIN <= x <= INT64_MAX:
            return False
    return True


# Sizes or dims passed as ``*args`` (``reshape(2, 3)``) or as one sequence (``reshape((2, 3))``).
Sizes = Kind("tuple of ints", _is_sizes, "_all_ints({v})")
# A tuple or list of dims (no bools, as PyTorch's dim lists).
IntTuple = Kind("tuple of ints", lambda v: _int_list(v, allow_bool=False), None)
# A reduction's dim: one int, a tuple or list of them, or None (all).
Dims = Int | IntTuple | None


def _is_tensor_list(v: Any) -> bool:
    if type(v) not in (tuple, list):
        return False
    for i, x in enumerate(v):
        if not is_tensor(x):
            raise ArgError(
                TypeError, f"must be tuple of Tensors, but element {i} is {_type_name(x)}"
            )
    return True


TensorList = Kind("tuple of Tensors", _is_tensor_list, None)

GUARD_NAMES = {"_TT": TENSOR_TYPES, "_all_ints": all_ints}  # what the guards refer to
