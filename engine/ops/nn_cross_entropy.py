"""``cross_entropy``: log_softmax then the negative log-likelihood, as PyTorch composes it.

Class-index targets go through ``nll_loss`` (``weight``, ``ignore_index``); ``label_smoothing``
mixes in the mean of every class's loss, and probability ("soft") targets, a float tensor of the
input's shape, weigh every class's log-probability. The expressions are PyTorch's
(``cross_entropy_loss_label_smoothing``, ``cross_entropy_loss_prob_target``), so the numbers and
most of the recorded graph agree.
"""

from __future__ import annotations

import warnings
from typing import Any

from .. import arg_kinds as arg
from .. import dtypes as dt
from ..op_examples import C, Ex, S
from ..op_table import composite
from .nn import _check_reduction, check_class_weight, log_softmax, nll_loss


def legacy_reduction(size_average: bool | None, reduce: bool | None) -> str:
    """PyTorch's ``_Reduction.legacy_get_string``, with its deprecation warning."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        "size_average and reduce args will be deprecated, please use reduction="
        f"'{reduction}' instead.",
        UserWarning,
        stacklevel=4,
    )
    return reduction


def _class_view(weight: Any, ndim: int, class_dim: int) -> Any:
    """A class weight shaped to broadcast along ``class_dim`` of an ``ndim``-d input."""
    return weight.reshape(-1, *([1] * (ndim - class_dim - 1)))


def _soft_targets(
    logp: Any, target: Any, weight: Any, reduction: str, smoothing: float, class_dim: int
) -> Any:
    c = logp.shape[class_dim]
    if smoothing > 0.0:
        target = target * (1 - smoothing) + smoothing / c
    terms = logp * target
    if weight is not None:
        check_class_weight(logp, weight, c, "cross_entropy: ")
        terms = terms * _class_view(weight, logp.ndim, class_dim)
    if reduction == "none":
        return -terms.sum(class_dim)
    if reduction == "sum":
        return -terms.sum()
    return -terms.sum() / (logp.numel() / c if c else float("nan"))


def _class_targets(
    logp: Any,
    target: Any,
    weight: Any,
    ignore_index: int,
    reduction: str,
    smoothing: float,
    class_dim: int,
) -> Any:
    if logp.ndim <= 2 and target.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if target.dtype is not dt.int64 and target.dtype is not dt.uint8:
        raise RuntimeError(
            f"expected target dtype to be Long or Byte, but got {target.dtype.torch_name}"
        )
    if logp.ndim > 2 and tuple(target.shape) != logp.shape[:1] + logp.shape[2:]:
        size = list(logp.shape[:1] + logp.shape[2:])
        raise RuntimeError(f"Expected target size {size}, got {list(target.shape)}")
    if target.dtype is dt.uint8:
        target = target.long()
    nll = nll_loss.call(logp, target, weight, ignore_index, reduction)
    if smoothing <= 0.0:
        return nll
    # PyTorch's cross_entropy_loss_label_smoothing, expression for expression
    terms = logp if weight is None else logp * _class_view(weight, logp.ndim, class_dim)
    ignored = target == ignore_index
    smooth = (-terms.sum(class_dim)).masked_fill(ignored, 0.0)
    if reduction == "mean":
        if weight is None:
            smooth = smooth.sum() / ignored.logical_not().sum()
        else:
            picked = weight.index_select(0, target.masked_fill(ignored, 0).flatten())
            smooth = smooth.sum() / picked.masked_fill(ignored.flatten(), 0.0).sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - smoothing) * nll + smooth * (smoothing / logp.shape[class_dim])


@composite(
    "cross_entropy",
    examples=(
        Ex(S(3, 4), C([0, 3, 1])),
        Ex(S(2, 5), C([4, 4]), reduction="sum"),
        Ex(S(4, 3), C([2, -100, 0, 2]), C([0.5, 2.0, 1.5]), reduction="none"),
        Ex(S(3, 4), C([0, 3, 1]), label_smoothing=0.2),
        Ex(S(4, 3), C([2, 1, 0, 1]), C([0.5, 2.0, 1.5]), ignore_index=1, label_smoothing=0.3),
        Ex(S(3, 4), S(3, 4, low=0, high=1, grad=False)),
        Ex(S(3, 4), S(3, 4, low=0, high=1), C([1.0, 2.0, 0.5, 1.0]), reduction="none"),
        Ex(S(2, 3, 2), C([[0, 2], [1, 1]]), reduction="none"),
        Ex(S(5), C(3), label_smoothing=0.1),
    ),
)
def cross_entropy(
    input: arg.Tensor,  # noqa: A002
    target: arg.Tensor,
    weight: arg.Tensor | None = None,
    size_average: arg.Bool | None = None,
    ignore_index: arg.Int = -100,
    reduce: arg.Bool | None = None,  # noqa: A002
    reduction: arg.Str = "mean",
    label_smoothing: arg.Float = 0.0,
) -> Any:
    """nll_loss(log_softmax(input, 1), target), for class indices or class probabilities."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    _check_reduction(reduction)
    if label_smoothing > 1.0:
        raise RuntimeError(
            f"label_smoothing must be between 0.0 and 1.0. Got: {float(label_smoothing):g}"
        )
    class_dim = 1 if input.ndim > 1 else 0
    logp = log_softmax.call(input, class_dim)
    if target.dtype.is_floating_point and tuple(target.shape) == tuple(input.shape):
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        return _soft_targets(logp, target, weight, reduction, label_smoothing, class_dim)
    return _class_targets(logp, target, weight, ignore_index, reduction, label_smoothing, class_dim)
