"""``s.autograd.Function``: PyTorch's custom autograd functions, for both kinds of session.

A subclass gives static ``forward(ctx, *args)`` (or ``forward(*args)`` with ``setup_context(ctx,
inputs, output)``) and ``backward(ctx, *grads)``; ``apply`` runs ``forward`` without recording
and makes its outputs those of one ``<Name>Backward`` node, which is also ``ctx``. Embedded, the
node calls the user's ``backward`` in the backward pass (recording it under ``create_graph``, so
a backward written in tensor ops differentiates again). Remote, ``backward`` is recorded once, at
``apply``, as the ops it queues on placeholder gradients, and the server replays them when its
backward pass reaches the node (``remote_function``).
"""

from __future__ import annotations

import functools
from typing import Any

from gradd.engine import function_node as fnode
from gradd.engine.grad_mode import _mode, no_grad
from gradd.engine.tensor import Tensor

from .remote_tensor import RemoteTensor

_NODE_CLASSES: dict[type, type] = {}


def node_class(cls: type, base: type) -> type:
    """The ``<Name>Backward`` class of a Function subclass (its grad_fn's type), per base."""
    key = (cls, base)
    made = _NODE_CLASSES.get(key)  # type: ignore[call-overload]
    if made is None:
        name = getattr(cls, "_backward_name", f"{cls.__name__}Backward")
        made = _NODE_CLASSES[key] = type(name, (base,), {"function_class": cls})  # type: ignore[index]
    return made


class Function:
    """Base class of custom autograd functions (``torch.autograd.Function``)."""

    @staticmethod
    def forward(*args: Any, **kwargs: Any) -> Any:
        """The function itself, run without recording a graph."""
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function."
        )

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Any) -> Any:
        """Save what backward needs; only for a ``forward`` without ``ctx``."""
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        """The gradients of the inputs, given the gradients of the outputs."""
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD."
        )

    vjp = backward

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. Please use "
            "new-style autograd function with static forward method. (Example: "
            "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)"
        )

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` on ``args`` and record one node whose backward is ``backward``."""
        if any(type(a) is RemoteTensor for a in args):
            from .remote_function import apply_remote

            return apply_remote(cls, args, kwargs)
        return _apply_embedded(cls, args, kwargs)


def uses_setup_context(cls: type) -> bool:
    """Whether ``forward`` takes no ctx (``setup_context`` is overridden)."""
    return cls.setup_context is not Function.setup_context  # type: ignore[attr-defined]


def run_forward(cls: type, ctx: Any, args: tuple, kwargs: dict) -> Any:
    """``forward`` without recording, then ``setup_context`` for the new style."""
    with no_grad():
        if uses_setup_context(cls):
            out = cls.forward(*args, **kwargs)  # type: ignore[attr-defined]
            cls.setup_context(ctx, args, out)  # type: ignore[attr-defined]
        else:
            out = cls.forward(ctx, *args, **kwargs)  # type: ignore[attr-defined]
    return out


def user_backward(cls: type) -> Any:
    """The backward a Function defines: ``backward``, or ``vjp`` (PyTorch's other name)."""
    has_backward = cls.backward is not Function.backward  # type: ignore[attr-defined]
    has_vjp = cls.vjp is not Function.vjp  # type: ignore[attr-defined]
    if has_backward and has_vjp:
        raise RuntimeError(
            "Implementing both 'backward' and 'vjp' for a custom Function is not allowed. You "
            "should only implement one of them."
        )
    return cls.vjp if has_vjp else cls.backward  # type: ignore[attr-defined]


def _user_backward(node: Any, grads: tuple) -> Any:
    return user_backward(node.function_class)(node, *grads)


def _apply_embedded(cls: type, args: tuple, kwargs: dict) -> Any:
    node = node_class(cls, fnode.FunctionNode)(
        getattr(cls, "_backward_name", f"{cls.__name__}Backward"), args, _user_backward
    )
    node.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    out = run_forward(cls, node, args, kwargs)
    if not (_mode.enabled and any(node.needs_input_grad)):
        return out
    outs = list(out) if type(out) is tuple else [out]
    result = fnode.connect_outputs(
        node, args, outs, getattr(node, "non_diff", set()), getattr(node, "dirty", set())
    )
    node.keep_saved(node.to_save, result)
    return tuple(result) if type(out) is tuple else result[0]


def once_differentiable(fn: Any) -> Any:
    """Decorate a ``backward`` that is not itself differentiable: it runs without recording,
    and differentiating its results (after ``create_graph``) raises PyTorch's error."""

    @functools.wraps(fn)
    def wrapper(ctx: Any, *args: Any) -> Any:
        with no_grad():
            outputs = fn(ctx, *args)
        if not _mode.enabled or not any(getattr(a, "requires_grad", False) for a in args):
            return outputs
        return fnode.delay_error(outputs if type(outputs) is tuple else (outputs,))

    wrapper._gradd_once_differentiable = True  # type: ignore[attr-defined]
    return wrapper
