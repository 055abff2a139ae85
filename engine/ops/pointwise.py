"""Elementwise math beyond the basics: trigonometric and hyperbolic functions, rounding,
error functions, two-tensor pointwise ops (maximum, atan2, lerp...) and tests (isnan...)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import shapes
from ..op_examples import C, Ex, S
from ..op_table import OpDef, composite, op, register
from ..special import special
from .arithmetic import pow as _pow
from .shape_ops import where as _where

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
    return NotImplementedError(f"\"{kernel}\" not implemented for '{d.torch_name}'")


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


# -- two-tensor ops: broadcasting, and PyTorch's type promotion (``dtypes.result_type``) -----

_binary = shapes.elementwise


def _operand(x: Any, d: dt.DType) -> Any:
    """An array operand in the result dtype (Python scalars stay weak, as in PyTorch)."""
    return x.astype(d.np, copy=False) if hasattr(x, "dtype") else x


def _promoted(kernel: str, integers: bool = True) -> Callable[..., dt.DType]:
    """The dtype rule of a binary op whose kernel lacks some dtypes: the promoted dtype, or
    PyTorch's error for bool (and, unless ``integers``, int64). The forward applies it too, so
    a client knows the error (or the dtype) before the server runs the op."""

    def rule(self: Any, other: Any, **_: Any) -> dt.DType:
        d = dt.result_type(self, other)
        if d is dt.bool_ or (d is dt.int64 and not integers):
            raise _not_implemented(kernel, d)
        return d

    return rule


def _zero_divisor(xp: Any, other: Any) -> None:
    """PyTorch's CPU error for an integer division by zero (its CUDA kernels do not check)."""
    if not hasattr(other, "dtype"):
        zero = other == 0
    elif xp is np:  # the CPU: no device sync
        zero = bool((other == 0).any())
    else:
        return
    if zero:
        raise RuntimeError("ZeroDivisionError")


@op(
    grad_fn="Atan2Backward0",
    arity=2,
    dtype="float",
    shape=_binary,
    saves=(0, 1),
    examples=(Ex(S(2, 3), S(2, 3)), Ex(S(2, 3), S(3))),
)
def atan2(xp: Any, self: arg.Tensor, other: arg.Tensor) -> Any:
    """Angle of the point (other, self): the arctangent of self / other, by quadrant."""
    return xp.arctan2(self, other)


@atan2.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    r = (a * a + b * b).reciprocal()
    return (g * b * r if ctx.needs(0) else None), (g * -a * r if ctx.needs(1) else None)


def _extremum(name: str, grad_fn: str, fn: Callable, larger: bool, doc: str) -> OpDef:
    def forward(xp: Any, self: arg.Tensor, other: arg.Tensor) -> Any:
        return fn(xp)(self, other)

    forward.__doc__ = doc
    d = register(
        OpDef(
            name,
            forward,
            grad_fn=grad_fn,
            arity=2,
            shape=_binary,
            saves=(0, 1),
            examples=(Ex(S(2, 3), S(3)), Ex(S(2, 1), S(1, 3))),
        )
    )

    def derivative(ctx: Any, g: Any) -> tuple:
        # PyTorch's: a tie splits the gradient in halves; NaN (no order) gives it to both.
        a, b = ctx.saved
        shared = _where.call(a.eq(b), g * 0.5, g)
        a_loses, b_loses = (a.lt(b), a.gt(b)) if larger else (a.gt(b), a.lt(b))
        return (
            _where.call(a_loses, 0.0, shared) if ctx.needs(0) else None,
            _where.call(b_loses, 0.0, shared) if ctx.needs(1) else None,
        )

    d.backward = derivative
    return d


maximum = _extremum(
    "maximum",
    "MaximumBackward0",
    lambda xp: xp.maximum,
    True,
    "The larger of self and other, elementwise (NaN if either is).",
)
minimum = _extremum(
    "minimum",
    "MinimumBackward0",
    lambda xp: xp.minimum,
    False,
    "The smaller of self and other, elementwise (NaN if either is).",
)


def _scalar_or_tensor_name(scalar: str, tensor: str, operand: int = 1) -> Callable[..., str]:
    """A grad_fn name by one operand (the second unless said): a Python number or a tensor."""

    def name(*inputs: Any, **attrs: Any) -> str:
        return scalar if inputs[operand] is None else tensor

    name.common = scalar  # type: ignore[attr-defined]
    return name


_DIVISORS = (
    Ex(S(2, 3, low=-3.0, high=3.0), S(3, low=0.5, high=1.5)),
    Ex(S(2, 3, low=-3.0, high=3.0), 0.7),
    Ex(S(2, 3, low=-3.0, high=3.0), -0.7),
)
_fmod_dtype = _promoted("fmod_cpu")


