"""Loss functions and other ``torch.nn.functional`` ops beyond ``nn.py``'s.

Reductions are declared as ``nn.py``'s ``mse_loss`` declares them (``_check_reduction``,
``_loss_shape``): a loss op computes its elementwise loss, then reduces it by ``reduction``;
its derivative scales the upstream gradient by ``1 / numel`` for "mean".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import shapes
from ..op_examples import C, Ex, S
from ..op_table import composite, op
from .nn import _check_reduction, _loss_shape, warn_if_sizes_differ
from .nn_activations import logsigmoid, stable_log_sigmoid
from .pointwise import clamp_min
from .reduction import linalg_vector_norm


def _reduced(loss: Any, reduction: str) -> Any:
    """The forward's reduction of an elementwise loss array."""
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def _per_element(g: Any, x: Any, reduction: str) -> Any:
    """The upstream gradient of a reduced loss as a factor for each element's loss."""
    return g * (1.0 / x.numel()) if reduction == "mean" else g


def _torch_size(shape: tuple) -> str:
    return f"torch.Size({list(shape)})"


def _check_weight(weight: Any, target: Any) -> None:
    """A loss's ``weight`` must broadcast to the target's size (PyTorch's error when not)."""
    if weight is None:
        return
    w, t = tuple(weight.shape), tuple(target.shape)
    for i in range(1, len(w) + 1):
        n = w[-i]
        if n != 1 and (i > len(t) or n != t[-i]):
            raise RuntimeError(
                f"Attempting to broadcast a dimension of length {n} at {-i}! Mismatching "
                f"argument at index 1 had {_torch_size(w)}; but expected shape should be "
                f"broadcastable to {list(t)}"
            )


# -- binary cross entropy ----------------------------------------------------------------------


def _bce_norm(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    weight: arg.Tensor | None = None,
    reduction: arg.Str = "mean",
) -> dict:
    _check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"Using a target size ({_torch_size(target.shape)}) that is different to the input "
            f"size ({_torch_size(input.shape)}) is deprecated. Please ensure they have the same "
            "size."
        )
    if input.dtype is not target.dtype:
        raise RuntimeError(
            f"Found dtype {target.dtype.torch_name} but expected {input.dtype.torch_name}"
        )
    _check_weight(weight, target)
    return {"weight": weight, "reduction": reduction}


@op(
    layout="pointwise",
    grad_fn="BinaryCrossEntropyBackward0",
    arity=2,
    shape=lambda a, b, weight=None, reduction="mean": _loss_shape(a, b, reduction),
    saves=(0, 1),
    normalize=_bce_norm,
    method=False,
    function=False,
    examples=(
        Ex(S(3, 2, low=0.05, high=0.95), S(3, 2, low=0, high=1, grad=False)),
        Ex(S(4, low=0.05, high=0.95), S(4, low=0, high=1), reduction="sum"),
        Ex(
            S(2, 3, low=0.05, high=0.95),
            C([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]]),
            C([1.0, 2.0, 0.5]),
        ),
        Ex(S(2, 2, low=0.05, high=0.95), S(2, 2, low=0, high=1), reduction="none"),
    ),
)
def binary_cross_entropy(
    xp: Any,
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
) -> Any:
    """-w (t log(x) + (1 - t) log(1 - x)), each log clamped at -100 (as PyTorch)."""
    if xp is np:  # PyTorch's CPU checks; on a GPU they would wait for it (as its CUDA kernel,
        # which asserts asynchronously, a bad value spoils the result instead)
        if ((input < 0) | (input > 1)).any():
            raise RuntimeError("all elements of input should be between 0 and 1")
        if ((target < 0) | (target > 1)).any():
            raise RuntimeError("all elements of target should be between 0 and 1")
    log_x = xp.maximum(xp.log(input), -100)
    log_1mx = xp.maximum(xp.log1p(-input), -100)
    loss = (target - 1) * log_1mx - target * log_x
    if weight is not None:
        loss = loss * weight._data
    return _reduced(loss.astype(input.dtype, copy=False), reduction)


