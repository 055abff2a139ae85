"""``s.autograd.functional``: PyTorch's ``jacobian``, ``hessian``, ``vjp``, ``jvp``, ``vhp`` and
``hvp``, built on ``autograd.grad`` as PyTorch builds them, for both kinds of session.

Same structures (a Tensor or tuples, following whether inputs and outputs are tuples), strict
mode checks and messages. ``jvp`` and ``hvp`` use the double-backward trick, as PyTorch does.
``vectorize=True`` (PyTorch's vmap over the basis) and ``strategy="forward-mode"`` (PyTorch's
forward AD) compute the same numbers here by the reverse-mode loop; their argument checks and
errors are PyTorch's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradd.engine import autograd as engine_autograd
from gradd.engine.autograd import _size
from gradd.engine.grad_mode import _mode, enable_grad, set_grad_enabled
from gradd.engine.op_table import OPS
from gradd.engine.tensor import Tensor

from . import remote_autograd
from .remote_tensor import RemoteTensor

NAMES = ("vjp", "jvp", "jacobian", "hessian", "vhp", "hvp")
_TENSORS = (Tensor, RemoteTensor)


def _as_tuple(inp: Any, arg_name: str, fn_name: str) -> tuple[bool, tuple]:
    is_tuple = isinstance(inp, tuple)
    items = inp if is_tuple else (inp,)
    for i, el in enumerate(items):
        if not isinstance(el, _TENSORS):
            where = f"value at index {i}" if is_tuple else f"given {arg_name}"
            raise TypeError(
                f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors "
                f"but the {where} has type {type(el)}."
            )
    return is_tuple, items


def _post(res: Any, to_unpack: Any) -> Any:
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            res = tuple(el[0] for el in res)
        if not to_unpack[0]:
            res = res[0]
    elif not to_unpack:
        res = res[0]
    return res


def _pre(inputs: tuple, create_graph: bool, need_graph: bool) -> tuple:
    return tuple(
        t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(need_graph)
        for t in inputs
    )


def _grad_post(items: tuple, create_graph: bool) -> tuple:
    if isinstance(items[0], _TENSORS):
        return items if create_graph else tuple(t.detach() for t in items)
    return tuple(_grad_post(t, create_graph) for t in items)


def _validate_v(v: tuple, other: tuple, is_other_tuple: bool) -> None:
    if len(other) != len(v):
        if is_other_tuple:
            raise RuntimeError(
                f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}."
            )
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, other)):
        if tuple(a.shape) != tuple(b.shape):
            pre = f"Entry {i} in " if is_other_tuple else ""
            raise RuntimeError(
                f"{pre}v has invalid size: should be {_size(b.shape)} but got {_size(a.shape)}."
            )


_INDEPENDENT = {
    "hessian": "The hessian of the user-provided function with respect to input {i} is "
    "independent of the input. This is not allowed in strict mode. You should ensure that your "
    "function is thrice differentiable and that the hessian depends on the inputs.",
    "jacobian": "While computing the hessian, found that the jacobian of the user-provided "
    "function with respect to input {i} is independent of the input. This is not allowed in "
    "strict mode. You should ensure that your function is twice differentiable and that the "
    "jacobian depends on the inputs (this would be violated by a linear function for example).",
    "grad_inputs": "The gradient with respect to input {i} is independent of the inputs of the "
    "user-provided function. This is not allowed in strict mode.",
    "outputs": "Output {i} of the user-provided function does not require gradients. The outputs "
    "must be computed in a differentiable manner from the input when running in strict mode.",
}


def _check_requires_grad(items: tuple, kind: str, strict: bool) -> None:
    if not strict:
        return
    for i, t in enumerate(items):
        if t is None:
            raise RuntimeError(
                f"The output of the user-provided function is independent of input {i}. "
                "This is not allowed in strict mode."
            )
        if not t.requires_grad:
            raise RuntimeError(_INDEPENDENT[kind].format(i=i))


def _autograd_grad(
    outputs: tuple, inputs: tuple, grad_outputs: tuple | None = None, create_graph: bool = False
) -> tuple:
    grad_outputs = grad_outputs if grad_outputs is not None else (None,) * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    grad = remote_autograd.grad if type(inputs[0]) is RemoteTensor else engine_autograd.grad
    return grad(
        [o for o, _ in pairs],
        list(inputs),
        [g for _, g in pairs],
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )


_ZERO_MSG = {
    "back": "The output of the user-provided function is independent of input {i}. This is not "
    "allowed in strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
    "grad_outputs when using the double backward trick to compute forward mode gradients. This "
    "is not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. "
    "This is not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} "
    "in the grad_jacobian. This is not allowed in strict mode as it prevents from using the "
    "double backward trick to replace forward mode AD.",
}


def _fill_in_zeros(
    grads: tuple, refs: tuple, strict: bool, create_graph: bool, stage: str
) -> tuple:
    res = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(_ZERO_MSG[stage].format(i=i))
            g = OPS["zeros_like"].call(refs[i])
        elif strict and create_graph and not g.requires_grad:
            which = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(
                f"The {which} of the user-provided function is independent of input {i}. This "
                "is not allowed in strict mode when create_graph=True."
            )
        res.append(g)
    return tuple(res)


def _outputs(func: Callable, inputs: tuple, fn_name: str, strict: bool) -> tuple[bool, tuple]:
    is_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", fn_name)
    _check_requires_grad(outputs, "outputs", strict)
    return is_tuple, outputs


def _v_for(v: Any, against: tuple, is_tuple: bool, fn_name: str, create_graph: bool) -> tuple:
    _, v = _as_tuple(v, "v", fn_name)
    v = _pre(v, create_graph, need_graph=False)
    _validate_v(v, against, is_tuple)
    return v


def _v_or_none(v: Any, inputs: tuple, is_tuple: bool, fn_name: str, create_graph: bool) -> Any:
    if v is not None:
        return _v_for(v, inputs, is_tuple, fn_name, create_graph)
    if len(inputs) != 1 or inputs[0].numel() != 1:
        raise RuntimeError(
            "The vector v can only be None if the input to the user-provided function is a "
            "single Tensor with a single element."
        )
    return None


def _zeros_requiring_grad(refs: tuple) -> tuple:
    return tuple(OPS["zeros_like"].call(t).requires_grad_(True) for t in refs)


def vjp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """(func(inputs), v^T J): the vector-Jacobian product at ``inputs``."""
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _pre(inputs, create_graph, need_graph=True)
        is_out_tuple, outputs = _outputs(func, inputs, "vjp", strict)
        if v is not None:
            v = _v_for(v, outputs, is_out_tuple, "vjp", create_graph)
        elif len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the user-provided function returns a single "
                "Tensor with a single element."
            )
    with set_grad_enabled(True if create_graph else _mode.enabled):
        res = _autograd_grad(outputs, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "back")
    return (
        _post(_grad_post(outputs, create_graph), is_out_tuple),
        _post(_grad_post(res, create_graph), is_in_tuple),
    )


def jvp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """(func(inputs), J v): the Jacobian-vector product, by the double-backward trick."""
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _pre(inputs, create_graph, need_graph=True)
        v = _v_or_none(v, inputs, is_in_tuple, "jvp", create_graph)
        is_out_tuple, outputs = _outputs(func, inputs, "jvp", strict)
        # The backward is linear in grad_outputs, so their value (zeros) does not matter.
        grad_outputs = _zeros_requiring_grad(outputs)
        grad_inputs = _autograd_grad(outputs, inputs, grad_outputs, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    with set_grad_enabled(True if create_graph else _mode.enabled):
        res = _autograd_grad(grad_inputs, grad_outputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, outputs, strict, create_graph, "back_trick")
    return (
        _post(_grad_post(outputs, create_graph), is_out_tuple),
        _post(_grad_post(res, create_graph), is_in_tuple),
    )


def jacobian(
    func: Callable,
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
) -> Any:
    """The Jacobian of ``func`` at ``inputs``: out.shape + input.shape per (output, input)."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
            'function has more outputs than inputs, "forward-mode" tends to be more performant. '
            'Otherwise, prefer to use "reverse-mode".'
        )
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(
                "torch.autograd.functional.jacobian: `create_graph=True` and "
                '`strategy="forward-mode"` are not supported together (yet). Please either set '
                '`create_graph=False` or `strategy="reverse-mode"`.'
            )
        if not vectorize:
            raise NotImplementedError(  # "isonly": PyTorch's spelling
                "Computing Jacobian using forward-AD or forward-over-reverse Hessian isonly "
                "implemented for `vectorize=True`."
            )
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _pre(inputs, create_graph, need_graph=True)
        is_out_tuple, outputs = _outputs(func, inputs, "jacobian", strict)
        if vectorize and strict:
            raise RuntimeError(
                "torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are "
                "not supported together. Please either set `strict=False` or `vectorize=False`."
            )
        jac = []
        for i, out in enumerate(outputs):
            rows: list[list] = [[] for _ in inputs]
            flat = out.reshape(-1)
            for j in range(out.numel()):
                vj = _autograd_grad((flat[j],), inputs, create_graph=create_graph)
                for k, (row, g, inp) in enumerate(zip(rows, vj, inputs)):
                    if g is None:
                        if strict:
                            raise RuntimeError(
                                f"Output {i} of the user-provided function is independent of "
                                f"input {k}. This is not allowed in strict mode."
                            )
                        g = OPS["zeros_like"].call(inp)
                    elif strict and create_graph and not g.requires_grad:
                        raise RuntimeError(
                            "The jacobian of the user-provided function is independent of "
                            f"input {i}. This is not allowed in strict mode when "
                            "create_graph=True."
                        )
                    row.append(g)
            jac.append(
                tuple(
                    OPS["stack"].call(row, dim=0).view(*out.shape, *inputs[k].shape)
                    for k, row in enumerate(rows)
                )
            )
        return _post(_grad_post(tuple(jac), create_graph), (is_out_tuple, is_in_tuple))


