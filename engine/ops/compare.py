"""Comparisons and logical ops: boolean results that never need a gradient."""

from __future__ import annotations

from typing import Any

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import C, Ex, S
from ..op_table import OpDef, register


def _cmp(name: str, fn: Any, doc: str) -> OpDef:
    def forward(xp: Any, self: arg.TensorOrNumber, other: arg.TensorOrNumber) -> Any:
        return fn(self, other)

    forward.__doc__ = doc
    return register(
        OpDef(
            name,
            forward,
            grad_fn=None,
            arity=2,
            dtype="bool",
            shape=shapes.elementwise,
            examples=(Ex(S(3, grad=False), 0.0),),
        )
    )


lt = _cmp("lt", lambda a, b: a < b, "self < other, elementwise.")
le = _cmp("le", lambda a, b: a <= b, "self <= other, elementwise.")
gt = _cmp("gt", lambda a, b: a > b, "self > other, elementwise.")
ge = _cmp("ge", lambda a, b: a >= b, "self >= other, elementwise.")
eq = _cmp("eq", lambda a, b: a == b, "self == other, elementwise.")
ne = _cmp("ne", lambda a, b: a != b, "self != other, elementwise.")


def _logical(name: str, fn: Any, doc: str) -> OpDef:
    def forward(xp: Any, self: arg.TensorOrNumber, other: arg.TensorOrNumber) -> Any:
        return fn(xp)(self, other)

    forward.__doc__ = doc
    return register(
        OpDef(
            name,
            forward,
            grad_fn=None,
            arity=2,
            dtype="bool",
            shape=shapes.elementwise,
            examples=(Ex(C([True, False]), C([True, True])),),
        )
    )


logical_and = _logical("logical_and", lambda xp: xp.logical_and, "Elementwise logical and.")
logical_or = _logical("logical_or", lambda xp: xp.logical_or, "Elementwise logical or.")
logical_xor = _logical("logical_xor", lambda xp: xp.logical_xor, "Elementwise logical xor.")


def _logical_not(xp: Any, self: arg.Tensor) -> Any:
    """Elementwise logical not (zero is False)."""
    return xp.logical_not(self)


logical_not = register(
    OpDef(
        "logical_not",
        _logical_not,
        grad_fn=None,
        dtype="bool",
        shape=shapes.same,
        examples=(Ex(C([True, False])), Ex(C([0.0, -1.5, 2.0]))),
    )
)
