"""Normalisation layers: ``layer_norm``, ``group_norm`` and ``batch_norm``.

Each public function has PyTorch's signature and checks its arguments in PyTorch's words, then
calls one internal op (``native_layer_norm``...) whose inputs are the tensors that get gradients
(input, weight, bias), as PyTorch's ``native_*`` ops and their ``Native*Backward0`` nodes. The
backward recomputes the statistics from the saved input in differentiable ops, so second
derivatives are right; batch norm in evaluation mode keeps the running statistics it used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import C, Ex, S
from ..op_table import _mixed_devices, composite, op

# -- the shared arithmetic -------------------------------------------------------------------


def _stats(xp: Any, x: Any, axes: tuple, eps: float) -> tuple[Any, Any, Any]:
    """Mean, biased variance and 1/sqrt(variance + eps) over ``axes`` (kept); float16 in float32,
    as PyTorch's kernels accumulate."""
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=axes, keepdims=True)
    return mean, var, 1.0 / xp.sqrt(var + eps)


def _normalised_grad(x: Any, gh: Any, dims: tuple, eps: float) -> tuple[Any, Any]:
    """d(loss)/dx of xhat = (x - mean) * rstd over ``dims`` for upstream ``gh`` (the gradient
    at xhat), and xhat itself; written in differentiable ops (for second derivatives)."""
    mean = x.mean(dims, keepdim=True)
    xc = x - mean
    rstd = ((xc * xc).mean(dims, keepdim=True) + eps).rsqrt()
    xhat = xc * rstd
    dx = rstd * (gh - gh.mean(dims, keepdim=True) - xhat * (gh * xhat).mean(dims, keepdim=True))
    return dx, xhat


def _sum_over(t: Any, dims: tuple) -> Any:
    return t.sum(dims) if dims else t


def _check_params(kernel: str, input: Any, *params: Any) -> None:  # noqa: A002
    """A floating-point input, and parameters of its dtype (PyTorch's CPU kernels' errors)."""
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{input.dtype.torch_name}'")
    for p in params:
        if p is not None and p.dtype is not input.dtype:
            if input.dtype.name == "float32":
                raise RuntimeError(
                    "mixed dtype (CPU): expect parameter to have scalar type of Float"
                )
            raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")


def _param_shape(name: str, p: Any, wanted: tuple) -> None:
    if p is not None and tuple(p.shape) != tuple(wanted):
        raise RuntimeError(
            f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
            f"{list(p.shape)} and normalized_shape = {list(wanted)}"
        )


def _affine_shape(a: tuple, w: Any = None, b: Any = None, **attrs: Any) -> tuple:
    return a


# -- layer_norm ------------------------------------------------------------------------------


@op(
    internal=True,
    grad_fn="NativeLayerNormBackward0",
    arity=3,
    dtype=lambda input, weight, bias, **k: input.dtype,
    saves=(0, 1),
    shape=_affine_shape,
    method=False,
    function=False,
    examples=(Ex(S(2, 3, 4), S(4), S(4), 1, 1e-5), Ex(S(3, 4), None, None, 2, 1e-5)),
)
def native_layer_norm(xp: Any, input: Any, weight: Any, bias: Any, n: int, eps: float) -> Any:  # noqa: A002
    """layer_norm over the last ``n`` dims of checked arguments."""
    axes = tuple(range(input.ndim - n, input.ndim))
    mean, _, rstd = _stats(xp, input, axes, eps)
    out = (input - mean) * rstd
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out.astype(input.dtype, copy=False)


@native_layer_norm.derivative
def _(ctx: Any, g: Any) -> tuple:
    x, w = ctx.saved
    n, eps = ctx.attrs["n"], ctx.attrs["eps"]
    dims = tuple(range(x.ndim - n, x.ndim))
    outer = tuple(range(x.ndim - n))
    dx, xhat = _normalised_grad(x, g if w is None else g * w, dims, eps)
    dw = _sum_over(g * xhat, outer) if ctx.needs(1) else None
    db = _sum_over(g, outer) if ctx.needs(2) else None
    return dx if ctx.needs(0) else None, dw, db


@composite(
    "layer_norm",
    examples=(
        Ex(S(2, 3, 4), (4,), S(4), S(4)),
        Ex(S(2, 3, 4), [3, 4], S(3, 4), None, 1e-3),
        Ex(S(3, 5), (5,)),
        Ex(S(4), (4,), None, S(4)),
    ),
)
def layer_norm(
    input: arg.Tensor,  # noqa: A002
    normalized_shape: arg.IntTuple,
    weight: arg.Tensor | None = None,
    bias: arg.Tensor | None = None,
    eps: arg.Float = 1e-5,
) -> Any:
    """Normalise over the trailing ``normalized_shape`` dims, then scale and shift."""
    wanted = tuple(normalized_shape)
    if not wanted:
        raise RuntimeError(
            "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least "
            "one element, but got normalized_shape = []"
        )
    _param_shape("weight", weight, wanted)
    _param_shape("bias", bias, wanted)
    n = len(wanted)
    if n > input.ndim or tuple(input.shape[input.ndim - n :]) != wanted:
        raise RuntimeError(
            f"Given normalized_shape={list(wanted)}, expected input with shape "
            f"[*, {', '.join(map(str, wanted))}], but got input of size{list(input.shape)}"
        )
    _check_params("LayerNormKernelImpl", input, weight, bias)
    return native_layer_norm.call(input, weight, bias, n, float(eps))


