"""How each op of the table is spelled in PyTorch, for the reference tests (torch needed).

Most ops are ``torch.<name>``, a ``Tensor`` method or ``torch.nn.functional.<name>``; internal
ops map through the public call that makes them (``max_all`` is ``torch.max(x)``, ``index`` is
``x[key]``, ``index_backward`` is the double backward of indexing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradd.engine as ge
import numpy as np
import torch

TF = torch.nn.functional


def to_torch(v: Any, leaves: dict[int, torch.Tensor]) -> Any:
    """Mirror a gradd argument in torch; gradd leaves map to torch leaves (same values)."""
    if isinstance(v, ge.Tensor):
        if id(v) not in leaves:
            t = torch.tensor(v.detach().numpy().copy())
            if v.requires_grad and v.is_leaf:
                t.requires_grad_()
            leaves[id(v)] = t
        return leaves[id(v)]
    if isinstance(v, ge.DType):
        return getattr(torch, v.name)
    if isinstance(v, list):
        return [to_torch(x, leaves) for x in v]
    if isinstance(v, tuple):
        return tuple(to_torch(x, leaves) for x in v)
    if isinstance(v, dict):
        return {k: to_torch(x, leaves) for k, x in v.items()}
    return v


def _index_key(key: tuple) -> tuple:
    return tuple(torch.as_tensor(np.asarray(k)) if isinstance(k, list) else k for k in key)


def _index_backward(g: torch.Tensor, shape: tuple, key: tuple) -> torch.Tensor:
    # gradd's index_backward is the gradient of x[key]: make it the way torch does, as the
    # create_graph gradient of an indexing, which torch records as IndexBackwardBackward0... or
    # whatever torch calls it; the test compares names.
    x = torch.zeros(shape, dtype=g.dtype, requires_grad=True)
    (gx,) = torch.autograd.grad(x[_index_key(key)], x, g, create_graph=True)
    return gx


def _clone_clamped(x: torch.Tensor, min: float) -> torch.Tensor:  # noqa: A002
    y = x.clone()
    with torch.no_grad():
        y.clamp_min_(min)
    return y


def _split_part(
    self: torch.Tensor, dim: int, start: int, stop: Any, kind: str, index: int = 0
) -> torch.Tensor:
    # gradd's pieces of a split, made by the torch call that names its node so.
    if kind == "unbind":
        return self.unbind(dim)[start]
    if kind == "split":
        return self.split(stop - start, dim)[start // (stop - start)]
    return self.split([start, stop - start, self.shape[dim] - stop], dim)[1]


def _diagonal_backward(g: torch.Tensor, shape: tuple, *diagonal: int) -> torch.Tensor:
    x = torch.zeros(shape, dtype=g.dtype, requires_grad=True)
    (gx,) = torch.autograd.grad(x.diagonal(*diagonal), x, g, create_graph=True)
    return gx


def _grad_of(fn: Callable, g: torch.Tensor, shape: tuple) -> torch.Tensor:
    """The create_graph gradient of ``fn`` at zeros of ``shape``: how torch makes the adjoint
    ops gradd declares as internal ops (index_select_backward, einsum_single_backward...)."""
    x = torch.zeros(shape, dtype=g.dtype, requires_grad=True)
    (gx,) = torch.autograd.grad(fn(x), x, g, create_graph=True)
    return gx


def _inplace(name: str) -> Callable:
    def run(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        base = self.clone() if self.requires_grad else self
        return getattr(base, name)(*args, **kwargs)

    return run


def _aten_indices(key: tuple) -> list:
    """A normalised gradd key (full slices and index arrays) as aten's optional index list."""
    return [None if k == slice(None) else torch.as_tensor(np.asarray(k)) for k in key]