_EPSILON_F32 = 9.999999960041972e-13  # float(numpy.float32(1e-12))


@binary_cross_entropy.derivative
def _(ctx: Any, g: Any) -> tuple:
    x, t = ctx.saved
    a = ctx.attrs
    w = a["weight"]
    g = _per_element(g, x, a["reduction"])
    if w is not None:
        g = g * w
    # PyTorch's kernel bounds the denominator by EPSILON = 1e-12 held as a float32
    dx = g * (x - t) / ((1 - x) * x).clamp(min=_EPSILON_F32) if ctx.needs(0) else None
    dt = g * ((1 - x).log() - x.log()) if ctx.needs(1) else None
    return dx, dt


def _bce_logits_norm(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    weight: arg.Tensor | None = None,
    reduction: arg.Str = "mean",
    pos_weight: arg.Tensor | None = None,
) -> dict:
    _check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"Target size ({_torch_size(target.shape)}) must be the same as input size "
            f"({_torch_size(input.shape)})"
        )
    _check_weight(weight, target)
    _check_weight(pos_weight, target)
    return {"weight": weight, "reduction": reduction, "pos_weight": pos_weight}


@op(
    layout="pointwise",
    grad_fn="BinaryCrossEntropyWithLogitsBackward0",
    arity=2,
    shape=lambda a, b, weight=None, reduction="mean", pos_weight=None: _loss_shape(a, b, reduction),
    saves=(0, 1),
    normalize=_bce_logits_norm,
    method=False,
    examples=(
        Ex(S(3, 2, low=-3, high=3), S(3, 2, low=0, high=1, grad=False)),
        Ex(S(4, low=-3, high=3), S(4, low=0, high=1), reduction="sum"),
        Ex(
            S(2, 3, low=-3, high=3),
            S(2, 3, low=0, high=1),
            C([1.0, 2.0, 0.5]),
            pos_weight=C([3.0, 0.5, 1.0]),
        ),
        Ex(S(2, 2, low=-3, high=3), S(2, 2, low=0, high=1), reduction="none", pos_weight=C(2.0)),
    ),
)
def binary_cross_entropy_with_logits(
    xp: Any,
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Any:
    """binary_cross_entropy(sigmoid(x), t) from the logits x, stably (log-sigmoid, no clamp)."""
    log_sig = stable_log_sigmoid(xp, input)
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight._data - 1) * target + 1)
    loss = (1 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight._data
    return _reduced(loss.astype(xp.result_type(input, target), copy=False), reduction)


@binary_cross_entropy_with_logits.derivative
def _(ctx: Any, g: Any) -> tuple:
    x, t = ctx.saved
    a = ctx.attrs
    w, pw = a["weight"], a["pos_weight"]
    g = _per_element(g, x, a["reduction"])
    if w is not None:
        g = g * w
    dx = dt = None
    if ctx.needs(0):
        if pw is None:
            dx = g * (x.sigmoid() - t)
        else:
            pt = pw * t
            dx = g * ((pt + 1 - t) * x.sigmoid() - pt)
    if ctx.needs(1):
        if pw is None:
            dt = g * -x
        else:
            dt = g * (logsigmoid.call(-x) - logsigmoid.call(x) * pw)
    return dx, dt


# -- l1, smooth l1, huber ----------------------------------------------------------------------


def _weighted(loss: Any, weight: Any, input: Any, reduction: str, mean_by_weight: bool) -> Any:  # noqa: A002
    """PyTorch's Python-side weighting of an elementwise loss (l1_loss, huber_loss)."""
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    weighted = loss * weight
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    return weighted.sum() / weight.sum() if mean_by_weight else weighted.mean()


@composite(
    "l1_loss",
    examples=(
        Ex(S(3, 2), S(3, 2)),
        Ex(S(4), S(4, grad=False), reduction="sum"),
        Ex(S(2, 2), S(2, 2), reduction="none"),
        Ex(S(2, 3), S(2, 3), weight=C([[1.0, 2.0, 0.5], [0.0, 1.0, 3.0]])),
    ),
    function=False,
)
def l1_loss(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    reduction: arg.Str = "mean",
    weight: arg.Tensor | None = None,
) -> Any:
    """Mean (or sum) absolute error: |input - target|, as PyTorch records it (AbsBackward0)."""
    warn_if_sizes_differ(input, target, stacklevel=4)
    if weight is not None:
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(
                f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'."
            )
        return _weighted((input - target).abs(), weight, input, reduction, mean_by_weight=True)
    _check_reduction(reduction)
    loss = (input - target).abs()
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def _smooth_l1_norm(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    reduction: arg.Str = "mean",
    beta: arg.Float = 1.0,
) -> dict:
    _check_reduction(reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    return {"reduction": reduction, "beta": beta}


@op(
    layout="pointwise",
    grad_fn="SmoothL1LossBackward0",
    arity=2,
    shape=lambda a, b, reduction="mean", beta=1.0: _loss_shape(a, b, reduction),
    saves=(0, 1),
    normalize=_smooth_l1_norm,
    method=False,
    function=False,
    examples=(
        Ex(S(3, 2, low=-2, high=2), S(3, 2)),
        Ex(S(4, low=-2, high=2), S(4), reduction="sum", beta=0.5),
        Ex(S(2, 3, low=-2, high=2), S(2, 3, grad=False), reduction="none", beta=2.0),
    ),
)
def smooth_l1_loss(
    xp: Any,
    input: Any,  # noqa: A002
    target: Any,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Any:
    """0.5 z^2 / beta where z = |input - target| < beta, else z - 0.5 beta."""
    z = xp.abs(input - target)
    loss = xp.where(z < beta, 0.5 * z * z / (beta if beta else 1.0), z - 0.5 * beta)
    return _reduced(loss.astype(z.dtype, copy=False), reduction)


@smooth_l1_loss.derivative
def _(ctx: Any, g: Any) -> tuple:
    x, t = ctx.saved
    beta = ctx.attrs["beta"]
    g = _per_element(g, x, ctx.attrs["reduction"])
    d = x - t
    # PyTorch's smooth_l1_loss_backward: sign(d) outside (-beta, beta), d / beta inside.
    dd = d.clamp(-beta, beta) / beta
    grad = g * dd
    return grad if ctx.needs(0) else None, -grad if ctx.needs(1) else None


_record_smooth_l1 = smooth_l1_loss.call


def _smooth_l1_call(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    reduction: arg.Str = "mean",
    beta: arg.Float = 1.0,
) -> Any:
    warn_if_sizes_differ(input, target, stacklevel=4)
    if beta == 0.0:  # as PyTorch: the l1 loss (MeanBackward0 of AbsBackward0)
        _smooth_l1_norm(input, target, reduction, beta)
        return l1_loss.call(input, target, reduction)
    return _record_smooth_l1(input, target, reduction, beta)


smooth_l1_loss.call = _smooth_l1_call


def _huber_norm(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    reduction: arg.Str = "mean",
    delta: arg.Float = 1.0,
) -> dict:
    _check_reduction(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    return {"reduction": reduction, "delta": delta}


@op(
    layout="pointwise",
    grad_fn="HuberLossBackward0",
    arity=2,
    shape=lambda a, b, reduction="mean", delta=1.0: _loss_shape(a, b, reduction),
    saves=(0, 1),
    normalize=_huber_norm,
    method=False,
    function=False,
    examples=(
        Ex(S(3, 2, low=-2, high=2), S(3, 2)),
        Ex(S(4, low=-2, high=2), S(4), reduction="sum", delta=0.5),
        Ex(S(2, 3, low=-2, high=2), S(2, 3, grad=False), reduction="none", delta=2.0),
    ),
)
def huber_loss(
    xp: Any,
    input: Any,  # noqa: A002
    target: Any,
    reduction: str = "mean",
    delta: float = 1.0,
) -> Any:
    """0.5 z^2 where z = |input - target| < delta, else delta (z - 0.5 delta)."""
    z = xp.abs(input - target)
    loss = xp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))
    return _reduced(loss.astype(z.dtype, copy=False), reduction)


@huber_loss.derivative
def _(ctx: Any, g: Any) -> tuple:
    x, t = ctx.saved
    delta = ctx.attrs["delta"]
    g = _per_element(g, x, ctx.attrs["reduction"])
    grad = g * (x - t).clamp(-delta, delta)  # PyTorch's huber_loss_backward
    return grad if ctx.needs(0) else None, -grad if ctx.needs(1) else None


_record_huber = huber_loss.call


def _huber_call(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    reduction: arg.Str = "mean",
    delta: arg.Float = 1.0,
    weight: arg.Tensor | None = None,
) -> Any:
    warn_if_sizes_differ(input, target, stacklevel=4)
    if weight is None:
        return _record_huber(input, target, reduction, delta)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'."
        )
    loss = _record_huber(input, target, "none", delta)
    return _weighted(loss, weight, input, reduction, mean_by_weight=False)


huber_loss.call = _huber_call


# -- one_hot -----------------------------------------------------------------------------------


def _one_hot_norm(input: arg.Tensor, num_classes: arg.Int = -1) -> dict:  # noqa: A002
    if input.dtype.name != "int64":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        if input.numel() == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        # The result's size depends on the values: one wait for them, as in PyTorch.
        num_classes = int(input.max().item()) + 1
    elif num_classes < -1:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return {"num_classes": int(num_classes)}


@op(
    grad_fn=None,
    dtype=lambda a, num_classes=-1: a.dtype,
    shape=lambda a, num_classes=-1: (*a, num_classes),
    normalize=_one_hot_norm,
    method=False,
    function=False,
    examples=(
        Ex(C([0, 2, 1])),
        Ex(C([[1, 0], [3, 3]]), 5),
        Ex(C(2), num_classes=3),
    ),
)
def one_hot(xp: Any, input: Any, num_classes: int = -1) -> Any:  # noqa: A002
    """int64 rows with a one at each value's index (num_classes=-1: max value + 1)."""
    if xp is np and input.size:  # PyTorch's CPU checks (a GPU would have to wait for them)
        if (input < 0).any():
            raise RuntimeError("Class values must be non-negative.")
        if (input >= num_classes).any():
            raise RuntimeError("Class values must be smaller than num_classes.")
    try:  # zeros, then a one per row: the result's pages are touched only where a one goes
        out = xp.zeros((*input.shape, num_classes), dtype=input.dtype)
    except MemoryError:
        nbytes = input.size * num_classes * input.itemsize
        raise RuntimeError(
            f"DefaultCPUAllocator: can't allocate memory: you tried to allocate {nbytes} bytes."
        ) from None
    if num_classes:
        out.reshape(-1, num_classes)[xp.arange(input.size), input.reshape(-1)] = 1
    return out


# -- kl_div ------------------------------------------------------------------------------------


@op(
    layout="pointwise",
    grad_fn="XlogyBackward0",
    arity=2,
    dtype="float",
    shape=lambda a, b: shapes.broadcast(a, b),
    saves=(0, 1),
    method=False,
    function=False,
    internal=True,
    examples=(
        Ex(S(2, 3, low=0.1, high=2), S(2, 3, low=0.1, high=2)),
        Ex(C([0.0, 1.0]), S(2, low=0.5)),
    ),
)
def xlogy(xp: Any, self: Any, other: Any) -> Any:
    """self * log(other), 0 where self is 0 (unless other is NaN): PyTorch's xlogy, the piece
    kl_div records (internal until a pointwise xlogy is public)."""
    safe = xp.where(self == 0, 1, other)  # no log(0) computed where it is not used
    return xp.where(xp.isnan(other), other, self * xp.log(safe))


@xlogy.derivative
def _(ctx: Any, g: Any) -> tuple:
    x, y = ctx.saved
    dx = g * xlogy.call(x.ne(0), y) if ctx.needs(0) else None
    dy = g * x / y if ctx.needs(1) else None
    return dx, dy


_KL_REDUCTIONS = ("mean", "sum", "none", "batchmean")


@composite(
    "kl_div",
    examples=(
        Ex(S(3, 4), S(3, 4, low=0.1, high=1, grad=False), reduction="batchmean"),
        Ex(S(3, 4), S(3, 4, low=0.1, high=1), reduction="sum"),
        Ex(S(2, 3), C([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]), reduction="none"),
        Ex(S(2, 3), S(2, 3), reduction="batchmean", log_target=True),
        Ex(S(4), S(4, low=0.1, high=1), reduction="sum", log_target=False),
    ),
    function=False,
)
def kl_div(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    reduction: arg.Str = "mean",
    log_target: arg.Bool = False,
) -> Any:
    """KL(target || exp(input)) pointwise, for log-probabilities ``input`` (and ``target`` when
    log_target): xlogy(t, t) - t * input, or exp(t) * (t - input); "batchmean" divides the sum
    by the batch size."""
    if reduction not in _KL_REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        import warnings

        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            UserWarning,
            stacklevel=3,
        )
    if log_target:
        out = target.exp() * (target - input)
    else:
        out = xlogy.call(target, target) - target * input
    if reduction == "none":
        return out
    if reduction == "mean":
        return out.mean()
    total = out.sum()
    if reduction == "batchmean" and input.ndim != 0:
        return total / input.shape[0]
    return total