# -- group_norm ------------------------------------------------------------------------------


def _channel_view(p: Any, ndim: int) -> Any:
    """A per-channel parameter (C,) shaped to broadcast over (N, C, *)."""
    return p.reshape(-1, *([1] * (ndim - 2)))


@op(
    internal=True,
    grad_fn="NativeGroupNormBackward0",
    arity=3,
    dtype=lambda input, weight, bias, **k: input.dtype,
    saves=(0, 1),
    shape=_affine_shape,
    method=False,
    function=False,
    examples=(Ex(S(2, 4, 3), S(4), S(4), 2, 1e-5), Ex(S(3, 2), None, None, 1, 1e-5)),
)
def native_group_norm(xp: Any, input: Any, weight: Any, bias: Any, groups: int, eps: float) -> Any:  # noqa: A002
    """group_norm of checked arguments: statistics over each group of channels and positions."""
    n = input.shape[0]
    grouped = input.reshape(n, groups, -1)
    mean, _, rstd = _stats(xp, grouped, (2,), eps)
    out = ((grouped - mean) * rstd).reshape(input.shape)
    if weight is not None:
        out = out * _channel_view(weight, input.ndim)
    if bias is not None:
        out = out + _channel_view(bias, input.ndim)
    return out.astype(input.dtype, copy=False)


@native_group_norm.derivative
def _(ctx: Any, g: Any) -> tuple:
    x, w = ctx.saved
    groups, eps = ctx.attrs["groups"], ctx.attrs["eps"]
    shape = x.shape
    n = shape[0]
    gh = g if w is None else g * _channel_view(w, x.ndim)
    dx, xhat = _normalised_grad(x.reshape(n, groups, -1), gh.reshape(n, groups, -1), (2,), eps)
    others = (0, *range(2, x.ndim))
    dw = (g * xhat.reshape(*shape)).sum(others) if ctx.needs(1) else None
    db = g.sum(others) if ctx.needs(2) else None
    return dx.reshape(*shape) if ctx.needs(0) else None, dw, db


def _check_channel_param(name: str, p: Any, input: Any) -> None:  # noqa: A002
    c = input.shape[1]
    if p is not None and (p.ndim != 1 or p.shape[0] != c):
        raise RuntimeError(
            f"Expected {name} to be a vector of size equal to the number of channels in input, "
            f"but got {name} of shape {list(p.shape)} and input of shape {list(input.shape)}"
        )


@composite(
    "group_norm",
    examples=(
        Ex(S(2, 4, 3), 2, S(4), S(4)),
        Ex(S(2, 6, 2, 2), 3, S(6), S(6), 1e-3),
        Ex(S(3, 4), 4),
        Ex(S(2, 4, 3), 1, S(4)),
    ),
)
def group_norm(
    input: arg.Tensor,  # noqa: A002
    num_groups: arg.Int,
    weight: arg.Tensor | None = None,
    bias: arg.Tensor | None = None,
    eps: arg.Float = 1e-5,
) -> Any:
    """Normalise each sample's channels in ``num_groups`` groups, then scale and shift."""
    if input.ndim < 2:
        raise RuntimeError(
            f"Expected at least 2 dimensions for input tensor but received {input.ndim}"
        )
    c = input.shape[1]
    if num_groups == 0:
        raise ZeroDivisionError("integer division or modulo by zero")
    if num_groups < 0:
        raise RuntimeError(f"Expected num groups to be greater than 0, got {num_groups}")
    if c % num_groups:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got input "
            f"of shape {list(input.shape)} and num_groups={num_groups}"
        )
    _check_channel_param("weight", weight, input)
    _check_channel_param("bias", bias, input)
    _check_params("GroupNormKernelImpl", input, weight, bias)
    return native_group_norm.call(input, weight, bias, int(num_groups), float(eps))


# -- batch_norm ------------------------------------------------------------------------------


def _batch_axes(ndim: int) -> tuple:
    return (0, *range(2, ndim))


