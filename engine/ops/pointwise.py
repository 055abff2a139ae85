"""Elementwise math beyond the basics: trigonometric and hyperbolic functions, rounding,
error functions, two-tensor pointwise ops (maximum, atan2, lerp...) and tests (isnan...)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import OpDef, composite, op, register
from ..special import special
from .arithmetic import pow as _pow
from .reduction import _TORCH as _TORCH_TYPE

same = shapes.same


def _unary(
    name: str,
    grad_fn: str,
    fn: Callable[[Any, Any], Any],
    doc: str,
    *,
    examples: tuple,
    saves_output: bool = False,
    dtype: str | Callable = "float",
) -> OpDef:
    """An elementwise function of one tensor (``fn(xp, array)``) that saves its input (or, with
    ``saves_output``, its result) for its derivative; "float" ops give integer and bool inputs
    the default float dtype, as PyTorch."""

    def forward(xp: Any, self: arg.Tensor) -> Any:
        return fn(xp, self)

    forward.__doc__ = doc
    return register(
        OpDef(
            name,
            forward,
            grad_fn=grad_fn,
            dtype=dtype,
            shape=same,
            saves=() if saves_output else (0,),
            saves_output=saves_output,
            examples=examples,
        )
    )


# -- trigonometric and hyperbolic functions --------------------------------------------------

_ANY = (Ex(S(2, 3)),)
_UNIT = (Ex(S(2, 3, low=-0.9, high=0.9)),)  # inside (-1, 1): asin, acos, atanh

sin = _unary("sin", "SinBackward0", lambda xp, x: xp.sin(x), "Sine.", examples=_ANY)
cos = _unary("cos", "CosBackward0", lambda xp, x: xp.cos(x), "Cosine.", examples=_ANY)
tan = _unary(
    "tan", "TanBackward0", lambda xp, x: xp.tan(x), "Tangent.", examples=_ANY, saves_output=True
)
asin = _unary("asin", "AsinBackward0", lambda xp, x: xp.arcsin(x), "Arcsine.", examples=_UNIT)
acos = _unary("acos", "AcosBackward0", lambda xp, x: xp.arccos(x), "Arccosine.", examples=_UNIT)
atan = _unary("atan", "AtanBackward0", lambda xp, x: xp.arctan(x), "Arctangent.", examples=_ANY)
sinh = _unary("sinh", "SinhBackward0", lambda xp, x: xp.sinh(x), "Hyperbolic sine.", examples=_ANY)
cosh = _unary(
    "cosh", "CoshBackward0", lambda xp, x: xp.cosh(x), "Hyperbolic cosine.", examples=_ANY
)
asinh = _unary(
    "asinh",
    "AsinhBackward0",
    lambda xp, x: xp.arcsinh(x),
    "Inverse hyperbolic sine.",
    examples=_ANY,
)
acosh = _unary(
    "acosh",
    "AcoshBackward0",
    lambda xp, x: xp.arccosh(x),
    "Inverse hyperbolic cosine (NaN below 1).",
    examples=(Ex(S(2, 3, low=1.2, high=3.0)),),
)
atanh = _unary(
    "atanh",
    "AtanhBackward0",
    lambda xp, x: xp.arctanh(x),
    "Inverse hyperbolic tangent.",
    examples=_UNIT,
)


@sin.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * x.cos(),)


@cos.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * -x.sin(),)


@tan.derivative
def _(ctx: Any, g: Any) -> tuple:
    out = ctx.output
    return (g * (out * out + 1),)


@asin.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g / (1 - x * x).sqrt(),)


@acos.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (-g / (1 - x * x).sqrt(),)


@atan.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g / (x * x + 1),)


@sinh.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * x.cosh(),)


@cosh.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * x.sinh(),)


@asinh.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g / (x * x + 1).sqrt(),)


@acosh.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g / (x * x - 1).sqrt(),)


@atanh.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g / (1 - x * x),)


# -- exponentials, logarithms, rsqrt, square -------------------------------------------------

_POSITIVE = (Ex(S(2, 3, low=0.5, high=2.0)),)

exp2 = _unary(
    "exp2",
    "Exp2Backward0",
    lambda xp, x: xp.exp2(x),
    "2 ** self.",
    examples=_ANY,
    saves_output=True,
)
expm1 = _unary(
    "expm1",
    "Expm1Backward0",
    lambda xp, x: xp.expm1(x),
    "e ** self - 1, exact for small self.",
    examples=_ANY,
    saves_output=True,
)
log2 = _unary(
    "log2", "Log2Backward0", lambda xp, x: xp.log2(x), "Base-2 logarithm.", examples=_POSITIVE
)
log10 = _unary(
    "log10", "Log10Backward0", lambda xp, x: xp.log10(x), "Base-10 logarithm.", examples=_POSITIVE
)
log1p = _unary(
    "log1p",
    "Log1PBackward0",
    lambda xp, x: xp.log1p(x),
    "log(1 + self), exact for small self.",
    examples=(Ex(S(2, 3, low=-0.5, high=1.0)),),
)
rsqrt = _unary(
    "rsqrt",
    "RsqrtBackward0",
    lambda xp, x: 1 / xp.sqrt(x),
    "1 / sqrt(self).",
    examples=_POSITIVE,
    saves_output=True,
)


@exp2.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g * ctx.output * math.log(2.0),)


@expm1.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g * (ctx.output + 1),)


@log2.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g / (x * math.log(2.0)),)


@log10.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g / (x * math.log(10.0)),)


@log1p.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g / (x + 1),)


@rsqrt.derivative
def _(ctx: Any, g: Any) -> tuple:
    out = ctx.output
    return (g * (out * out * out) * -0.5,)


@composite("square", method=True, examples=(Ex(S(2, 3)),))
def square(self: arg.Tensor) -> Any:
    """self * self, recorded as PyTorch does: pow(self, 2) (PowBackward0; bool gives int64)."""
    return _pow.call(self, 2)


# -- rounding: the dtype is kept (integers are copied); the gradient is zero -----------------


def _not_implemented(kernel: str, d: dt.DType) -> NotImplementedError:
    """PyTorch's error for a dtype its CPU kernel lacks (``"frac_cpu" not implemented...``)."""
    return NotImplementedError(f"\"{kernel}\" not implemented for '{_TORCH_TYPE[d.name]}'")


