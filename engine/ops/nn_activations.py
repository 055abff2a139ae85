"""Activation functions of ``torch.nn.functional`` (softplus, gelu, silu, elu...).

Those with PyTorch's ``inplace`` parameter run in place when it is true (the op table's caller
writes the result into the input, as ``record_inplace`` does for ``add_``); PyTorch then records
some of them under another name (``EluBackward1``: the backward of the in-place kernel), so
their ``grad_fn`` rule reads the ``inplace`` attribute.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import composite, op
from ..special import special
from .unary import sigmoid

same = shapes.same


def stable_softplus(xp: Any, x: Any) -> Any:
    """log1p(exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def stable_log_sigmoid(xp: Any, x: Any) -> Any:
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): finite for any x."""
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


def _floating(x: Any, kernel: str) -> None:
    """PyTorch's error for a float-only kernel run on an integer or bool tensor."""
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{x.dtype.torch_name}'")


def _named(out_of_place: str, in_place: str) -> Any:
    """A grad_fn rule: PyTorch's name for the op, by whether it ran in place."""

    def name(*meta: Any, inplace: bool = False, **attrs: Any) -> str:
        return in_place if inplace else out_of_place

    name.common = out_of_place  # type: ignore[attr-defined]
    return name


# -- softplus, logsigmoid ----------------------------------------------------------------------


def _softplus_norm(
    input: arg.Tensor,  # noqa: A002
    beta: arg.Number = 1,
    threshold: arg.Number = 20,
) -> dict:
    _floating(input, "softplus_cpu")
    return {"beta": beta, "threshold": threshold}


@op(
    grad_fn="SoftplusBackward0",
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_softplus_norm,
    method=False,
    function=False,
    examples=(
        Ex(S(2, 3)),
        Ex(S(4, low=-3, high=3), beta=2.0),
        Ex(S(5, low=-3, high=3), 0.5, 1.0),
        Ex(S(4, low=-30, high=30), threshold=5),
    ),
)
def softplus(xp: Any, input: Any, beta: float = 1, threshold: float = 20) -> Any:  # noqa: A002
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold."""
    bx = input * beta
    soft = stable_softplus(xp, bx) / beta
    return xp.where(bx > threshold, input, soft).astype(input.dtype, copy=False)


@softplus.derivative
def _(ctx: Any, g: Any) -> tuple:
    from .shape_ops import where

    (x,) = ctx.saved
    beta, threshold = ctx.attrs["beta"], ctx.attrs["threshold"]
    bx = x * beta
    return (where.call(bx.gt(threshold), g, g * bx.sigmoid()),)


def _logsigmoid_norm(input: arg.Tensor) -> dict:  # noqa: A002
    _floating(input, "log_sigmoid_cpu")
    return {}


@op(
    layout=None,
    grad_fn="LogSigmoidBackward0",
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_logsigmoid_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 3)), Ex(S(5, low=-40, high=40))),
)
def logsigmoid(xp: Any, input: Any) -> Any:  # noqa: A002
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): finite for any x."""
    return stable_log_sigmoid(xp, input)


@logsigmoid.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * (-x).sigmoid(),)


# -- gelu --------------------------------------------------------------------------------------

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_C = 0.044715
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _gelu_norm(input: arg.Tensor, approximate: arg.Str = "none") -> dict:  # noqa: A002
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    _floating(input, "GeluKernelImpl")
    return {"approximate": approximate}


@op(
    grad_fn="GeluBackward0",
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_gelu_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 3, low=-3, high=3)), Ex(S(5, low=-3, high=3), approximate="tanh")),
)
def gelu(xp: Any, input: Any, approximate: str = "none") -> Any:  # noqa: A002
    """x * Phi(x) (Phi: the standard normal CDF), or its tanh approximation."""
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (input + _GELU_C * input * input * input)
        return 0.5 * input * (1 + xp.tanh(inner))
    return 0.5 * input * (1 + special(xp).erf(input * math.sqrt(0.5)))


@gelu.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (gelu_backward.call(g, x, ctx.attrs["approximate"]),)


def _gelu_backward_norm(grad_output: Any, input: Any, approximate: str = "none") -> dict:  # noqa: A002
    return {"approximate": approximate}