@op(
    internal=True,
    grad_fn="NativeBatchNormBackward0",
    arity=3,
    dtype=lambda input, weight, bias, **k: input.dtype,
    saves=(0, 1),
    shape=lambda a, w=None, b=None, **attrs: a,
    method=False,
    function=False,
    extras=True,
    examples=(
        Ex(S(4, 3), S(3), S(3), C([0.0, 0.5, -1.0]), C([1.0, 2.0, 0.5]), True, 0.1, 1e-5),
        Ex(S(2, 3, 4), S(3), S(3), C([0.0, 0.5, -1.0]), C([1.0, 2.0, 0.5]), False, 0.1, 1e-5),
        Ex(S(2, 2, 2, 3), None, None, None, None, True, 0.1, 1e-5),
    ),
)
def native_batch_norm(
    xp: Any,
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any,
    running_mean: Any,
    running_var: Any,
    training: bool,
    momentum: float,
    eps: float,
) -> Any:
    """batch_norm of checked arguments; in training, updates the running statistics in place."""
    axes = _batch_axes(input.ndim)
    view = (-1, *([1] * (input.ndim - 2)))
    if training:
        mean, var, rstd = _stats(xp, input, axes, eps)
        if running_mean is not None:
            # PyTorch's update: the batch mean, and the unbiased batch variance.
            n = input.size // max(input.shape[1], 1)
            rm, rv = running_mean._data, running_var._data
            rm *= 1.0 - momentum
            rm += (momentum * mean.reshape(-1)).astype(rm.dtype, copy=False)
            rv *= 1.0 - momentum
            rv += (momentum * n / max(n - 1, 1) * var.reshape(-1)).astype(rv.dtype, copy=False)
        kept: dict = {"mean": None, "rstd": None}
    else:
        mean = running_mean._data.astype(input.dtype).reshape(view)
        rstd = (1.0 / xp.sqrt(running_var._data.astype(input.dtype) + eps)).reshape(view)
        kept = {"mean": mean, "rstd": rstd}
    out = (input - mean) * rstd
    if weight is not None:
        out = out * weight.reshape(view)
    if bias is not None:
        out = out + bias.reshape(view)
    return out.astype(input.dtype, copy=False), kept


@native_batch_norm.derivative
def _(ctx: Any, g: Any) -> tuple:
    from ..tensor import wrap

    x, w = ctx.saved
    a = ctx.attrs
    axes = _batch_axes(x.ndim)
    wv = None if w is None else _channel_view(w, x.ndim)
    gh = g if wv is None else g * wv
    if a["training"]:
        dx, xhat = _normalised_grad(x, gh, axes, a["eps"])
    else:  # the statistics are constants: an affine map of x
        mean, rstd = wrap(a["mean"], g._dev), wrap(a["rstd"], g._dev)
        dx, xhat = gh * rstd, (x - mean) * rstd
    dw = (g * xhat).sum(axes) if ctx.needs(1) else None
    db = g.sum(axes) if ctx.needs(2) else None
    return dx if ctx.needs(0) else None, dw, db


def _check_stat(name: str, t: Any, c: int) -> None:
    if t is not None and t.numel() != c:
        raise RuntimeError(f"{name} should contain {c} elements not {t.numel()}")


@composite(
    "batch_norm",
    examples=(
        Ex(S(4, 3), C([0.0, 0.5, -1.0]), C([1.0, 2.0, 0.5]), S(3), S(3), True),
        Ex(S(2, 3, 4), C([0.0, 0.5, -1.0]), C([1.0, 2.0, 0.5]), S(3), S(3)),
        Ex(S(2, 2, 2, 3), None, None, training=True, momentum=0.3, eps=1e-3),
        Ex(S(3, 2, 2, 2), C([0.1, -0.2]), C([0.5, 1.5]), None, S(2), training=True),
    ),
)
def batch_norm(
    input: arg.Tensor,  # noqa: A002
    running_mean: arg.Tensor | None,
    running_var: arg.Tensor | None,
    weight: arg.Tensor | None = None,
    bias: arg.Tensor | None = None,
    training: arg.Bool = False,
    momentum: arg.Float = 0.1,
    eps: arg.Float = 1e-5,
) -> Any:
    """Normalise each channel by its batch statistics (training; running ones updated) or
    running ones.

    Training normalises by the batch's mean and biased variance and, given running statistics,
    updates them in place (the unbiased variance, by ``momentum``); evaluation reads them."""
    if training:
        n = 1
        for i, s in enumerate(input.shape):
            if i != 1:
                n *= s
        if n == 1:
            raise ValueError(
                "Expected more than 1 value per channel when training, got input size "
                f"torch.Size({list(input.shape)})"
            )
    else:
        for name, t in (("running_mean", running_mean), ("running_var", running_var)):
            if t is None:
                raise RuntimeError(f"{name} must be defined in evaluation mode")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    c = input.shape[1] if input.ndim > 1 else 0
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        _check_stat(name, t, c)
    _check_params("batch_norm", input, weight, bias, running_mean, running_var)
    for t in (running_mean, running_var):  # written in place by the forward: same device
        if t is not None and t.device != input.device:
            raise _mixed_devices(input.device, t.device)
    shapes.wrap_dim(1, input.ndim)  # a 1-D input has no channel dim
    return native_batch_norm.call(
        input, weight, bias, running_mean, running_var, bool(training), float(momentum), float(eps)
    )
