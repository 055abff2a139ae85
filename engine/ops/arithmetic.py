"""Binary arithmetic and matrix products."""

from __future__ import annotations

from typing import Any

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import composite, op

B = shapes.broadcast


_binary = shapes.elementwise


@op(
    grad_fn="AddBackward0",
    arity=2,
    shape=_binary,
    examples=(Ex(S(3, 4), S(4)), Ex(S(2, 1), S(1, 3)), Ex(S(3), 2.5), Ex(S(3), S(3), alpha=2)),
)
def add(xp: Any, self: arg.TensorOrNumber, other: arg.TensorOrNumber, alpha: arg.Number = 1) -> Any:
    """self + alpha * other, broadcasting."""
    return self + other if alpha == 1 else self + alpha * other


@add.derivative
def _(ctx: Any, g: Any) -> tuple:
    alpha = ctx.attrs["alpha"]
    return g, (g if alpha == 1 else g * alpha)


@op(
    grad_fn="SubBackward0",
    arity=2,
    shape=_binary,
    examples=(Ex(S(3, 4), S(4)), Ex(S(3), 2.5), Ex(S(2, 3), S(2, 3), alpha=3)),
)
def sub(xp: Any, self: arg.TensorOrNumber, other: arg.TensorOrNumber, alpha: arg.Number = 1) -> Any:
    """self - alpha * other, broadcasting."""
    return self - other if alpha == 1 else self - alpha * other


@sub.derivative
def _(ctx: Any, g: Any) -> tuple:
    alpha = ctx.attrs["alpha"]
    if not ctx.needs(1):
        return g, None
    return g, (-g if alpha == 1 else g * -alpha)


def _rsub_name(a: Any, b: Any, alpha: float = 1) -> str:
    return "RsubBackward1" if b is None else "RsubBackward0"  # scalar vs tensor ``other``


_rsub_name.common = "RsubBackward1"  # type: ignore[attr-defined]


@op(
    grad_fn=_rsub_name,
    arity=2,
    shape=_binary,
    method="rsub",
    examples=(Ex(S(3), 2.5), Ex(S(2, 3), S(3))),
)
def rsub(xp: Any, self: arg.Tensor, other: arg.TensorOrNumber, alpha: arg.Number = 1) -> Any:
    """other - alpha * self (Python's ``other - tensor``)."""
    return other - self if alpha == 1 else other - alpha * self


@rsub.derivative
def _(ctx: Any, g: Any) -> tuple:
    alpha = ctx.attrs["alpha"]
    return (-g if alpha == 1 else g * -alpha), g


@op(
    grad_fn="MulBackward0",
    arity=2,
    shape=_binary,
    saves=(0, 1),
    examples=(Ex(S(3, 4), S(4)), Ex(S(3), -1.5), Ex(S(2, 1, 3), S(4, 1))),
)
def mul(xp: Any, self: arg.TensorOrNumber, other: arg.TensorOrNumber) -> Any:
    """Elementwise product, broadcasting."""
    return self * other


@mul.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    return (g * b if ctx.needs(0) else None), (g * a if ctx.needs(1) else None)


@op(
    grad_fn="DivBackward0",
    arity=2,
    shape=_binary,
    dtype="float",
    saves=(0, 1),
    examples=(Ex(S(3, 4), S(4, low=0.5, high=2)), Ex(S(3), 4.0), Ex(S(2), S(2, low=1, high=3))),
)
def div(xp: Any, self: arg.TensorOrNumber, other: arg.TensorOrNumber) -> Any:
    """True division, broadcasting (integers give the default float dtype)."""
    return self / other


@div.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    gb = None
    if ctx.needs(1):
        gb = -g * a / (b * b)
    return g / b, gb


@op(
    grad_fn="ReciprocalBackward0",
    dtype="float",
    shape=shapes.same,
    saves_output=True,
    examples=(Ex(S(3, low=0.5, high=2)),),
)
def reciprocal(xp: Any, self: arg.Tensor) -> Any:
    """1 / self."""
    return 1.0 / self


@reciprocal.derivative
def _(ctx: Any, g: Any) -> tuple:
    out = ctx.output
    return (-g * out * out,)


@op(grad_fn="NegBackward0", shape=shapes.same, examples=(Ex(S(2, 3)),))
def neg(xp: Any, self: arg.Tensor) -> Any:
    """-self."""
    return -self


@neg.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (-g,)


def _pow_name(a: Any, b: Any) -> str:
    return "PowBackward0" if b is None else "PowBackward1"


_pow_name.common = "PowBackward0"  # type: ignore[attr-defined]


@op(
    grad_fn=_pow_name,
    arity=2,
    shape=_binary,
    saves=(0, 1),
    examples=(
        Ex(S(3, low=0.5, high=2), 2),
        Ex(S(3, low=0.5), 0.5),
        Ex(S(2, 3, low=0.5), S(3)),
        Ex(S(3), 3),
    ),
)
def pow(  # noqa: A001 - PyTorch's name
    xp: Any, self: arg.TensorOrNumber, exponent: arg.TensorOrNumber
) -> Any:
    """self ** exponent (tensor or Python scalar exponent)."""
    return self**exponent


