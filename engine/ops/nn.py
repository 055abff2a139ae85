"""Neural-network functions: softmax family, losses, linear, dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import C, Ex, S
from ..op_table import composite, op
from ..random_state import DRAWING_OPS


def _softmax_norm(self: arg.Tensor, dim: arg.Int) -> dict:
    return {"dim": shapes.wrap_dim(dim, self.ndim)}


@op(
    grad_fn="SoftmaxBackward0",
    dtype="float",
    shape=lambda a, dim: a,
    saves_output=True,
    normalize=_softmax_norm,
    examples=(Ex(S(2, 3), 1), Ex(S(4), 0), Ex(S(2, 3), -2), Ex(S(), 0)),
)
def softmax(xp: Any, self: Any, dim: int) -> Any:
    """exp(x) / sum(exp(x)) along ``dim``, computed stably."""
    ax = shapes.axis(dim, self.ndim)
    e = xp.exp(self - self.max(axis=ax, keepdims=True))
    return e / e.sum(axis=ax, keepdims=True)


@softmax.derivative
def _(ctx: Any, g: Any) -> tuple:
    out = ctx.output
    return (out * (g - (g * out).sum(ctx.attrs["dim"], keepdim=True)),)


@op(
    grad_fn="LogSoftmaxBackward0",
    dtype="float",
    shape=lambda a, dim: a,
    saves_output=True,
    normalize=_softmax_norm,
    examples=(Ex(S(2, 3), 1), Ex(S(4), 0), Ex(S(), -1)),
)
def log_softmax(xp: Any, self: Any, dim: int) -> Any:
    """log(softmax(x)) by a fused log-sum-exp: finite even for logits of 1e8."""
    ax = shapes.axis(dim, self.ndim)
    shifted = self - self.max(axis=ax, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=ax, keepdims=True))


@log_softmax.derivative
def _(ctx: Any, g: Any) -> tuple:
    out = ctx.output
    return (g - out.exp() * g.sum(ctx.attrs["dim"], keepdim=True),)


_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _loss_shape(a: Any, b: Any, reduction: str = "mean") -> tuple:
    s = shapes.broadcast(a, b)
    return s if reduction == "none" else ()


def warn_if_sizes_differ(input: Any, target: Any, stacklevel: int = 5) -> None:  # noqa: A002
    """PyTorch's warning for a regression loss whose target would broadcast against input."""
    if input.shape != target.shape:
        import warnings

        warnings.warn(
            f"Using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            UserWarning,
            stacklevel=stacklevel,
        )


def _mse_norm(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    reduction: arg.Str = "mean",
) -> dict:
    _check_reduction(reduction)
    warn_if_sizes_differ(input, target)
    return {"reduction": reduction}


@op(
    layout="pointwise",
    grad_fn="MseLossBackward0",
    arity=2,
    shape=_loss_shape,
    saves=(0, 1),
    normalize=_mse_norm,
    method=False,
    examples=(
        Ex(S(3, 2), S(3, 2)),
        Ex(S(4), S(4), reduction="sum"),
        Ex(S(2, 2), S(2, 2), reduction="none"),
    ),
)
def mse_loss(xp: Any, input: Any, target: Any, reduction: str = "mean") -> Any:  # noqa: A002
    """Mean squared error (reduction: "mean", "sum" or "none")."""
    d = (input - target) ** 2
    return d if reduction == "none" else (d.mean() if reduction == "mean" else d.sum())


@mse_loss.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    diff = a - b
    n = diff.numel() if ctx.attrs["reduction"] == "mean" else 1
    gd = g * diff * (2.0 / n)
    return gd if ctx.needs(0) else None, -gd if ctx.needs(1) else None


def _nll_norm(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    weight: arg.Tensor | None = None,
    ignore_index: arg.Int = -100,
    reduction: arg.Str = "mean",
) -> dict:
    _check_reduction(reduction)
    if input.ndim == 0:
        raise ValueError("Expected 1 or more dimensions (got 0)")
    if target.dtype.name != "int64":
        raise RuntimeError(f"expected scalar type Long but found {target.dtype.name.capitalize()}")
    n = input.shape[0] if input.ndim >= 2 else 1
    tn = target.shape[0] if target.ndim else 1
    if input.ndim >= 2 and tn != n:
        raise ValueError(f"Expected input batch_size ({n}) to match target batch_size ({tn}).")
    if input.ndim not in (1, 2, 4):  # the public caller views other dims as 4
        raise ValueError(f"Expected 1, 2 or 4 dimensions for input (got {input.ndim})")
    if input.ndim == 4 and tuple(target.shape) != input.shape[:1] + input.shape[2:]:
        raise RuntimeError(
            f"size mismatch (got input: {list(input.shape)} , target: {list(target.shape)}"
        )
    check_class_weight(input, weight, input.shape[1] if input.ndim >= 2 else input.shape[0])
    return {
        "weight": weight,
        "ignore_index": int(ignore_index),
        "reduction": reduction,
    }


