"""``MultiheadAttention`` and ``TransformerEncoderLayer``: torch's parameters, init order
(the output projection draws first, then xavier on the input projection) and forward math
(``need_weights``: an explicit softmax; without weights: ``F.scaled_dot_product_attention``)."""

from __future__ import annotations

import math
from typing import Any

from . import init
from .module import Module
from .parameter import Parameter


class MultiheadAttention(Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        super().__init__()
        s, kw = self._s, {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(s.empty((embed_dim, embed_dim), **kw))
            self.k_proj_weight = Parameter(s.empty((embed_dim, self.kdim), **kw))
            self.v_proj_weight = Parameter(s.empty((embed_dim, self.vdim), **kw))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(s.empty((3 * embed_dim, embed_dim), **kw))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        if bias:
            self.in_proj_bias = Parameter(s.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = s.nn.NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(s.empty((1, 1, embed_dim), **kw))
            self.bias_v = Parameter(s.empty((1, 1, embed_dim), **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def _float_mask(self, mask: Any, dtype: Any) -> Any:
        """A boolean mask as torch's additive one (-inf where True)."""
        if mask is None or mask.dtype != self._s.bool:
            return mask
        return self._s.zeros(mask.shape, dtype=dtype).masked_fill(mask, float("-inf"))

    def _pad_last(self, mask: Any) -> Any:
        """One more key column (bias_k or the zero key), unmasked."""
        if mask is None:
            return None
        zeros = self._s.zeros((*mask.shape[:-1], 1), dtype=mask.dtype)
        return self._s.cat([mask, zeros], dim=-1)

    def forward(
        self,
        query: Any,
        key: Any,
        value: Any,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Any, Any]:
        s, F = self._s, self._F
        batched = query.dim() == 3
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        if batched and self.batch_first:
            query, key, value = (x.transpose(1, 0) for x in (query, key, value))
        if not batched:
            query, key, value = (x.unsqueeze(1) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        L, N, E = query.shape
        H, hd = self.num_heads, self.head_dim
        if self._qkv_same_embed_dim:
            w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None,) * 3
        q, k, v = F.linear(query, w_q, b[0]), F.linear(key, w_k, b[1]), F.linear(value, w_v, b[2])
        attn_mask = self._float_mask(attn_mask, q.dtype)
        if attn_mask is not None and attn_mask.dim() == 2:
            attn_mask = attn_mask.unsqueeze(0)
        key_padding_mask = self._float_mask(key_padding_mask, q.dtype)
        if self.bias_k is not None:
            k = s.cat([k, self.bias_k.repeat(1, N, 1)])
            v = s.cat([v, self.bias_v.repeat(1, N, 1)])
            attn_mask, key_padding_mask = (
                self._pad_last(attn_mask),
                self._pad_last(key_padding_mask),
            )
        q = q.reshape(L, N * H, hd).transpose(0, 1)
        k = k.reshape(k.shape[0], N * H, hd).transpose(0, 1)
        v = v.reshape(v.shape[0], N * H, hd).transpose(0, 1)
        if self.add_zero_attn:
            k = s.cat([k, s.zeros((N * H, 1, hd), dtype=k.dtype)], dim=1)
            v = s.cat([v, s.zeros((N * H, 1, hd), dtype=v.dtype)], dim=1)
            attn_mask, key_padding_mask = (
                self._pad_last(attn_mask),
                self._pad_last(key_padding_mask),
            )
        S = k.shape[1]
        if key_padding_mask is not None:
            kpm = key_padding_mask.reshape(N, 1, 1, S).expand(-1, H, -1, -1).reshape(N * H, 1, S)
            attn_mask = kpm if attn_mask is None else attn_mask + kpm
        p = self.dropout if self.training else 0.0
        if need_weights:
            q_scaled = q * math.sqrt(1.0 / float(hd))
            kt = k.transpose(-2, -1)
            if attn_mask is not None:
                weights = s.baddbmm(attn_mask, q_scaled, kt)
            else:
                weights = s.bmm(q_scaled, kt)
            weights = F.softmax(weights, dim=-1)
            if p > 0.0:
                weights = F.dropout(weights, p=p)
            out = s.bmm(weights, v).transpose(0, 1).reshape(L * N, E)
            weights = weights.reshape(N, H, L, S)
            if average_attn_weights:
                weights = weights.mean(dim=1)
        else:
            if attn_mask is not None:
                if attn_mask.shape[0] == 1 and attn_mask.dim() == 3:
                    attn_mask = attn_mask.unsqueeze(0)
                else:
                    attn_mask = attn_mask.reshape(N, H, -1, S)
            q, k, v = q.reshape(N, H, L, hd), k.reshape(N, H, S, hd), v.reshape(N, H, S, hd)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask, p)
            out = out.permute(2, 0, 1, 3).reshape(L * N, E)
            weights = None
        out = F.linear(out, self.out_proj.weight, self.out_proj.bias).reshape(L, N, E)
        if not batched:
            out = out.squeeze(1)
            weights = weights.squeeze(0) if weights is not None else None
        elif self.batch_first:
            out = out.transpose(1, 0)
        return out, weights


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with residual, dropout and LayerNorm.
    ``activation``: "relu" (torch's default, ``F.relu``), "gelu", a function or a module."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Any = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        nn, kw = self._s.nn, {"device": device, "dtype": dtype}
        self.self_attn = nn.MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        if isinstance(activation, str):
            if activation not in ("relu", "gelu"):
                raise RuntimeError(f"activation should be relu/gelu, not {activation}")
            activation = getattr(self._F, activation)
        self.activation = activation

    def forward(
        self,
        src: Any,
        src_mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool = False,
    ) -> Any:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x: Any, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Any:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x: Any) -> Any:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


CLASSES = (MultiheadAttention, TransformerEncoderLayer)
