"""``scaled_dot_product_attention``, written as PyTorch's math backend writes it.

softmax(q k^T * scale + mask) v from existing ops, so its gradients (first and second) come
from theirs: query and key are each scaled by sqrt(scale) before the product (PyTorch's order,
for the same rounding), a boolean mask becomes an additive bias of 0 and -inf, and a row that
masks every key gives zeros, not NaN (PyTorch's ``_safe_softmax``). PyTorch's CPU default is a
fused kernel (one ``ScaledDotProductFlashAttentionForCpuBackward0`` node); gradd's graph is the
math backend's ops.
"""

from __future__ import annotations

import math
from typing import Any

from .. import arg_kinds as arg
from .. import dtypes as dt
from ..op_examples import C, Ex, S
from ..op_table import composite
from .nn import dropout

_CAUSAL = C([[True, False, False, False], [True, True, False, False], [True, True, True, False]])


def _check(query: Any, key: Any, value: Any, attn_mask: Any, is_causal: bool) -> None:
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(
            "Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
            f"{query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead."
        )
    if not (query.dtype is key.dtype is value.dtype):
        raise RuntimeError(
            "Expected query, key, and value to have the same dtype, but got query.dtype: "
            f"{query.dtype.c_name} key.dtype: {key.dtype.c_name} and value.dtype: "
            f"{value.dtype.c_name} instead."
        )
    if attn_mask is not None:
        if is_causal:
            raise RuntimeError(
                "_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                "is_causal=True"
            )
        if attn_mask.dtype not in (dt.bool_, dt.float32, query.dtype):
            raise RuntimeError(
                "Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                f"attn_mask.dtype: {attn_mask.dtype.c_name} and  query.dtype: "
                f"{query.dtype.c_name} instead."
            )


def _grouped(query: Any, kv: Any) -> Any:
    """Key or value heads repeated to the query's (grouped-query attention)."""
    hq, hk = query.shape[-3], kv.shape[-3]
    if hk == 0 or hq % hk:
        raise RuntimeError("Number of heads in key and value must divide the number of heads in ")
    return kv if hq == hk else kv.repeat_interleave(hq // hk, -3)


@composite(
    "scaled_dot_product_attention",
    examples=(
        Ex(S(2, 3, 4), S(2, 5, 4), S(2, 5, 2)),
        Ex(S(1, 2, 3, 4), S(1, 2, 4, 4), S(1, 2, 4, 3), is_causal=True, scale=0.7),
        Ex(S(3, 4), S(4, 4), S(4, 2), attn_mask=_CAUSAL),
        Ex(S(2, 3, 4), S(2, 4, 4), S(2, 4, 3), attn_mask=S(3, 4, grad=False)),
        Ex(S(1, 4, 3, 2), S(1, 2, 3, 2), S(1, 2, 3, 2), enable_gqa=True),
        Ex(S(3, 2), S(4, 2), S(4, 2), C([[True] * 4, [False] * 4, [True, False, True, False]])),
    ),
)
def scaled_dot_product_attention(
    query: arg.Tensor,
    key: arg.Tensor,
    value: arg.Tensor,
    attn_mask: arg.Tensor | None = None,
    dropout_p: arg.Float = 0.0,
    is_causal: arg.Bool = False,
    scale: arg.Float | None = None,
    enable_gqa: arg.Bool = False,
) -> Any:
    """softmax(query @ key^T * scale + mask) @ value, scale 1/sqrt(E) unless given."""
    _check(query, key, value, attn_mask, is_causal)
    if dropout_p > 1.0:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {dropout_p}")
    if enable_gqa and query.ndim >= 3:
        key, value = _grouped(query, key), _grouped(query, value)
    root = math.sqrt(1.0 / math.sqrt(query.shape[-1]) if scale is None else scale)
    scores = (query * root).matmul(key.transpose(-2, -1) * root)
    if is_causal:
        attn_mask = query.new_ones((query.shape[-2], key.shape[-2]), dtype=dt.bool_).tril()
    if attn_mask is not None:
        if attn_mask.dtype is dt.bool_:
            bias = query.new_zeros(tuple(attn_mask.shape)).masked_fill(
                attn_mask.logical_not(), float("-inf")
            )
        else:
            bias = attn_mask
        scores = scores + bias
        # A row with every key masked: zeros (PyTorch's safe softmax), with no gradient, where
        # a plain softmax would give NaN.
        empty = (scores == float("-inf")).all(-1, keepdim=True)
        weights = scores.masked_fill(empty, 0.0).softmax(-1).masked_fill(empty, 0.0)
    else:
        weights = scores.softmax(-1)
    if dropout_p > 0.0:
        weights = dropout.call(weights, dropout_p, True)
    return weights.matmul(value)