@pow.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, e = ctx.saved
    if not hasattr(e, "shape"):
        if e == 0:
            return (g * 0.0, None)
        if e == 2:  # a ** 1 is a: one op fewer, the same bits as PyTorch's formula
            return (g * (a * 2.0), None)
        return (g * (e * a ** (e - 1)), None)
    ga = g * e * a ** (e - 1) if ctx.needs(0) else None
    ge = g * a**e * a.log() if ctx.needs(1) else None
    return ga, ge


@op(
    grad_fn="PowBackward2",
    arity=2,
    shape=_binary,
    saves=(1,),
    saves_output=True,
    method="rpow",
    layout=None,  # PyTorch's pow(Scalar, Tensor) makes a contiguous tensor
    examples=(Ex(S(3), 2.0), Ex(S(2, 2), 0.5)),
)
def rpow(xp: Any, self: arg.Tensor, base: arg.Number) -> Any:
    """base ** self for a Python scalar base (Python's ``2 ** tensor``)."""
    return base**self


@rpow.derivative
def _(ctx: Any, g: Any) -> tuple:
    import math

    (base,) = ctx.saved
    return g * ctx.output * math.log(base), None


def _matmul_name(a: Any, b: Any) -> str:
    nd = (len(a[0]), len(b[0]))
    return {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (2, 2): "MmBackward0"}.get(
        nd, "BmmBackward0" if nd[0] == nd[1] else "MatmulBackward0"
    )


_matmul_name.common = "MmBackward0"  # type: ignore[attr-defined]


@op(
    grad_fn=_matmul_name,
    arity=2,
    shape=lambda a, b: shapes.matmul(a, b),
    saves=(0, 1),
    examples=(
        Ex(S(3), S(3)),
        Ex(S(2, 3), S(3)),
        Ex(S(3), S(3, 2)),
        Ex(S(2, 3), S(3, 4)),
        Ex(S(2, 2, 3), S(2, 3, 4)),
        Ex(S(2, 2, 3), S(3, 2)),
        Ex(S(3, 1, 2, 3), S(2, 3, 2)),
    ),
)
def matmul(xp: Any, self: arg.Operand, other: arg.Operand) -> Any:
    """Matrix product with NumPy/PyTorch broadcasting of batch dimensions."""
    return xp.matmul(self, other)


@matmul.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if ctx.needs(0) else None, g * a if ctx.needs(1) else None)
    # Lift vectors to matrices, differentiate, then drop the added dims again.
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    g2 = g
    if b.ndim == 1:
        g2 = g2.unsqueeze(-1)
    if a.ndim == 1:
        g2 = g2.unsqueeze(-2)
    ga = gb = None
    if ctx.needs(0):
        ga = g2.matmul(b2.transpose(-1, -2))
        ga = ga.sum_to_size(*a2.shape)
        if a.ndim == 1:
            ga = ga.squeeze(-2)
    if ctx.needs(1):
        gb = a2.transpose(-1, -2).matmul(g2)
        gb = gb.sum_to_size(*b2.shape)
        if b.ndim == 1:
            gb = gb.squeeze(-1)
    return ga, gb


@op(
    grad_fn="MmBackward0",
    arity=2,
    saves=(0, 1),
    shape=lambda a, b: shapes.matmul(a, b),
    examples=(Ex(S(2, 3), S(3, 4)),),
)
def mm(xp: Any, self: arg.Tensor, mat2: arg.Tensor) -> Any:
    """Product of two matrices."""
    if self.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError("self must be a matrix")
    return self @ mat2


@mm.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    return (g.mm(b.t()) if ctx.needs(0) else None, a.t().mm(g) if ctx.needs(1) else None)


@op(
    grad_fn="AddmmBackward0",
    arity=3,
    saves=(1, 2),
    shape=lambda bias, a, b, beta=1, alpha=1: B(bias, shapes.matmul(a, b)),
    examples=(Ex(S(4), S(2, 3), S(3, 4)), Ex(S(2, 4), S(2, 3), S(3, 4), beta=0.5, alpha=2)),
)
def addmm(
    xp: Any,
    self: arg.Tensor,
    mat1: arg.Tensor,
    mat2: arg.Tensor,
    beta: arg.Number = 1,
    alpha: arg.Number = 1,
) -> Any:
    """beta * self + alpha * (mat1 @ mat2): a linear layer's op."""
    prod = mat1 @ mat2
    if alpha != 1:
        prod = prod * alpha
    return prod + self if beta == 1 else prod + beta * self


@addmm.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    beta, alpha = ctx.attrs["beta"], ctx.attrs["alpha"]
    gs = g if beta == 1 else g * beta
    ga = g.mm(b.t()) if ctx.needs(1) else None
    gb = a.t().mm(g) if ctx.needs(2) else None
    if alpha != 1:
        ga = ga * alpha if ga is not None else None
        gb = gb * alpha if gb is not None else None
    return gs, ga, gb


@composite("rdiv", method=False, function=False, examples=(Ex(S(3, low=0.5, high=2), 2.0),))
def rdiv(self: arg.Tensor, other: arg.Number) -> Any:
    """other / self for a Python scalar ``other``: recorded as PyTorch does, reciprocal * other."""
    return mul.call(reciprocal.call(self), other)