@op(
    layout="pointwise",
    grad_fn="GeluBackwardBackward0",
    arity=2,
    shape=lambda g, x, approximate="none": shapes.broadcast(g, x),
    saves=(0, 1),
    normalize=_gelu_backward_norm,
    method=False,
    function=False,
    internal=True,
    examples=(
        Ex(S(2, 3), S(2, 3, low=-3, high=3)),
        Ex(S(4), S(4, low=-3, high=3), approximate="tanh"),
    ),
)
def gelu_backward(xp: Any, grad_output: Any, input: Any, approximate: str = "none") -> Any:  # noqa: A002
    """grad_output * gelu'(input): gelu's gradient, itself differentiable (as PyTorch's)."""
    x = input
    if approximate == "tanh":
        t = xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
        du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x)
        return grad_output * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
    cdf = 0.5 * (1 + special(xp).erf(x * math.sqrt(0.5)))
    return grad_output * (cdf + x * _INV_SQRT_2PI * xp.exp(-0.5 * x * x))


@gelu_backward.derivative
def _(ctx: Any, gg: Any) -> tuple:
    g, x = ctx.saved
    approximate = ctx.attrs["approximate"]
    d_grad = gelu_backward.call(gg, x, approximate) if ctx.needs(0) else None
    d_x = None
    if ctx.needs(1):
        if approximate == "tanh":  # gelu'' of 0.5 x (1 + tanh(u)), u = k (x + c x^3)
            t = ((x + x * x * x * _GELU_C) * _SQRT_2_OVER_PI).tanh()
            du = (x * x * (3 * _GELU_C) + 1) * _SQRT_2_OVER_PI
            ddu = x * (6 * _GELU_C * _SQRT_2_OVER_PI)
            second = (1 - t * t) * (du - x * t * du * du + x * ddu * 0.5)
        else:  # gelu'' = phi(x) (2 - x^2)
            second = (x * x * -0.5).exp() * _INV_SQRT_2PI * (2 - x * x)
        d_x = gg * g * second
    return d_grad, d_x


# -- silu, mish --------------------------------------------------------------------------------


def _silu_norm(input: arg.Tensor, inplace: arg.Bool = False) -> dict:  # noqa: A002
    _floating(input, "silu_cpu")
    return {"inplace": inplace}


@op(
    grad_fn="SiluBackward0",
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_silu_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 3, low=-4, high=4)),),
)
def silu(xp: Any, input: Any, inplace: bool = False) -> Any:  # noqa: A002
    """x * sigmoid(x)."""
    return input * sigmoid.forward(xp, input)  # the stable sigmoid, in input's dtype


@silu.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    s = x.sigmoid()
    return (g * s * (x * (1 - s) + 1),)


def _mish_norm(input: arg.Tensor, inplace: arg.Bool = False) -> dict:  # noqa: A002
    _floating(input, "mish_cpu")
    return {"inplace": inplace}


@op(
    grad_fn="MishBackward0",
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_mish_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 3, low=-4, high=4)),),
)
def mish(xp: Any, input: Any, inplace: bool = False) -> Any:  # noqa: A002
    """x * tanh(softplus(x))."""
    sp = stable_softplus(xp, input)
    return input * xp.tanh(sp)


@mish.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    t = softplus.call(x).tanh()
    return (g * (t + x * (1 - t * t) * x.sigmoid()),)


# -- the ELU family: elu, selu, celu -----------------------------------------------------------

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _elu(xp: Any, x: Any, alpha: float, scale: float, input_scale: float) -> Any:
    """PyTorch's elu kernel: scale * x where x > 0, else
    scale * alpha * (exp(x * input_scale) - 1)."""
    neg = (alpha * scale) * xp.expm1(xp.minimum(x, 0) * input_scale)
    return xp.where(x > 0, x * scale, neg).astype(x.dtype, copy=False)


def _elu_grad(
    g: Any, x: Any, alpha: float, scale: float, input_scale: float, exp_scale: float | None = None
) -> Any:
    """PyTorch's elu_backward: g * scale where x > 0, else g * alpha * scale * input_scale *
    exp(x * exp_scale) (``exp_scale``: input_scale unless given)."""
    from .shape_ops import where

    # exp of the clamped input: the branch where() drops never overflows (nor its gradient)
    e = (x.clamp(max=0) * (input_scale if exp_scale is None else exp_scale)).exp()
    return where.call(x.gt(0), g * scale, g * e * (alpha * scale * input_scale))