def _kept_dtype(kernel: str, integers: bool = True) -> Callable[..., dt.DType]:
    """The dtype rule of a rounding op: its input's dtype; PyTorch's kernel refuses bool (and,
    unless ``integers``, int64) with its error."""

    def rule(self: Any, **_: Any) -> dt.DType:
        d = dt.as_dtype(self.dtype)  # a Tensor's DType, or the forward's array's NumPy dtype
        if d is dt.bool_ or (d is dt.int64 and not integers):
            raise _not_implemented(kernel, d)
        return d

    return rule


def _rounding(name: str, grad_fn: str, fn: Callable, kernel: str, doc: str) -> OpDef:
    rule = _kept_dtype(kernel)

    def forward(xp: Any, self: arg.Tensor) -> Any:
        if self.dtype.kind != "f":
            rule(self)
            return self.copy()  # integers are already whole
        return fn(xp, self)

    forward.__doc__ = doc
    d = register(
        OpDef(
            name,
            forward,
            grad_fn=grad_fn,
            dtype=rule,
            shape=same,
            examples=(Ex(S(2, 3, low=-3.0, high=3.0)),),
        )
    )
    d.backward = _zero_gradient
    return d


def _zero_gradient(ctx: Any, g: Any) -> tuple:
    return (g * 0,)


floor = _rounding(
    "floor",
    "FloorBackward0",
    lambda xp, x: xp.floor(x),
    "floor_vml_cpu",
    "Largest integer <= self (zero gradient).",
)
ceil = _rounding(
    "ceil",
    "CeilBackward0",
    lambda xp, x: xp.ceil(x),
    "ceil_vml_cpu",
    "Smallest integer >= self (zero gradient).",
)
trunc = _rounding(
    "trunc",
    "TruncBackward0",
    lambda xp, x: xp.trunc(x),
    "trunc_vml_cpu",
    "self rounded toward zero (zero gradient).",
)


def _round_dtype(self: Any, decimals: int = 0) -> dt.DType:
    if decimals == 0:
        return _kept_dtype("round_vml_cpu")(self)
    return _kept_dtype("round_cpu", integers=False)(self)


def _round_name(a: Any, decimals: int = 0) -> str:
    return "RoundBackward0" if decimals == 0 else "RoundBackward1"


_round_name.common = "RoundBackward0"  # type: ignore[attr-defined]


@op(
    grad_fn=_round_name,
    dtype=_round_dtype,
    shape=same,
    examples=(
        Ex(S(2, 3, low=-3.0, high=3.0)),
        Ex(S(2, 3, low=-3.0, high=3.0), decimals=2),
        Ex(S(2, 3, low=-30.0, high=30.0), decimals=-1),
    ),
)
def round(xp: Any, self: arg.Tensor, decimals: arg.Int = 0) -> Any:  # noqa: A001
    """Round half to even, to ``decimals`` decimal places (zero gradient)."""
    if self.dtype.kind != "f":
        _round_dtype(self, decimals)
        return self.copy()
    if decimals == 0:
        return xp.rint(self)
    # PyTorch's kernel: the power of ten in the tensor's dtype, multiplied or divided by.
    p = 10.0 ** abs(decimals)
    return xp.rint(self * p) / p if decimals > 0 else xp.rint(self / p) * p


round.backward = _zero_gradient


@op(
    grad_fn="FracBackward0",
    dtype=_kept_dtype("frac_cpu", integers=False),
    shape=same,
    examples=(Ex(S(2, 3, low=-3.0, high=3.0)),),
)
def frac(xp: Any, self: arg.Tensor) -> Any:
    """self - trunc(self): the fractional part, with self's sign."""
    if self.dtype.kind != "f":
        _kept_dtype("frac_cpu", integers=False)(self)
    return self - xp.trunc(self)


@frac.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g,)


# -- error functions -------------------------------------------------------------------------

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

erf = _unary(
    "erf", "ErfBackward0", lambda xp, x: special(xp).erf(x), "Error function.", examples=_ANY
)
erfc = _unary(
    "erfc",
    "ErfcBackward0",
    lambda xp, x: special(xp).erfc(x),
    "1 - erf(self), exact where erf(self) is near 1.",
    examples=_ANY,
)
erfinv = _unary(
    "erfinv",
    "ErfinvBackward0",
    lambda xp, x: special(xp).erfinv(x),
    "Inverse error function (infinite at -1 and 1, NaN beyond).",
    examples=_UNIT,
    saves_output=True,
)


@erf.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * (-x * x).exp() * _TWO_OVER_SQRT_PI,)


@erfc.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * (-x * x).exp() * -_TWO_OVER_SQRT_PI,)


@erfinv.derivative
def _(ctx: Any, g: Any) -> tuple:
    out = ctx.output
    return (g * (out * out).exp() * (0.5 * math.sqrt(math.pi)),)