def check_class_weight(input: Any, weight: Any, c: int, where: str = "") -> None:  # noqa: A002
    """A class weight: one value for each of ``c`` classes, of the input's dtype (PyTorch's
    messages)."""
    if weight is None:
        return
    if weight.ndim != 1 or weight.shape[0] != c:
        raise RuntimeError(
            f"{where}weight tensor should be defined either for all {c} classes or no classes "
            f"but got weight tensor of shape: {list(weight.shape)}"
        )
    if weight.dtype is not input.dtype:
        raise RuntimeError(
            f"expected scalar type {input.dtype.torch_name} but found {weight.dtype.torch_name}"
        )


def _nll_picks(
    xp: Any, input: Any, target: Any, weight: Any, ignore_index: int, reduction: str
) -> tuple[Any, Any]:
    """Each row's target class and its coefficient in the loss (-weight, over the total weight
    for "mean"): the loss is sum(coef * input[row, class]), its gradient coef at those places."""
    t = target.reshape(-1)
    keep = t != ignore_index
    safe = xp.where(keep, t, 0)
    c = input.shape[1] if input.ndim == 4 else input.shape[-1]
    bad = (safe < 0) | (safe >= c)
    if xp is np:
        if bad.any():
            raise IndexError(f"Target {int(safe[bad][0])} is out of bounds.")
    else:
        # Checking on a GPU would wait for it every step; as PyTorch's CUDA kernel (which
        # asserts asynchronously), a bad target spoils the result instead: its row is NaN.
        safe = xp.where(bad, 0, safe)
    wt = keep.astype(input.dtype) if weight is None else weight._data[safe] * keep
    if xp is not np:
        wt = xp.where(bad, xp.nan, wt).astype(input.dtype, copy=False)
    return safe, (-wt / wt.sum() if reduction == "mean" else -wt)


def _nll_name(a: Any, t: Any, **attrs: Any) -> str:
    return "NllLoss2DBackward0" if len(a[0]) == 4 else "NllLossBackward0"


_nll_name.common = "NllLossBackward0"  # type: ignore[attr-defined]


def _nll_rows(xp: Any, input: Any) -> Any:
    """One row of class scores per target: (N, C, H, W) has its class dim moved last."""
    if input.ndim == 4:
        return xp.moveaxis(input, 1, -1).reshape(-1, input.shape[1])
    return input.reshape(-1, input.shape[-1])


