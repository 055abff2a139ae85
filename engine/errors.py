"""Engine exceptions and PyTorch's messages, shared by the engine, server and SDK.

Each message keeps PyTorch's key phrase so a user can search for it. ``AutogradError`` marks
violations of autograd's rules (the server maps it to FAILED_PRECONDITION); every other error is
a plain RuntimeError/TypeError/ValueError/IndexError about bad arguments (INVALID_ARGUMENT).
"""

from __future__ import annotations


class AutogradError(RuntimeError):
    """An autograd rule was broken (in-place on a leaf, backward twice, ...)."""


LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
LEAF_VIEW_INPLACE = (
    "a view of a leaf Variable that requires grad is being used in an in-place operation."
)
BACKWARD_TWICE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you "
    "call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling "
    "backward."
)
NOT_SCALAR = "grad can be implicitly created only for scalar outputs"
NO_GRAD_FN = "element {i} of tensors does not require grad and does not have a grad_fn"
NOT_FLOAT_GRAD = "only Tensors of floating point dtype can require gradients"
NON_LEAF_REQUIRES_GRAD = (
    "you can only change requires_grad flags of leaf variables. If you want to use a computed "
    "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
)


def modified_inplace(type_name: str, shape: tuple, owner: str, version: int, expected: int) -> str:
    """PyTorch's message for a saved tensor that changed before backward."""
    return (
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{type_name} [{', '.join(map(str, shape))}]], which is output 0 of {owner}, "
        f"is at version {version}; expected version {expected} instead. Hint: the backtrace "
        "further above can point to the operation that failed to compute its gradient. The "
        "variable in question was changed in there or anywhere later. Good luck!"
    )


def check_inplace_allowed(is_leaf: bool, requires_grad: bool, grad_enabled: bool) -> None:
    """Raise as PyTorch does for an in-place op on a leaf that requires grad, outside no_grad."""
    if is_leaf and requires_grad and grad_enabled:
        raise AutogradError(LEAF_INPLACE)


def check_backward_root(
    requires_grad: bool, numel: int, has_gradient: bool, index: int = 0
) -> None:
    """Validate a backward() root the way PyTorch does, before any work is done."""
    if not requires_grad:
        raise AutogradError(NO_GRAD_FN.format(i=index))
    if not has_gradient and numel != 1:
        raise AutogradError(NOT_SCALAR)
