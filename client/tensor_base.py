"""``gradd.Tensor``: the type both kinds of tensor are, so ``isinstance(t, gradd.Tensor)`` holds
for an embedded session's engine tensors and a server session's remote tensors alike."""

from __future__ import annotations

import abc

from gradd.engine.tensor import Tensor as EngineTensor

from .remote_tensor import RemoteTensor


class Tensor(abc.ABC):  # noqa: B024 - a marker: the two concrete kinds register themselves
    """A gradd tensor: ``gradd.engine.Tensor`` (embedded) or ``RemoteTensor`` (on a server)."""


Tensor.register(EngineTensor)
Tensor.register(RemoteTensor)