# -- normalize, cosine_similarity --------------------------------------------------------------


@op(
    grad_fn="CloneBackward0",
    dtype="same",
    shape=shapes.same,
    method=False,
    function=False,
    internal=True,
    examples=(Ex(S(5, low=0.5, high=1.0), 0.2),),
)
def clone_clamped(xp: Any, self: Any, min: float) -> Any:  # noqa: A002
    """A clone raised to at least ``min``, differentiated as a clone: cosine_similarity's
    ``norm.clone()`` followed by a ``clamp_min_`` under no_grad in PyTorch (one op here, so
    no in-place op runs inside the composite)."""
    return xp.maximum(self, min).astype(self.dtype, copy=False)


@clone_clamped.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g,)


@composite(
    "normalize",
    examples=(
        Ex(S(3, 4)),
        Ex(S(2, 3), p=1.5, dim=0),
        Ex(S(4), dim=0),
        Ex(S(2, 3, 2), 3.0, -1, 1e-6),
    ),
    function=False,
)
def normalize(
    input: arg.Tensor,  # noqa: A002
    p: arg.Float = 2.0,
    dim: arg.Int = 1,
    eps: arg.Float = 1e-12,
) -> Any:
    """input / max(||input||_p over dim, eps), as PyTorch records it."""
    norm = linalg_vector_norm.call(input, p, dim, True)
    return input / clamp_min.call(norm, eps).expand(*input.shape)


@composite(
    "cosine_similarity",
    examples=(
        Ex(S(3, 4), S(3, 4)),
        Ex(S(2, 3), S(2, 3, grad=False), 0),
        Ex(S(2, 3, 2), S(2, 3, 2), dim=-1, eps=1e-6),
    ),
)
def cosine_similarity(
    x1: arg.Tensor,
    x2: arg.Tensor,
    dim: arg.Int = 1,
    eps: arg.Float = 1e-8,
) -> Any:
    """sum(x1 / ||x1|| * x2 / ||x2||) over dim (norms clamped at eps), as PyTorch computes it."""
    if tuple(x1.shape) != tuple(x2.shape):  # PyTorch's expand_outplace: both, when they differ
        shape = shapes.broadcast(tuple(x1.shape), tuple(x2.shape))
        x1, x2 = x1.expand(*shape), x2.expand(*shape)
    n1 = clone_clamped.call(linalg_vector_norm.call(x1, 2.0, dim, True), eps)
    n2 = clone_clamped.call(linalg_vector_norm.call(x2, 2.0, dim, True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)
