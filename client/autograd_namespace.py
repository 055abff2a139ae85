"""A session's ``s.autograd``: PyTorch's ``torch.autograd`` names on that session's tensors."""

from __future__ import annotations

import types
from collections.abc import Callable

from . import autograd_functional, custom_function


def autograd_namespace(backward: Callable, grad: Callable) -> types.SimpleNamespace:
    """``backward`` and ``grad`` of one kind of session, with ``Function``, ``function`` and
    ``functional`` (the same for both kinds: they dispatch on the tensors they get)."""
    function = types.SimpleNamespace(
        Function=custom_function.Function,
        FunctionCtx=custom_function.fnode.FunctionCtx,
        once_differentiable=custom_function.once_differentiable,
    )
    functional = types.SimpleNamespace(
        **{n: getattr(autograd_functional, n) for n in autograd_functional.NAMES}
    )
    return types.SimpleNamespace(
        backward=backward,
        grad=grad,
        Function=custom_function.Function,
        function=function,
        functional=functional,
    )
