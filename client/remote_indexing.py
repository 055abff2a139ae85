"""Indexing on remote tensors: ``t[key]``, ``t[key] = v``, ``index_put(_)``, ``masked_select``.

Their results' shapes (or their checks) depend on index tensors: an integer index's shape is
enough, so a placeholder of that shape stands in for it while the engine's body runs on the
mirror; a boolean mask's values decide, so they are fetched (a wait). One Op with the user's
own arguments is then queued, and the server runs the same body on the real values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gradd.engine import dtypes as dt
from gradd.engine.op_table import OPS, OpDef
from gradd.engine.tensor import Tensor as EngineTensor
from gradd.engine.tensor import wrap

from .call_site import user_site
from .op_recording import _send_composite
from .remote_tensor import RemoteTensor


def _index_placeholder(k: RemoteTensor) -> EngineTensor:
    # Integer indices decide the result's shape by their own shape; a boolean mask by its
    # values, which only the server has: that one waits for them.
    if k.dtype is dt.bool_:
        return k._local()
    return wrap(np.zeros(k.shape, k.dtype.np))


def _traced_on(s: Any, opdef: OpDef, args: tuple, meta_args: tuple) -> Any:
    """A composite whose result's shape needs values only the server has: its body runs here
    on ``meta_args`` (``args`` with those values fetched) for metadata, and one Op with the
    user's ``args`` is queued."""
    if s._tracing:
        return opdef.call(*meta_args)
    site = (opdef.name, *user_site(3))
    s._tracing = 1
    try:
        out = opdef.call(*meta_args)
        wrote = s._tracing == 2
    finally:
        s._tracing = 0
    return _send_composite(s, opdef, args, {}, out, site, wrote)


def _meta_key(key: Any) -> Any:
    """``key`` with its remote index tensors replaced by placeholders (masks by their values)."""
    keys = key if type(key) is tuple else (key,)
    if not any(type(k) is RemoteTensor for k in keys):
        return key
    meta_keys = tuple(_index_placeholder(k) if type(k) is RemoteTensor else k for k in keys)
    return meta_keys if type(key) is tuple else meta_keys[0]


def getitem(self: RemoteTensor, key: Any) -> Any:
    """``self[key]``: the engine's indexing rules, tensor indices included."""
    return _traced_on(self._s, OPS["getitem"], (self, key), (self, _meta_key(key)))


def setitem(self: RemoteTensor, key: Any, value: Any) -> None:
    """``self[key] = value``: the engine's ``setitem`` on the mirror (a boolean mask's values
    are fetched, as ``getitem``'s), and one Op with the user's key."""
    s = self._s
    if isinstance(value, (np.ndarray, EngineTensor)):
        value = s.tensor(value)
    _traced_on(s, OPS["setitem"], (self, key, value), (self, _meta_key(key), value))


def index_put(name: str) -> Callable:
    """``index_put(_)``: its index tensors' shapes (a mask's values) decide the result's, so
    the mirror runs on placeholders, as ``getitem``'s does."""

    def call(self: RemoteTensor, indices: Any, values: Any, accumulate: bool = False) -> Any:
        meta = indices
        if type(indices) in (tuple, list):
            meta = tuple(_index_placeholder(k) if type(k) is RemoteTensor else k for k in indices)
        args = (self, indices, values, accumulate)
        return _traced_on(self._s, OPS[name], args, (self, meta, values, accumulate))

    call.__name__ = name
    return call


def masked_select(self: RemoteTensor, mask: Any) -> Any:
    """``masked_select``: its length is the mask's count, so the mask's values are fetched,
    as a boolean index's are."""
    meta_mask = mask._local() if type(mask) is RemoteTensor else mask
    return _traced_on(self._s, OPS["masked_select"], (self, mask), (self, meta_mask))