def _elu_norm(
    input: arg.Tensor,  # noqa: A002
    alpha: arg.Float = 1.0,
    inplace: arg.Bool = False,
) -> dict:
    _floating(input, "elu_cpu")
    return {"alpha": alpha, "inplace": inplace}


@op(
    grad_fn=_named("EluBackward0", "EluBackward1"),
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_elu_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 3, low=-3, high=3)), Ex(S(5, low=-3, high=3), alpha=0.5)),
)
def elu(xp: Any, input: Any, alpha: float = 1.0, inplace: bool = False) -> Any:  # noqa: A002
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return _elu(xp, input, alpha, 1.0, 1.0)


@elu.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (_elu_grad(g, x, ctx.attrs["alpha"], 1.0, 1.0),)


def _selu_norm(input: arg.Tensor, inplace: arg.Bool = False) -> dict:  # noqa: A002
    _floating(input, "elu_cpu")
    return {"inplace": inplace}


@op(
    grad_fn=_named("EluBackward0", "EluBackward1"),
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_selu_norm,
    method=False,
    examples=(Ex(S(2, 3, low=-3, high=3)),),
)
def selu(xp: Any, input: Any, inplace: bool = False) -> Any:  # noqa: A002
    """scale * elu(x, alpha) with the self-normalising constants (PyTorch records an elu)."""
    return _elu(xp, input, _SELU_ALPHA, _SELU_SCALE, 1.0)


@selu.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (_elu_grad(g, x, _SELU_ALPHA, _SELU_SCALE, 1.0),)


def _celu_norm(
    input: arg.Tensor,  # noqa: A002
    alpha: arg.Float = 1.0,
    inplace: arg.Bool = False,
) -> dict:
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    _floating(input, "elu_cpu")
    return {"alpha": alpha, "inplace": inplace}


@op(
    grad_fn=_named("CeluBackward0", "CeluBackward1"),
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_celu_norm,
    method=False,
    examples=(Ex(S(2, 3, low=-3, high=3)), Ex(S(5, low=-3, high=3), 0.7)),
)
def celu(xp: Any, input: Any, alpha: float = 1.0, inplace: bool = False) -> Any:  # noqa: A002
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    return _elu(xp, input, alpha, 1.0, 1.0 / alpha)


@celu.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    alpha = ctx.attrs["alpha"]
    # PyTorch's derivative formula takes 1 / alpha with alpha rounded to float32
    # (``1.0 / alpha.toFloat()``); its in-place form's exp comes from the result, computed
    # with the exact 1 / alpha.
    inv = 1.0 / float(np.float32(alpha))
    return (_elu_grad(g, x, alpha, 1.0, inv, 1.0 / alpha if ctx.attrs["inplace"] else inv),)


# -- piecewise linear: leaky_relu, hardtanh, relu6, hardsigmoid, hardswish, threshold ----------


def _leaky_relu_norm(
    input: arg.Tensor,  # noqa: A002
    negative_slope: arg.Float = 0.01,
    inplace: arg.Bool = False,
) -> dict:
    _floating(input, "leaky_relu_cpu")
    return {"negative_slope": negative_slope, "inplace": inplace}


@op(
    grad_fn=_named("LeakyReluBackward0", "LeakyReluBackward1"),
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_leaky_relu_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 3)), Ex(S(5), 0.2), Ex(S(4), negative_slope=-0.5)),
)
def leaky_relu(xp: Any, input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Any:  # noqa: A002
    """x where x > 0, else negative_slope * x."""
    return xp.where(input > 0, input, input * negative_slope).astype(input.dtype, copy=False)


@leaky_relu.derivative
def _(ctx: Any, g: Any) -> tuple:
    from .shape_ops import where

    (x,) = ctx.saved
    slope = ctx.attrs["negative_slope"]
    if ctx.attrs["inplace"] and slope < 0:  # PyTorch's in-place kernel cannot invert it
        raise RuntimeError(_LEAKY_INPLACE_NEGATIVE)
    return (where.call(x.gt(0), g, g * slope),)


_LEAKY_INPLACE_NEGATIVE = (
    "In-place leakyReLu backward calculation is triggered with a negative slope which is not "
    "supported. This is caused by calling in-place forward function with a negative slope, "
    "please call out-of-place version instead. File an issue at "
    "https://github.com/pytorch/pytorch if you do require supporting in-place leakRelu backward "
    "calculation with negative slope"
)


def _hardtanh_norm(
    input: arg.Tensor,  # noqa: A002
    min_val: arg.Float = -1.0,
    max_val: arg.Float = 1.0,
    inplace: arg.Bool = False,
) -> dict:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if input.dtype.name == "bool":
        raise NotImplementedError("\"hardtanh_cpu\" not implemented for 'Bool'")
    return {"min_val": min_val, "max_val": max_val, "inplace": inplace}


@op(
    grad_fn="HardtanhBackward0",
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_hardtanh_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 3, low=-2, high=2)), Ex(S(6, low=-2, high=2), -0.5, 1.5)),
)
def hardtanh(
    xp: Any,
    input: Any,  # noqa: A002
    min_val: float = -1.0,
    max_val: float = 1.0,
    inplace: bool = False,
) -> Any:
    """x clamped to [min_val, max_val]."""
    return xp.clip(input, min_val, max_val).astype(input.dtype, copy=False)