@op(
    grad_fn=_scalar_or_tensor_name("FmodBackward0", "FmodBackward1"),
    arity=2,
    dtype=_fmod_dtype,
    shape=_binary,
    saves=(0, 1),
    examples=_DIVISORS,
)
def fmod(xp: Any, self: arg.Tensor, other: arg.TensorOrNumber) -> Any:
    """C's fmod: self - trunc(self / other) * other, with self's sign."""
    d = _fmod_dtype(self, other)
    if d is dt.int64:
        _zero_divisor(xp, other)
    return xp.fmod(_operand(self, d), _operand(other, d))


@fmod.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    return g, (-g * (a / b).trunc() if ctx.needs(1) else None)


_remainder_dtype = _promoted("remainder_cpu")


@op(
    grad_fn=_scalar_or_tensor_name("RemainderBackward0", "RemainderBackward1"),
    arity=2,
    dtype=_remainder_dtype,
    shape=_binary,
    saves=(0, 1),
    examples=_DIVISORS,
)
def remainder(xp: Any, self: arg.Tensor, other: arg.TensorOrNumber) -> Any:
    """Python's modulus: self - floor(self / other) * other, with other's sign."""
    d = _remainder_dtype(self, other)
    if d is dt.int64:
        _zero_divisor(xp, other)
    return xp.remainder(_operand(self, d), _operand(other, d))


@remainder.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    return g, (-g * (a / b).floor() if ctx.needs(1) else None)


_hypot_dtype = _promoted("hypot_cpu", integers=False)


@op(
    grad_fn="HypotBackward0",
    arity=2,
    dtype=_hypot_dtype,
    shape=_binary,
    saves=(0, 1),
    saves_output=True,
    examples=(Ex(S(2, 3), S(2, 3)), Ex(S(2, 3), S(3))),
)
def hypot(xp: Any, self: arg.Tensor, other: arg.Tensor) -> Any:
    """sqrt(self ** 2 + other ** 2), without overflow for large operands."""
    d = _hypot_dtype(self, other)
    return xp.hypot(_operand(self, d), _operand(other, d))


@hypot.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    out = ctx.output
    return (g * a / out if ctx.needs(0) else None), (g * b / out if ctx.needs(1) else None)


_C_TYPE = {"float32": "float", "float64": "double", "int64": "long int", "bool": "bool"}


def _lerp_dtype(self: Any, end: Any, weight: Any) -> dt.DType:
    """PyTorch's: ``end`` (and a weight of one or more dims) in self's dtype; a 0-dim weight
    promotes; floating point only."""
    d = dt.as_dtype(self.dtype)
    e = dt.as_dtype(end.dtype)
    if e is not d:
        raise RuntimeError(
            f"expected dtype {_C_TYPE[d.name]} for `end` but got dtype {_C_TYPE[e.name]}"
        )
    if hasattr(weight, "dtype"):
        w = dt.as_dtype(weight.dtype)
        if weight.ndim and w is not d:
            raise RuntimeError(
                f"expected dtype {_C_TYPE[d.name]} for `weight` but got dtype {_C_TYPE[w.name]}"
            )
        r, kernel = dt.result_type(self, end, weight), "lerp_kernel_tensor"
    else:
        r, kernel = d, "lerp_kernel_scalar"
    if not r.is_floating_point:
        raise _not_implemented(kernel, r)
    return r


@op(
    grad_fn=_scalar_or_tensor_name("LerpBackward0", "LerpBackward1", operand=2),
    arity=3,
    dtype=_lerp_dtype,
    shape=_binary,
    saves=(0, 1, 2),
    examples=(
        Ex(S(2, 3), S(3), 0.3),
        Ex(S(2, 3), S(2, 3), 0.8),
        Ex(S(2, 3), S(3), S(2, 1, low=-0.2, high=1.2)),
    ),
)
def lerp(xp: Any, self: arg.Tensor, end: arg.Tensor, weight: arg.TensorOrNumber) -> Any:
    """self + weight * (end - self), computed from the nearer end as PyTorch (exact at 0, 1)."""
    d = _lerp_dtype(self, end, weight)
    self, end = _operand(self, d), _operand(end, d)
    diff = end - self
    if not hasattr(weight, "dtype"):
        return self + weight * diff if abs(weight) < 0.5 else end - diff * (1 - weight)
    weight = _operand(weight, d)
    return xp.where(xp.abs(weight) < 0.5, self + weight * diff, end - diff * (1 - weight))


