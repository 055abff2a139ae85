"""Elementwise functions of one tensor."""

from __future__ import annotations

from typing import Any

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import op

same = shapes.same


@op(grad_fn="ExpBackward0", dtype="float", shape=same, saves_output=True, examples=(Ex(S(2, 3)),))
def exp(xp: Any, self: arg.Tensor) -> Any:
    """e ** self."""
    return xp.exp(self)


@exp.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g * ctx.output,)


@op(
    grad_fn="LogBackward0",
    dtype="float",
    shape=same,
    saves=(0,),
    examples=(Ex(S(2, 3, low=0.5, high=2)),),
)
def log(xp: Any, self: arg.Tensor) -> Any:
    """Natural logarithm."""
    return xp.log(self)


@log.derivative
def _(ctx: Any, g: Any) -> tuple:
    (a,) = ctx.saved
    return (g / a,)


@op(
    grad_fn="SqrtBackward0",
    dtype="float",
    shape=same,
    saves_output=True,
    examples=(Ex(S(4, low=0.5, high=2)),),
)
def sqrt(xp: Any, self: arg.Tensor) -> Any:
    """Square root."""
    return xp.sqrt(self)


@sqrt.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g / (2 * ctx.output),)


@op(grad_fn="AbsBackward0", shape=same, saves=(0,), examples=(Ex(S(5)),))
def abs(xp: Any, self: arg.Tensor) -> Any:  # noqa: A001 - PyTorch's name
    """|self|."""
    return xp.abs(self)


@abs.derivative
def _(ctx: Any, g: Any) -> tuple:
    (a,) = ctx.saved
    return (g * a.sign(),)


@op(grad_fn=None, shape=same, examples=())
def sign(xp: Any, self: arg.Tensor) -> Any:
    """-1, 0 or 1 by the sign of each element (no gradient)."""
    return xp.sign(self)


def _clamp_name(a: Any, min: Any = None, max: Any = None) -> str:  # noqa: A002
    return "ClampBackward1"


_clamp_name.common = "ClampBackward1"  # type: ignore[attr-defined]


def _clamp_norm(
    self: arg.Tensor,
    min: arg.Number | None = None,  # noqa: A002
    max: arg.Number | None = None,  # noqa: A002
) -> dict:
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return {"min": min, "max": max}


@op(
    layout="pointwise",
    grad_fn=_clamp_name,
    shape=lambda a, **k: a,
    saves=(0,),
    normalize=_clamp_norm,
    examples=(Ex(S(6), min=-0.5), Ex(S(6), max=0.3), Ex(S(2, 3), -0.4, 0.4)),
)
def clamp(xp: Any, self: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    """Limit values to [min, max] (either may be None)."""
    return xp.clip(self, min, max)


@clamp.derivative
def _(ctx: Any, g: Any) -> tuple:
    (a,) = ctx.saved
    lo, hi = ctx.attrs["min"], ctx.attrs["max"]
    mask = None
    if lo is not None:
        mask = a.ge(lo)
    if hi is not None:
        m = a.le(hi)
        mask = m if mask is None else mask.logical_and(m)
    return (g * mask,)


@op(grad_fn="ReluBackward0", shape=same, saves_output=True, examples=(Ex(S(7)),))
def relu(xp: Any, self: arg.Tensor) -> Any:
    """max(self, 0)."""
    return xp.maximum(self, 0)


@relu.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (threshold_backward.call(g, ctx.output, 0),)


@op(
    layout="pointwise",
    grad_fn="ThresholdBackwardBackward0",
    arity=2,
    shape=lambda grad, self, **k: grad,
    saves=(1,),
    internal=True,
    method=False,
    function=False,
    examples=(Ex(S(2, 3), S(2, 3), 0.0),),
)
def threshold_backward(xp: Any, grad: Any, self: Any, threshold: Any) -> Any:
    """``grad`` where ``self > threshold``, else 0: relu's backward, as PyTorch records it.

    Its result depends on ``self`` (with a zero derivative), so a gradient made with
    ``create_graph=True`` requires grad as PyTorch's does."""
    return xp.where(self > threshold, grad, xp.zeros((), grad.dtype))


@threshold_backward.derivative
def _(ctx: Any, gg: Any) -> tuple:
    (self,) = ctx.saved
    return (threshold_backward.call(gg, self, ctx.attrs["threshold"]), self.mul(0))


@op(
    grad_fn="SigmoidBackward0",
    dtype="float",
    shape=same,
    saves_output=True,
    examples=(Ex(S(2, 3)),),
)
def sigmoid(xp: Any, self: arg.Tensor) -> Any:
    """1 / (1 + e ** -self), stable for large |self|."""
    # exp of -|x| never overflows; the two branches are the same function.
    e = xp.exp(-xp.abs(self))
    return xp.where(self >= 0, 1 / (1 + e), e / (1 + e)).astype(self.dtype, copy=False)


@sigmoid.derivative
def _(ctx: Any, g: Any) -> tuple:
    out = ctx.output
    return (g * out * (1 - out),)


@op(grad_fn="TanhBackward0", dtype="float", shape=same, saves_output=True, examples=(Ex(S(2, 3)),))
def tanh(xp: Any, self: arg.Tensor) -> Any:
    """Hyperbolic tangent."""
    return xp.tanh(self)


@tanh.derivative
def _(ctx: Any, g: Any) -> tuple:
    out = ctx.output
    return (g * (1 - out * out),)