def hessian(
    func: Callable,
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
) -> Any:
    """The Hessian of a scalar ``func`` at ``inputs`` (the Jacobian of its gradient)."""
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def single_output(*inp: Any) -> Any:
        out = func(*inp)
        is_out_tuple, t_out = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(t_out, "outputs", strict)
        if is_out_tuple or not isinstance(out, _TENSORS):
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError(
                "The Tensor returned by the function given to hessian should contain a single "
                "element"
            )
        return out.squeeze()

    def jac_func(*inp: Any) -> Any:
        if outer_jacobian_strategy == "forward-mode":
            inp = tuple(t.requires_grad_(True) for t in inp)
        jac = jacobian(single_output, inp, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    res = jacobian(
        jac_func,
        inputs,
        create_graph=create_graph,
        strict=strict,
        vectorize=vectorize,
        strategy=outer_jacobian_strategy,
    )
    return _post(res, (is_in_tuple, is_in_tuple))


def _scalar_output(func: Callable, inputs: tuple, fn_name: str, strict: bool) -> tuple:
    is_out_tuple, outputs = _outputs(func, inputs, fn_name, strict)
    if is_out_tuple or not isinstance(outputs[0], _TENSORS):
        raise RuntimeError(f"The function given to {fn_name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(
            f"The Tensor returned by the function given to {fn_name} should contain a single "
            "element"
        )
    return is_out_tuple, outputs


def vhp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """(func(inputs), v^T H) for a scalar ``func``."""
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "vhp")
        inputs = _pre(inputs, create_graph, need_graph=True)
        v = _v_or_none(v, inputs, is_in_tuple, "vhp", create_graph)
        is_out_tuple, outputs = _scalar_output(func, inputs, "vhp", strict)
        jac = _autograd_grad(outputs, inputs, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
    with set_grad_enabled(True if create_graph else _mode.enabled):
        res = _autograd_grad(jac, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "double_back")
    return (
        _post(_grad_post(outputs, create_graph), is_out_tuple),
        _post(_grad_post(res, create_graph), is_in_tuple),
    )


def hvp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """(func(inputs), H v) for a scalar ``func``, by the double-backward trick."""
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "hvp")
        inputs = _pre(inputs, create_graph, need_graph=True)
        v = _v_or_none(v, inputs, is_in_tuple, "hvp", create_graph)
        is_out_tuple, outputs = _scalar_output(func, inputs, "hvp", strict)
        jac = _autograd_grad(outputs, inputs, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        grad_jac = _zeros_requiring_grad(inputs)
        double_back = _autograd_grad(jac, inputs, grad_jac, create_graph=True)
        _check_requires_grad(jac, "hessian", strict)
    with set_grad_enabled(True if create_graph else _mode.enabled):
        res = _autograd_grad(double_back, grad_jac, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "double_back_trick")
    return (
        _post(_grad_post(outputs, create_graph), is_out_tuple),
        _post(_grad_post(res, create_graph), is_in_tuple),
    )
