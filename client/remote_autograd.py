"""``s.autograd.backward`` and ``s.autograd.grad`` for a remote session, made of the commands a
tensor's ``backward`` already uses: several roots become one scalar root (the sum of each root
times its gradient, which has the same gradients), and ``grad`` is a ``backward(inputs=...)``
into the inputs' ``.grad``, which are put back as they were afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import command_encoding as enc
from .call_site import user_site
from .errors import AutogradRuleError
from .mirror_graph import OpaqueNode, _reachable
from .remote_tensor import RemoteTensor

UNUSED = (
    "One of the differentiated Tensors appears to not have been used in the graph. "
    "Set allow_unused=True if this is the desired behavior."
)


def _listed(x: Any, cls: type) -> list:
    return [x] if isinstance(x, cls) else list(x)


def _one_root(roots: list, grads: list | None) -> tuple[Any, Any]:
    """(root, gradient) for one backward pass with the gradients of all of ``roots``."""
    grads = grads if grads is not None else [None] * len(roots)
    if len(grads) != len(roots):
        raise RuntimeError(f"got {len(grads)} tensors and {len(roots)} gradients")
    if len(roots) == 1:
        return roots[0], grads[0]
    for i, t in enumerate(roots):
        if not t.requires_grad:
            raise AutogradRuleError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
    total = None
    for t, g in zip(roots, grads):
        if g is None and t.numel() != 1:
            raise AutogradRuleError("grad can be implicitly created only for scalar outputs")
        term = (t * g).sum() if g is not None else t.sum()
        total = term if total is None else total + term
    return total, None


def _server_has_grad(t: RemoteTensor) -> bool:
    request = enc.fetch(t._h, metadata_only=True)
    return t._s._stream.request(request, ("autograd.grad", *user_site(4))).tensor.info.has_grad


def backward(
    tensors: Any,
    grad_tensors: Sequence | Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """``torch.autograd.backward``: accumulate the gradients of ``tensors`` into ``.grad``."""
    roots = _listed(tensors, RemoteTensor)
    grads = None if grad_tensors is None else _listed(grad_tensors, RemoteTensor)
    root, gradient = _one_root(roots, grads)
    root.backward(gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple:
    """``torch.autograd.grad``: d(outputs)/d(inputs), leaving every ``.grad`` as it was."""
    ins = _listed(inputs, RemoteTensor)
    for t in ins:
        if not t.requires_grad:
            raise AutogradRuleError("One of the differentiated Tensors does not require grad")
    outs = _listed(outputs, RemoteTensor)
    gos = None if grad_outputs is None else _listed(grad_outputs, RemoteTensor)
    root, gradient = _one_root(outs, gos)
    kept = [t._grad for t in ins]  # the .grad each input has now (None, or a tensor)
    for t in ins:
        t._set_grad(None)
    try:
        opaque = root.grad_fn is not None and any(
            type(n) is OpaqueNode for n in _reachable(root.grad_fn)
        )
        root.backward(gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=ins)
        if opaque:
            # Behind a graph made by create_graph the mirror cannot see which inputs were
            # reached: the server says (a wait).
            for t in ins:
                if not t._has_grad and _server_has_grad(t):
                    t._has_grad = 2
        result = tuple(t._grad for t in ins)
    finally:
        for t, old in zip(ins, kept):
            t._set_grad(old)
    if not allow_unused and any(g is None for g in result):
        raise AutogradRuleError(UNUSED)
    return result