def _index_put(name: str) -> Callable:
    def run(self: torch.Tensor, values: Any, key: tuple, accumulate: bool) -> torch.Tensor:
        if not isinstance(values, torch.Tensor):
            values = torch.tensor(values, dtype=self.dtype)
        if name.endswith("_") and self.requires_grad:
            self = self.clone()
        return getattr(torch.ops.aten, name)(self, _aten_indices(key), values, accumulate)

    return run


def _conv_backward(i: int) -> Callable[..., torch.Tensor]:
    # gradd's convolution_backward_input/_weight: one output of aten's convolution_backward,
    # which torch records as ConvolutionBackwardBackward0 (grad, input, weight).
    def run(g: Any, x: Any, w: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> Any:
        mask = [i == 0, i == 1, i == 2]
        k = len(stride)
        return torch.ops.aten.convolution_backward(
            g,
            x,
            w,
            [w.shape[0]] if i == 2 else None,
            stride,
            padding,
            dilation,
            False,
            [0] * k,
            groups,
            mask,
        )[i]

    return run


def _setitem(self: torch.Tensor, key: Any, value: Any) -> torch.Tensor:
    out = self.clone() if self.requires_grad else self
    out[key] = value
    return out


SPECIAL: dict[str, Callable[..., Any]] = {
    "index_put_key": _index_put("index_put"),
    "index_put_key_": _index_put("index_put_"),
    "setitem": _setitem,
    "scatter_dim_": lambda self, index, src, dim: _inplace("scatter_")(self, dim, index, src),
    "scatter_add_dim_": lambda self, index, src, dim: _inplace("scatter_add_")(
        self, dim, index, src
    ),
    "convolution": lambda x, w, b, stride, padding, dilation, groups: torch.convolution(
        x, w, b, stride, padding, dilation, False, [0] * len(stride), groups
    ),
    "convolution_backward_input": _conv_backward(0),
    "convolution_backward_weight": _conv_backward(1),
    "convolution_backward_bias": _conv_backward(2),
    "max_pool2d_values": lambda x, *a: TF.max_pool2d(x, *a),
    "max_pool2d_indices": lambda x, *a: TF.max_pool2d(x, *a, return_indices=True)[1],
    "max_pool2d_backward": lambda g, x, i, *a: torch.ops.aten.max_pool2d_with_indices_backward(
        g, x, *a, i
    ),
    "avg_pool2d_backward": torch.ops.aten.avg_pool2d_backward,
    "adaptive_avg_pool2d_values": TF.adaptive_avg_pool2d,
    "adaptive_avg_pool2d_backward": torch.ops.aten._adaptive_avg_pool2d_backward,
    "rdiv": lambda self, other: other / self,
    "rpow": lambda self, base: base**self,
    "rsub": lambda self, other, alpha=1: torch.rsub(self, other, alpha=alpha),
    "max_all": lambda self: torch.max(self),
    "min_all": lambda self: torch.min(self),
    "max_dim": lambda self, dim, keepdim=False: torch.max(self, dim, keepdim).values,
    "min_dim": lambda self, dim, keepdim=False: torch.min(self, dim, keepdim).values,
    "index": lambda self, key, kind="index": self[_index_key(key)],
    "index_backward": _index_backward,
    "getitem": lambda self, key: self[key],
    "to_dtype": lambda self, dtype: self.to(dtype),
    "to_device": lambda self, device: self.to(device, copy=True),
    "sum_to_size": lambda self, *size: self.sum_to_size(*size),
    "view": lambda self, *shape: self.view(*shape),
    "expand": lambda self, *sizes: self.expand(*sizes),
    "reshape": lambda self, *shape: self.reshape(*shape),
    "reshape_alias": lambda self, shape: torch.ops.aten._reshape_alias(
        self, shape, self.view(shape).stride()
    ),
    "unsafe_view": lambda self, shape: torch.ops.aten._unsafe_view(self, shape),
    "permute": lambda self, *dims: self.permute(*dims),
    "contiguous": lambda self: self.contiguous(),
    "alias": lambda self: self[...],
    "xlogy": torch.xlogy,
    "threshold_backward": torch.ops.aten.threshold_backward,
    "clamp_min": torch.clamp_min,
    "clone_clamped": _clone_clamped,
    "linalg_vector_norm": torch.linalg.vector_norm,
    "gelu_backward": lambda g, x, approximate="none": torch.ops.aten.gelu_backward(
        g, x, approximate=approximate
    ),
    "split_part": _split_part,
    "diagonal_backward": _diagonal_backward,
    "flip": lambda self, *dims: self.flip(*dims),
    "tile": lambda self, *dims: self.tile(*dims),
    "take_along": lambda self, index, dim: torch.gather(self, dim, index),
    "put_along": lambda g, index, dim, shape: torch.zeros(shape, dtype=g.dtype).scatter_add(
        dim, index, g
    ),
    "sort_values": lambda self, *a, **k: torch.sort(self, *a, **k).values,
    "topk_values": lambda self, *a, **k: torch.topk(self, *a, **k).values,
    "median_all": lambda self: torch.median(self),
    "topk_indices": lambda self, *a, **k: torch.topk(self, *a, **k).indices,
    "median_indices": lambda self, *a, **k: torch.median(self, *a, **k).indices,
    "median_dim": lambda self, *a, **k: torch.median(self, *a, **k).values,
    "gather_dim": lambda self, index, dim: torch.gather(self, dim, index),
    "scatter_dim": lambda self, index, src, dim: torch.scatter(self, dim, index, src),
    "scatter_add_dim": lambda self, index, src, dim: torch.scatter_add(self, dim, index, src),
    "index_select_dim": lambda self, index, dim: torch.index_select(self, dim, index),
    "einsum_single": lambda self, equation: torch.einsum(equation, self),
    "einsum_pair": lambda self, other, equation: torch.einsum(equation, self, other),
    "einsum_single_backward": lambda g, shape, equation: _grad_of(
        lambda x: torch.einsum(equation, x), g, shape
    ),
    "index_select_backward": lambda g, index, shape, dim: _grad_of(
        lambda x: x.index_select(dim, index), g, shape
    ),
    "masked_select_mask": lambda self, mask: self.masked_select(torch.as_tensor(mask)),
    "masked_select_backward": lambda g, mask, shape: _grad_of(
        lambda x: x.masked_select(torch.as_tensor(mask)), g, shape
    ),
    "native_layer_norm": lambda x, w, b, n, eps: TF.layer_norm(x, x.shape[x.ndim - n :], w, b, eps),
    "native_embedding": lambda w, idx, padding_idx, scale: torch.embedding(
        w, idx, padding_idx, scale
    ),
    "constant_pad_nd": lambda x, pad, value=0: TF.pad(x, pad, value=value),
    "pad_nd": lambda x, pad, mode: TF.pad(x, pad, mode),
    "pad_nd_backward": lambda g, shape, pad, mode: _grad_of(
        lambda x: TF.pad(x, pad, mode), g, shape
    ),
    "native_group_norm": lambda x, w, b, groups, eps: TF.group_norm(x, groups, w, b, eps),
    "native_batch_norm": lambda x, w, b, rm, rv, training, momentum, eps: TF.batch_norm(
        x, rm, rv, w, b, training, momentum, eps
    ),
}


def torch_op(name: str) -> Callable[..., Any]:
    """The torch callable that does what gradd's op ``name`` does."""
    if name in SPECIAL:
        return SPECIAL[name]
    if name.endswith("_"):
        return _inplace(name)
    if name.startswith("linalg_"):
        return getattr(torch.linalg, name.removeprefix("linalg_"))
    for space in (TF, torch):
        fn = getattr(space, name, None)
        if fn is not None:
            return fn
    return lambda self, *a, **k: getattr(self, name)(*a, **k)


def grad_fn_name(t: Any) -> str | None:
    return None if t.grad_fn is None else t.grad_fn.name()
