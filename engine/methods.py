"""Bind the op table onto ``Tensor``: named methods, Python operators and in-place operators."""

from __future__ import annotations

from typing import Any

from .op_table import OPS, call_op
from .tensor import Tensor

# Python's operator protocol -> (op name, whether the operands are swapped).
OPERATORS: dict[str, tuple[str, bool]] = {
    "__add__": ("add", False),
    "__radd__": ("add", False),  # addition commutes; PyTorch records x + 2 and 2 + x alike
    "__iadd__": ("add_", False),
    "__sub__": ("sub", False),
    "__rsub__": ("rsub", False),
    "__isub__": ("sub_", False),
    "__mul__": ("mul", False),
    "__rmul__": ("mul", False),
    "__imul__": ("mul_", False),
    "__truediv__": ("div", False),
    "__rtruediv__": ("rdiv", False),
    "__itruediv__": ("div_", False),
    "__pow__": ("pow", False),
    "__rpow__": ("rpow", False),
    "__matmul__": ("matmul", False),
    "__rmatmul__": ("matmul", True),
    "__neg__": ("neg", False),
    "__abs__": ("abs", False),
    "__lt__": ("lt", False),
    "__le__": ("le", False),
    "__gt__": ("gt", False),
    "__ge__": ("ge", False),
    "__eq__": ("eq", False),
    "__ne__": ("ne", False),
    "__and__": ("logical_and", False),
    "__or__": ("logical_or", False),
    "__getitem__": ("getitem", False),
    "__setitem__": ("setitem", False),
}


def _swapped(fn: Any) -> Any:
    def method(self: Any, other: Any) -> Any:
        return fn(other, self)

    return method


def bind() -> None:
    """Install every op with a method name, and the operators, on ``Tensor``."""
    for d in OPS.values():
        if d.method and not d.method.startswith("__"):
            setattr(Tensor, d.method, d.call)
    for dunder, (name, swapped) in OPERATORS.items():
        fn = OPS[name].call
        setattr(Tensor, dunder, _swapped(fn) if swapped else fn)
    Tensor.__hash__ = lambda self: id(self)  # defining __eq__ would otherwise drop hashing
    Tensor.__array_ufunc__ = None  # ndarray (op) tensor defers to the tensor's operator


def method_names() -> list[str]:
    """Every Tensor method derived from the table (for docs and tests)."""
    return sorted(d.method for d in OPS.values() if d.method)


__all__ = ["bind", "call_op", "method_names", "OPERATORS"]