@hardtanh.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    a = ctx.attrs
    return (g * x.gt(a["min_val"]).logical_and(x.lt(a["max_val"])),)


@composite("relu6", examples=(Ex(S(2, 4, low=-2, high=8)),), function=False)
def relu6(input: arg.Tensor, inplace: arg.Bool = False) -> Any:  # noqa: A002
    """min(max(x, 0), 6): PyTorch's hardtanh(x, 0, 6) (HardtanhBackward0)."""
    return hardtanh.call(input, 0.0, 6.0, inplace)


_ONE_SIXTH_F32 = 0.1666666716337204  # float(numpy.float32(1 / 6))


def _hardsigmoid_norm(input: arg.Tensor, inplace: arg.Bool = False) -> dict:  # noqa: A002
    _floating(input, "hardsigmoid_cpu")
    return {"inplace": inplace}


@op(
    grad_fn="HardsigmoidBackward0",
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_hardsigmoid_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 4, low=-5, high=5)),),
)
def hardsigmoid(xp: Any, input: Any, inplace: bool = False) -> Any:  # noqa: A002
    """relu6(x + 3) / 6."""
    return (xp.clip(input + 3, 0, 6) / 6).astype(input.dtype, copy=False)


@hardsigmoid.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    # PyTorch's kernel multiplies by 1/6 as a float32 literal (1.0f / 6.0f), in every dtype.
    return (g * x.gt(-3).logical_and(x.lt(3)) * _ONE_SIXTH_F32,)


def _hardswish_norm(input: arg.Tensor, inplace: arg.Bool = False) -> dict:  # noqa: A002
    _floating(input, "hardswish_cpu")
    return {"inplace": inplace}


@op(
    grad_fn="HardswishBackward0",
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_hardswish_norm,
    method=False,
    function=False,
    examples=(Ex(S(2, 4, low=-5, high=5)),),
)
def hardswish(xp: Any, input: Any, inplace: bool = False) -> Any:  # noqa: A002
    """x * relu6(x + 3) / 6."""
    return (input * xp.clip(input + 3, 0, 6) / 6).astype(input.dtype, copy=False)


@hardswish.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    # PyTorch's hardswish_backward: 0 below -3, x / 3 + 1/2 up to 3, 1 above.
    mid = x.ge(-3).logical_and(x.le(3))
    return (g * (mid * (x / 3 + 0.5) + x.gt(3)),)


def _threshold_norm(
    input: arg.Tensor,  # noqa: A002
    threshold: arg.Number,
    value: arg.Number,
    inplace: arg.Bool = False,
) -> dict:
    if input.dtype.name == "bool":
        raise NotImplementedError("\"threshold_cpu\" not implemented for 'Bool'")
    return {"threshold": threshold, "value": value, "inplace": inplace}


@op(
    grad_fn=_named("ThresholdBackward0", "ThresholdBackward1"),
    dtype="same",
    shape=same,
    saves=(0,),
    normalize=_threshold_norm,
    method=False,
    examples=(Ex(S(2, 3), 0.1, 20.0), Ex(S(5), -0.2, value=-3.0)),
)
def threshold(
    xp: Any,
    input: Any,  # noqa: A002
    threshold: float,
    value: float,
    inplace: bool = False,
) -> Any:
    """x where x > threshold, else value."""
    return xp.where(input > threshold, input, value).astype(input.dtype, copy=False)


@threshold.derivative
def _(ctx: Any, g: Any) -> tuple:
    (x,) = ctx.saved
    return (g * x.gt(ctx.attrs["threshold"]),)