@op(
    grad_fn=_nll_name,
    dtype=lambda input, target, **k: input.dtype,
    arity=2,
    saves=(1,),
    normalize=_nll_norm,
    method=False,
    extras=True,
    shape=lambda a, t, weight=None, ignore_index=-100, reduction="mean": (
        t if reduction == "none" else ()
    ),
    examples=(
        Ex(S(3, 4), C([0, 3, 1])),
        Ex(S(2, 3), C([2, -100]), reduction="sum"),
        Ex(S(4), C(2)),
        Ex(S(2, 3), C([1, 0]), reduction="none"),
        Ex(S(2, 3, 2, 2), C([[[0, 2], [1, 1]], [[2, -100], [0, 0]]])),
        Ex(S(1, 3, 2, 1), C([[[2], [0]]]), reduction="none"),
    ),
)
def nll_loss(
    xp: Any,
    input: Any,
    target: Any,
    weight: Any = None,  # noqa: A002
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Any:
    """Negative log-likelihood of ``target`` classes under log-probabilities ``input``."""
    picks, coef = _nll_picks(xp, input, target, weight, ignore_index, reduction)
    picked = coef * _nll_rows(xp, input)[xp.arange(picks.shape[0]), picks]
    # Kept for the backward (two values a row), so it never re-reads the targets.
    kept = {"picks": picks, "coef": coef}
    if reduction == "none":
        return picked.reshape(target.shape), kept
    return picked.sum(), kept


@nll_loss.derivative
def _(ctx: Any, g: Any) -> tuple:
    from ..tensor import wrap

    shape, dtype = ctx.meta[0]
    a = ctx.attrs
    picks = a["picks"]
    xp = g._dev.xp
    spatial = len(shape) == 4
    c = shape[1] if spatial else shape[-1]
    with g._dev.scope():  # d(loss)/d(input): coef at each row's target, zero elsewhere
        w = xp.zeros((picks.shape[0], c), dtype=dtype)
        w[xp.arange(picks.shape[0]), picks] = a["coef"]
        if spatial:  # rows back to (N, C, H, W)
            w = xp.moveaxis(w.reshape(shape[0], shape[2], shape[3], c), -1, 1)
    w = wrap(w, g._dev)
    if a["reduction"] == "none":
        if spatial:
            return (w * g.unsqueeze(1), None)
        return ((w * g.reshape(-1, 1)).reshape(*shape), None)
    return (g * w.reshape(*shape), None)


_record_nll_loss = nll_loss.call


def _nll_loss_call(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    weight: arg.Tensor | None = None,
    ignore_index: arg.Int = -100,
    reduction: arg.Str = "mean",
) -> Any:
    """PyTorch's nll_loss_nd: (N, C, d1, ...) other than 4-D is viewed as (N, C, 1, -1)."""
    if input.ndim == 3 or input.ndim > 4:
        n, c = input.shape[:2]
        if target.ndim and target.shape[0] != n:
            raise ValueError(
                f"Expected input batch_size ({n}) to match target batch_size ({target.shape[0]})."
            )
        size = (n, *input.shape[2:])
        if tuple(target.shape) != size:
            raise RuntimeError(f"Expected target size {list(size)}, got {list(target.shape)}")
        out = _record_nll_loss(
            input.reshape(n, c, 1, -1), target.reshape(n, 1, -1), weight, ignore_index, reduction
        )
        return out.view(*size) if reduction == "none" else out
    return _record_nll_loss(input, target, weight, ignore_index, reduction)


nll_loss.call = _nll_loss_call


@composite(
    "linear",
    examples=(
        Ex(S(4, 3), S(2, 3), S(2)),
        Ex(S(4, 3), S(2, 3)),
        Ex(S(3), S(2, 3), S(2)),
        Ex(S(2, 4, 3), S(2, 3), S(2)),
    ),
)
def linear(
    input: arg.Tensor,  # noqa: A002
    weight: arg.Tensor,
    bias: arg.Tensor | None = None,
) -> Any:
    """input @ weight.T + bias, recorded as PyTorch does (AddmmBackward0 / MmBackward0)."""
    if input.ndim == 2:
        if bias is not None:
            from .arithmetic import addmm

            return addmm.call(bias, input, weight.t())
        return input.mm(weight.t())
    data = getattr(input, "_data", None)  # remote (SDK) tensors: assume contiguous
    if bias is not None and bias.ndim == 1 and (data is None or data.flags.c_contiguous):
        # torch's _flatten_nd_linear: one addmm over the flattened rows, viewed back.
        from .arithmetic import addmm

        flat = addmm.call(bias, input.reshape(-1, input.shape[-1]), weight.t())
        return flat.view(*input.shape[:-1], flat.shape[-1])
    out = input.matmul(weight.t())
    return out if bias is None else out + bias


def _dropout_norm(input: Any, p: float = 0.5, training: bool = True) -> dict:  # noqa: A002
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return {"p": float(p), "training": bool(training)}


@op(
    layout="pointwise",
    grad_fn="MulBackward0",
    shape=lambda a, p=0.5, training=True: a,
    normalize=_dropout_norm,
    method=False,
    extras=True,
    examples=(Ex(S(4, 3), 0.0), Ex(S(4, 3), 0.5), Ex(S(3), 0.5, False)),
)
def dropout(xp: Any, input: Any, p: float = 0.5, training: bool = True) -> Any:  # noqa: A002
    """Zero elements with probability p, scale the rest by 1/(1-p) (session-seeded mask).

    PyTorch records it as a multiply by the mask, hence MulBackward0.
    """
    if not training or p == 0.0:
        return input.copy(), {"mask": None}
    from ..random_state import current_generator

    gen = current_generator()
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    if xp is np:  # PyTorch's CPU mask, bit for bit
        mask = gen.bernoulli(input.shape, 1.0 - p).astype(input.dtype) * scale
    else:  # drawn on the GPU: no mask crosses from the host
        keep = gen.device_stream(xp).random_sample(input.shape, dtype=input.dtype) < 1.0 - p
        mask = keep.astype(input.dtype) * scale
    return input * mask, {"mask": mask}


DRAWING_OPS.add(dropout.name)


@dropout.derivative
def _(ctx: Any, g: Any) -> tuple:
    from ..tensor import wrap

    mask = ctx.attrs["mask"]
    return (g if mask is None else g * wrap(mask, g._dev),)


_record_dropout = dropout.call


def _dropout_call(
    input: arg.Tensor,  # noqa: A002
    p: arg.Float = 0.5,
    training: arg.Bool = True,
) -> Any:
    _dropout_norm(input, p, training)
    if not training or p == 0.0:
        return input  # as torch: nothing to drop, the input itself (no MulBackward0)
    return _record_dropout(input, p, training)


dropout.call = _dropout_call