@lerp.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b, w = ctx.saved
    return (
        g * (1 - w) if ctx.needs(0) else None,
        g * w if ctx.needs(1) else None,
        g * (b - a) if ctx.needs(2) else None,
    )


def _clamp_dtype(kernel: str) -> Callable[..., dt.DType]:
    """The promoted dtype; PyTorch's kernel for a number bound refuses a bool result."""

    def rule(self: Any, bound: Any, **_: Any) -> dt.DType:
        d = dt.result_type(self, bound)
        if d is dt.bool_ and not hasattr(bound, "dtype"):
            raise _not_implemented(kernel, d)
        return d

    return rule


_clamp_min_dtype = _clamp_dtype("clamp_min_scalar_cpu")
_clamp_max_dtype = _clamp_dtype("clamp_max_scalar_cpu")


def _clamp_side(
    grad_names: tuple[str, str], keeps: str, loses: str, rule: Callable
) -> Callable[[Callable], OpDef]:
    """clamp_min and clamp_max: ``self`` against a bound (a number or a tensor, broadcasting).
    PyTorch's formulas: the gradient goes to self where self is the result (ties included), to
    the bound where self is beyond it, to neither where either is NaN."""

    def declare(forward: Callable) -> OpDef:
        d = op(
            grad_fn=_scalar_or_tensor_name(*grad_names),
            arity=2,
            dtype=rule,
            shape=_binary,
            saves=(0, 1),
            examples=(Ex(S(2, 3), 0.2), Ex(S(2, 3), S(3)), Ex(S(2, 1), S(1, 3))),
        )(forward)

        def derivative(ctx: Any, g: Any) -> tuple:
            a, bound = ctx.saved
            return (
                _where.call(getattr(a, keeps)(bound), g, 0.0) if ctx.needs(0) else None,
                _where.call(getattr(a, loses)(bound), g, 0.0) if ctx.needs(1) else None,
            )

        d.backward = derivative
        return d

    return declare


@_clamp_side(("ClampMinBackward0", "ClampMinBackward1"), "ge", "lt", _clamp_min_dtype)
def clamp_min(xp: Any, self: arg.Tensor, min: arg.TensorOrNumber) -> Any:  # noqa: A002
    """max(self, min): clamp from below (min a number or a tensor)."""
    d = _clamp_min_dtype(self, min)
    return xp.maximum(_operand(self, d), _operand(min, d))


@_clamp_side(("ClampMaxBackward0", "ClampMaxBackward1"), "le", "gt", _clamp_max_dtype)
def clamp_max(xp: Any, self: arg.Tensor, max: arg.TensorOrNumber) -> Any:  # noqa: A002
    """min(self, max): clamp from above (max a number or a tensor)."""
    d = _clamp_max_dtype(self, max)
    return xp.minimum(_operand(self, d), _operand(max, d))


# -- tests (bool results, no gradient) and nan_to_num ----------------------------------------

_SPECIAL_VALUES = C([1.0, math.nan, math.inf, -math.inf, -0.0])


def _test(name: str, fn: Callable, doc: str) -> OpDef:
    def forward(xp: Any, self: arg.Tensor) -> Any:
        return fn(xp)(self)

    forward.__doc__ = doc
    return register(
        OpDef(
            name,
            forward,
            grad_fn=None,
            dtype="bool",
            shape=same,
            examples=(Ex(S(2, 3, grad=False)), Ex(_SPECIAL_VALUES)),
        )
    )


isnan = _test("isnan", lambda xp: xp.isnan, "Whether each element is NaN.")
isinf = _test("isinf", lambda xp: xp.isinf, "Whether each element is infinite (either sign).")
isfinite = _test("isfinite", lambda xp: xp.isfinite, "Whether each element is finite.")


@op(
    grad_fn="NanToNumBackward0",
    shape=same,
    saves=(0,),
    examples=(Ex(S(2, 3)), Ex(S(2, 3), nan=0.5, posinf=2.0, neginf=-2.0), Ex(S(3), 1.5)),
)
def nan_to_num(
    xp: Any,
    self: arg.Tensor,
    nan: arg.Float | None = 0.0,
    posinf: arg.Float | None = None,
    neginf: arg.Float | None = None,
) -> Any:
    """NaN, +inf, -inf replaced (defaults: 0, the dtype's largest and lowest values).

    Integer and bool tensors have none: they are copied."""
    if self.dtype.kind != "f":
        return self.copy()
    return xp.nan_to_num(self, nan=0.0 if nan is None else nan, posinf=posinf, neginf=neginf)


@nan_to_num.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * x.isfinite(),)
