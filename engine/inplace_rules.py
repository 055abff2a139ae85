"""The rules of an in-place op (``t.add_(x)``, ``t[k] = v``), checked on metadata only.

One function for every tensor kind: the engine's ``record_inplace`` calls it on its tensors
and the SDK's remote tensors call it on their mirrors before queueing the op, so a bad
in-place call raises the same PyTorch error embedded and remote, before anything changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import dtypes as dt
from . import shapes
from .errors import LEAF_INPLACE, LEAF_VIEW_INPLACE, AutogradError

# Composite ops that write into their first argument (``t[k] = v``, ``index_put_``): they
# return nothing new, and a leaf that requires grad may not be their first argument.
WRITING_COMPOSITES = frozenset({"setitem", "index_put_", "scatter_", "scatter_add_"})


def check_inplace(opdef: Any, self: Any, args: tuple, attrs: Mapping, grad_on: bool) -> bool:
    """Raise PyTorch's error if ``opdef`` may not write its result into ``self`` (the first of
    ``args``): a leaf, or a view of a leaf, that requires grad while grad mode is on; a result
    of another shape; a result dtype that cannot be cast to self's. Return whether the call
    records a graph (grad mode on, the op differentiable, and some tensor requiring grad)."""
    wants_graph = grad_on and inplace_records_graph(opdef, self, args)
    if not plain_inplace(opdef, self, args):
        check_inplace_result(opdef, self, args, attrs)
    return wants_graph


def inplace_records_graph(opdef: Any, self: Any, args: tuple) -> bool:
    """``check_inplace``'s part while grad mode is on: PyTorch's refusals of a write into a
    leaf (or a view of one) that requires grad, and whether the call records a graph."""
    if self.requires_grad and self.grad_fn is None:
        raise AutogradError(LEAF_INPLACE)
    base = self._base
    if base is not None and base.requires_grad and base.grad_fn is None:
        raise AutogradError(LEAF_VIEW_INPLACE)
    if opdef.backward is None:
        return False
    for a in args:  # a loop, not any(): this runs on every in-place op
        if getattr(a, "requires_grad", False) is True:
            if base is not None:
                _check_single_output_view(self.grad_fn)
            return True
    return False


def plain_inplace(opdef: Any, self: Any, args: tuple) -> bool:
    """The hot case of ``check_inplace`` (``p.sub_(lr * g)``, ``g.zero_()``), where nothing
    about the result can fail and no dtype promotion is needed: an elementwise op, self
    floating point, and every other operand a Python number or a tensor of self's shape and
    dtype. An engine tensor's array answers without making DType objects."""
    rule = opdef.shape
    if rule is not shapes.same and not getattr(rule, "elementwise", False):
        return False
    data = getattr(self, "_data", None)
    if data is None:
        return _plain(self, args)
    if data.dtype.kind != "f":  # an int self may not take a float result (sqrt_)
        return False
    for a in args[1:]:
        t = type(a)
        if t is not float and t is not int and t is not bool:
            d = getattr(a, "_data", None)
            if d is None or d.shape != data.shape or d.dtype != data.dtype:
                return False
    return True


def check_inplace_result(opdef: Any, self: Any, args: tuple, attrs: Mapping) -> None:
    """``check_inplace``'s part on the result: the in-place ops' shape rules check that it
    keeps self's shape, then its dtype must be castable to self's."""
    opdef.shape(*[getattr(a, "shape", None) for a in args], **attrs)
    check_result_dtype(opdef, self, args, attrs)


def _plain(self: Any, args: tuple) -> bool:
    """For a remote tensor (metadata only): whether self is floating point and every other
    operand a Python number or a tensor of self's shape and dtype."""
    shape = self.shape
    dtype = self.dtype
    if not dtype.is_floating_point:
        return False
    for a in args[1:]:
        t = type(a)
        if t is not float and t is not int and t is not bool:
            if getattr(a, "shape", None) != shape or a.dtype is not dtype:
                return False
    return True


# PyTorch's names of the functions that return several views (split_part's ``kind``).
_MULTI_OUTPUT = {"split": "Split", "split_with_sizes": "SplitWithSizes", "unbind": "Unbind"}


def _check_single_output_view(fn: Any) -> None:
    """PyTorch refuses a graph-recording write into one of several views an op returned."""
    attrs = getattr(fn, "attrs", None)
    if fn is None or attrs is None or getattr(fn.op, "name", None) != "split_part":
        return
    raise RuntimeError(
        f"Output {attrs.get('index', 0)} of {_MULTI_OUTPUT[attrs['kind']]} is a view and is "
        "being modified inplace. This view is the output of a function that returns multiple "
        "views. Such functions do not allow the output views to be modified inplace. You should "
        "replace the inplace operation by an out-of-place one."
    )


def check_result_dtype(opdef: Any, self: Any, args: tuple, attrs: Mapping) -> None:
    """PyTorch's error when the op's result dtype cannot be written into self's (a float
    result into an int tensor; a bool tensor can hold only bools)."""
    rule = opdef.dtype
    own = self.dtype
    if rule == "same":
        return
    if rule == "promote" and own.is_floating_point:
        # A float self absorbs Python numbers and same-kind tensors; only a wider category
        # (none above float) could fail, so only other tensors' dtypes are looked at.
        if all(getattr(a, "dtype", own) is own for a in args):
            return
    from .op_table import result_dtype

    cast_check(result_dtype(opdef, args, attrs), own)


def cast_check(src: dt.DType, dst: dt.DType) -> None:
    """PyTorch's error for writing a ``src`` result into a ``dst`` tensor of a lower category."""
    if src.category > dst.category:
        raise RuntimeError(
            f"result type {src.torch_name} can't be cast to the desired output type "
            f"{dst.torch_name}"
        )
