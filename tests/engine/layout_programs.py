"""Programs whose results' strides are compared with PyTorch's (tests/engine/test_layout.py
embedded, tests/sdk/test_layout.py on a server too): each runs on a (2, 3, 4) tensor of
either library, through the API both share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

X = np.arange(24.0).reshape(2, 3, 4)

# Each program runs on a (2, 3, 4) tensor of either library.
PROGRAMS: dict[str, Callable[[Any], Any]] = {
    "transpose": lambda x: x.transpose(0, 2),
    "t": lambda x: x[0].t(),
    "mT": lambda x: x.mT,
    "permute": lambda x: x.permute(2, 0, 1),
    "expand": lambda x: x[:, :1].expand(2, 5, 4),
    "expand new dims": lambda x: x[0, 0].expand(3, 1, 4),
    "expand 0-d": lambda x: x[0, 0, 0].expand(1),
    "unsqueeze": lambda x: x.transpose(0, 1).unsqueeze(1),
    "unsqueeze last": lambda x: x.transpose(0, 1).unsqueeze(-1),
    "squeeze": lambda x: x[:, :1].transpose(0, 2).squeeze(),
    "squeeze dim": lambda x: x[:, :1].squeeze(1),
    "slice": lambda x: x[1:, ::2, 1:3],
    "select": lambda x: x[:, 1],
    "select negative": lambda x: x[-1, :, -2],
    "none index": lambda x: x[:, None, 1:],
    "empty slice": lambda x: x[:, 5:],
    "ellipsis": lambda x: x[..., 1],
    "diagonal": lambda x: x.diagonal(1, 1, 2),
    "diagonal negative": lambda x: x.diagonal(-1, 0, 2),
    "narrow": lambda x: x.narrow(2, 1, 2),
    "chunk": lambda x: x.chunk(2, 2)[1],
    "unbind": lambda x: x.unbind(1)[2],
    "split": lambda x: x.split([1, 3], 2)[1],
    "view": lambda x: x.view(6, 4),
    "view of a slice": lambda x: x[:, 1:].view(2, 8),
    "view of a transposed": lambda x: x.transpose(0, 1)[0].view(2, 2, 2),
    "reshape viewable": lambda x: x[:, :, ::2].reshape(6, 2),
    "reshape copies": lambda x: x.transpose(1, 2).reshape(2, 12),
    "flatten": lambda x: x.permute(1, 0, 2).flatten(1),
    "unflatten": lambda x: x.transpose(0, 1).unflatten(2, (2, 2)),
    "movedim": lambda x: x.movedim(0, 2),
    "swapaxes": lambda x: x.swapaxes(0, 1),
    "alias": lambda x: x[...],
    "pointwise of transposed": lambda x: x.transpose(1, 2).exp(),
    "pointwise of permuted": lambda x: x.permute(2, 0, 1) * 2,
    "pointwise pair agreeing": lambda x: x.transpose(0, 2) + x.transpose(0, 2),
    "pointwise pair disagreeing": lambda x: x.transpose(1, 2) + x.transpose(1, 2).contiguous(),
    "pointwise contiguous first": lambda x: x.transpose(1, 2).contiguous() + x.transpose(1, 2),
    "pointwise broadcast": lambda x: x.transpose(1, 2) + x[0, 0, :3],
    "pointwise broadcast row": lambda x: x[0].t() + x[0, :, :1].t(),
    "pointwise of a slice": lambda x: x[:, :, ::2].sin(),
    "pointwise of expanded": lambda x: x[:, :1].expand(2, 3, 4).neg(),
    "pointwise of a select": lambda x: x[:, 1].t().sigmoid(),
    "scalar": lambda x: 2 - x.transpose(0, 1),
    "clone": lambda x: x.permute(1, 2, 0).clone(),
    "clone of a slice": lambda x: x.transpose(0, 2)[::2].clone(),
    "contiguous": lambda x: x.transpose(0, 2).contiguous(),
    "contiguous of contiguous": lambda x: x.contiguous(),
    "to dtype": lambda x: x.transpose(0, 1).to(x.new_ones(()).float().dtype),
    "where": lambda x: (x.transpose(0, 1) > 3).float(),
    "zeros_like": lambda x: x.transpose(0, 2).new_zeros(4, 3, 2) + 0,
    "reduction": lambda x: x.transpose(0, 2).sum(1),
    "matmul": lambda x: x.transpose(1, 2) @ x,
    "softmax": lambda x: x.transpose(1, 2).softmax(-1),
    "chain": lambda x: (x.transpose(0, 2).exp()[1:].transpose(0, 1) * 3).sum(0),
}
