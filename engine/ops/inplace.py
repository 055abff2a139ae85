"""In-place ops, derived from their out-of-place declarations (PyTorch names their nodes alike)."""

from __future__ import annotations

from typing import Any

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import C, Ex, S
from ..op_table import OP_TABLE, OPS, OpDef, composite, op, register
from . import arithmetic, pointwise, unary  # noqa: F401  (declared before their in-place forms)
from .indexing import _scatter_checks


def _written_into(a: tuple, result: tuple) -> tuple:
    """The shape rule of in-place ops: the result must have self's shape (PyTorch's error)."""
    if tuple(result) != tuple(a):
        raise RuntimeError(
            f"output with shape {list(a)} doesn't match the broadcast shape {list(result)}"
        )
    return a


def _inplace_of(name: str, table: dict = OPS, **decl: Any) -> OpDef:
    """``name_``: the op's own forward, backward, normaliser and grad_fn name (PyTorch names
    an in-place op's node as the out-of-place one's), writing into its first input."""
    base = table[name]

    def shape(a: tuple, *r: Any, **k: Any) -> tuple:
        return _written_into(a, base.shape(a, *r, **k))

    # Operands of self's shape and dtype cannot fail it (``inplace_rules.plain_inplace``).
    shape.elementwise = base.shape in (shapes.elementwise, shapes.same)  # type: ignore[attr-defined]
    d = OpDef(
        name + "_",
        base.forward,
        grad_fn=base.grad_fn,
        shape=shape,
        backward=base.backward,
        dtype=base.dtype,
        arity=base.arity,
        saves=base.saves,
        saves_output=base.saves_output,
        normalize=base.normalize,
        examples=base.examples[:1],
        inplace=True,
        **decl,
    )
    d.doc = f"In-place {name}: {base.doc}"
    return register(d)


add_ = _inplace_of("add")
sub_ = _inplace_of("sub")
mul_ = _inplace_of("mul")
div_ = _inplace_of("div")

# PyTorch's other in-place forms that scripts use, each derived from its out-of-place op.
POINTWISE_INPLACE = (
    "clamp clamp_min clamp_max masked_fill pow lerp fmod remainder nan_to_num exp exp2 expm1 "
    "log log2 log10 log1p sqrt rsqrt neg abs reciprocal relu sigmoid tanh sin cos tan asin "
    "acos atan sinh cosh erf floor ceil trunc frac"
).split()
for _name in POINTWISE_INPLACE:
    globals()[_name + "_"] = _inplace_of(_name)

_INTERNAL = {"internal": True, "method": False, "function": False}
scatter_dim_ = _inplace_of("scatter_dim", OP_TABLE, **_INTERNAL)
scatter_add_dim_ = _inplace_of("scatter_add_dim", OP_TABLE, **_INTERNAL)


@composite(
    "scatter_",
    method=True,
    function=False,
    examples=(
        Ex(S(3, 4), 0, C([[0, 1, 2, 0], [2, 0, 1, 1]]), S(2, 4)),
        Ex(S(3, 4), 0, C([[0, 1, 2, 0]]), 2.5),
    ),
)
def scatter_(
    self: arg.Tensor,
    dim: arg.Int,
    index: arg.Tensor,
    src: arg.TensorOrNumber | None = None,
    value: arg.Number | None = None,
) -> Any:
    """In-place scatter: ``src`` (or the number ``value``) written along ``dim`` at index."""
    if (src is None) == (value is None):
        raise TypeError("scatter_(): pass exactly one of src (a tensor) and value (a number)")
    src = value if src is None else src
    d = _scatter_checks("scatter_", self, dim, index, src)
    return scatter_dim_.call(self, index, src, d)


@composite(
    "scatter_add_",
    method=True,
    function=False,
    examples=(Ex(S(4), 0, C([1, 1, 3]), S(3)),),
)
def scatter_add_(self: arg.Tensor, dim: arg.Int, index: arg.Tensor, src: arg.Tensor) -> Any:
    """In-place scatter_add: ``src`` added along ``dim`` at ``index`` (repeats accumulate)."""
    d = _scatter_checks("scatter_add_", self, dim, index, src)
    return scatter_add_dim_.call(self, index, src, d)


def _zero_grad(ctx: Any, g: Any) -> tuple:
    return (g * 0,)


@op(
    "zero_",
    grad_fn="ZeroBackward0",
    shape=shapes.same,
    inplace=True,
    dtype="same",
    examples=(Ex(S(3)),),
)
def zero_(xp: Any, self: arg.Tensor) -> Any:
    """Fill with zeros."""
    # Not zeros_like (a Python wrapper around these two calls, keeping a layout self ignores).
    out = xp.empty(self.shape, self.dtype)
    out.fill(0)
    return out


zero_.backward = _zero_grad


@op(
    "fill_",
    grad_fn="FillBackward2",
    shape=lambda a, value: a,
    inplace=True,
    examples=(Ex(S(3), 2.5),),
)
def fill_(xp: Any, self: arg.Tensor, value: arg.Number) -> Any:
    """Fill with ``value``."""
    return xp.full_like(self, value)


fill_.backward = _zero_grad


@op(
    "copy_",
    grad_fn="torch::autograd::CopyBackwards",
    arity=2,
    dtype="same",
    shape=lambda a, b: (shapes.broadcast(a, b), a)[1],
    inplace=True,
    examples=(Ex(S(2, 3), S(3)),),
)
def copy_(xp: Any, self: arg.Tensor, src: arg.TensorOrNumber) -> Any:
    """Copy ``src`` (broadcast, converted to self's dtype) into self."""
    src = xp.asarray(src, dtype=self.dtype)  # a Python number too, as PyTorch
    shapes.broadcast(self.shape, src.shape)
    return xp.broadcast_to(src, self.shape).copy()


@copy_.derivative
def _(ctx: Any, g: Any) -> tuple:
    return g * 0, g


_record_copy = copy_.call


def _copy_call(self: arg.Tensor, src: arg.TensorOrNumber) -> Any:
    """copy_ crosses devices, as PyTorch's: ``src`` is moved to self's device first (a
    ToCopyBackward0 node carries its gradient back)."""
    dev = getattr(self, "_dev", None)
    src_dev = getattr(src, "_dev", None)
    if dev is not None and src_dev is not None and src_dev is not dev:
        src = src.to(dev)
    return _record_copy(self, src)


copy_.call = _copy_call
