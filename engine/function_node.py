"""The graph node of a custom ``autograd.Function``: one node for all of the function's outputs,
whose backward is a callable (the user's ``backward`` embedded, a replayed program on a server).

As in PyTorch the node is also the function's ``ctx``: attributes the user sets on ``ctx`` live
on it, and ``out.grad_fn.saved_tensors`` reads what ``ctx.save_for_backward`` kept. Engine nodes
have one output each, so a function with several outputs gives each output an ``OutputEdge``
(named as the node, with its ``next_functions``) that hands its gradient to the node's slot; the
backward loop calls the node once, with every output's gradient (``deliver``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import BACKWARD_TWICE, AutogradError
from .memory_meter import _active
from .memory_meter import used as _metered
from .node import Node, _tensor_meta, accumulator, check_saved
from .tensor import Tensor, wrap


class _FunctionOp:
    """What the backward loop asks of ``node.op``: nothing saved the op table's way."""

    name = "custom_function"
    saves: tuple = ()
    saves_output = False

    @staticmethod
    def backward(node: FunctionNode, g: Any) -> tuple:
        return node.run_backward(g if type(g) is list else [g])


FUNCTION_OP = _FunctionOp()


class FunctionCtx:
    """What ``ctx`` offers a custom Function's ``forward``/``setup_context`` (both kinds)."""

    to_save: tuple = ()
    needs_input_grad: tuple = ()

    def save_for_backward(self, *tensors: Any) -> None:
        """Keep tensors for ``backward`` (read them there as ``ctx.saved_tensors``)."""
        for i, t in enumerate(tensors):
            if t is not None and not hasattr(t, "_vc"):  # a tensor of either kind, or None
                raise TypeError(
                    "save_for_backward can only save variables, but argument "
                    f"{i} is of type {type(t).__name__}"
                )
        self.to_save = tensors

    def mark_non_differentiable(self, *tensors: Any) -> None:
        """These outputs get no gradient (their grad in backward is zeros, or None)."""
        self.non_diff = getattr(self, "non_diff", set()) | {id(t) for t in tensors}

    def mark_dirty(self, *tensors: Any) -> None:
        """These inputs were changed in place by ``forward`` (and are returned)."""
        self.dirty = getattr(self, "dirty", set()) | {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool) -> None:
        """Whether outputs that got no gradient pass zeros (default) or None to backward."""
        self.materialize_grads = bool(value)


class FunctionNode(Node, FunctionCtx):
    """``<Name>Backward``: calls ``backward_fn(node, grads)`` once with every output's gradient
    (None for an output that got none, or zeros when ``materialize_grads``)."""

    # No __slots__: a ctx carries the user's attributes (ctx.k = k).

    def __init__(self, label: str, args: tuple, backward_fn: Callable) -> None:
        nxt, meta = [], []
        for a in args:
            if isinstance(a, Tensor):
                meta.append((a._data.shape, a._data.dtype))
                fn = a.grad_fn
                nxt.append(fn if fn is not None else accumulator(a) if a.requires_grad else None)
            else:
                meta.append(None)
                nxt.append(None)
        super().__init__(FUNCTION_OP, label, tuple(nxt), {}, tuple(meta))
        self.backward_fn = backward_fn
        self.out_meta: list = []  # (shape, np dtype, device) per output; None: not a tensor
        self.materialize_grads = True
        self.saved_entries: tuple = ()  # per saved tensor: a Tensor, ("out", i), or None
        self.out_arrays: dict = {}  # a saved output's array and version counter, by index

    # --- saved tensors (PyTorch's SavedVariable rules) ---------------------------------
    @property
    def next_functions(self) -> tuple:
        """((node_or_None, 0), ...) per tensor argument, as PyTorch (others are left out)."""
        return tensor_next_functions(self)

    def keep_saved(self, tensors: tuple, outputs: list) -> None:
        """Keep ``tensors`` for backward: an output by its array (no reference cycle)."""
        entries, versions = [], []
        for t in tensors:
            index = next((i for i, o in enumerate(outputs) if o is t), None)
            if t is None:
                entries.append(None)
                versions.append(None)
            elif index is not None:
                entries.append(("out", index))
                versions.append(t._vc[0])
            else:
                entries.append(t)
                versions.append(t._vc[0])
        self.saved_entries = tuple(entries)
        self._versions = tuple(versions)
        self.out_arrays = {
            e[1]: (outputs[e[1]]._data, outputs[e[1]]._vc, outputs[e[1]].requires_grad)
            for e in entries
            if type(e) is tuple
        }
        self.to_save = ()  # the tensors themselves would make a cycle through saved outputs

    @property
    def saved_tensors(self) -> tuple:
        """The tensors of ``ctx.save_for_backward``, checked unchanged since."""
        if self.freed:
            raise AutogradError(BACKWARD_TWICE)
        out = []
        for entry, version in zip(self.saved_entries, self._versions):
            if entry is None:
                out.append(None)
                continue
            if type(entry) is tuple:
                i = entry[1]
                data, vc, rg = self.out_arrays[i]
                fn = (OutputEdge(self, i) if len(self.out_meta) > 1 else self) if rg else None
                t = wrap(data, self.out_meta[i][2], rg, fn)
                t._vc = vc
            else:
                t = entry
            check_saved(self.label, False, ((t._vc, version, t),), _tensor_meta)
            out.append(t)
        return tuple(out)

    def release(self) -> None:
        super().release()
        self.saved_entries = ()
        self.out_arrays = {}

    # --- backward ------------------------------------------------------------------------
    def run_backward(self, grads: list) -> tuple:
        full = []
        for i, meta in enumerate(self.out_meta):
            g = grads[i] if i < len(grads) else None
            if g is None and meta is not None and self.materialize_grads:
                shape, dtype, dev = meta
                with dev.scope():
                    g = wrap(dev.xp.zeros(shape, dtype), dev)
            full.append(g)
        return self.checked(self.backward_fn(self, tuple(full)))

    def checked(self, result: Any) -> tuple:
        return check_gradients(self.label, self.meta, result)

    def __repr__(self) -> str:
        return f"<gradd.autograd.function.{self.label} object at {hex(id(self))}>"


class OutputEdge:
    """Output ``index`` of a several-output function: the grad_fn its tensor shows (named as
    the function's node, whose attributes it shows too) and the step that hands its gradient
    to the node."""

    __slots__ = ("fn", "index", "next", "pre_hooks", "retained", "freed", "__weakref__")

    def __init__(self, fn: Any, index: int) -> None:
        self.fn = fn
        self.index = index
        self.next = (fn,)
        self.pre_hooks: list | None = None
        self.retained = None
        self.freed = False

    label = property(lambda self: self.fn.label)
    next_functions = property(lambda self: self.fn.next_functions)
    register_prehook = Node.register_prehook

    def name(self) -> str:
        return self.fn.label

    def deliver(self, g: Any, pending: dict) -> None:
        """Put ``g`` in the node's slot for this output (the node runs after every edge)."""
        slots = pending.get(self.fn)
        if slots is None:
            slots = pending[self.fn] = [None] * len(self.fn.out_meta)
        old = slots[self.index]  # an output saved and rebuilt has edges of its own
        slots[self.index] = g if old is None else old + g

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fn, name)  # ctx attributes, saved_tensors, ...

    def __repr__(self) -> str:
        return repr(self.fn)


DIFFERENTIATE_TWICE = (
    "trying to differentiate twice a function that was marked with @once_differentiable"
)


def _differentiated_twice(node: Any, grads: tuple) -> tuple:
    raise RuntimeError(DIFFERENTIATE_TWICE)


def delay_error(outputs: tuple) -> tuple:
    """A ``once_differentiable`` backward's results, when its pass records a graph: aliases
    leading to a node (PyTorch's ``torch::autograd::Error``) that raises if differentiated."""
    leaves = [o.detach().requires_grad_(True) if o is not None else None for o in outputs]
    tensors = tuple(x for x in leaves if x is not None)
    if not tensors:
        return tuple(outputs)
    node = FunctionNode("torch::autograd::Error", tensors, _differentiated_twice)
    aliases = iter(connect_outputs(node, tensors, list(tensors), set(), set()))
    return tuple(next(aliases) if x is not None else None for x in leaves)


def tensor_next_functions(node: Any) -> tuple:
    """A custom Function node's ``next_functions``: its tensor arguments' only."""
    return tuple((n, 0) for n, m in zip(node.next, node.meta) if m is not None)


def check_gradients(label: str, meta: tuple, result: Any) -> tuple:
    """A backward's gradients, one per forward argument (``meta``: (shape, dtype) of each tensor
    argument, None for others), checked as PyTorch checks them."""
    grads = result if type(result) is tuple else (result,)
    n = len(meta)
    if len(grads) > n and all(g is None for g in grads[n:]):
        grads = grads[:n]
    if len(grads) != n:
        raise RuntimeError(
            f"function {label} returned an incorrect number of gradients "
            f"(expected {n}, got {len(grads)})"
        )
    for i, (g, m) in enumerate(zip(grads, meta)):
        if g is None:
            continue
        if m is None:
            raise RuntimeError(
                f"function {label} returned a gradient different than None at position "
                f"{i + 1}, but the corresponding forward input was not a Variable"
            )
        if tuple(g.shape) != tuple(m[0]) and not _expandable(m[0], tuple(g.shape)):
            raise RuntimeError(
                f"Function {label} returned an invalid gradient at index {i} - got "
                f"[{', '.join(map(str, g.shape))}] but expected shape compatible with "
                f"[{', '.join(map(str, m[0]))}]"
            )
    return grads


def _expandable(shape: tuple, to: tuple) -> bool:
    if len(shape) > len(to):
        return False
    return all(s == t or s == 1 for s, t in zip(reversed(shape), reversed(to)))


def connect_outputs(
    node: FunctionNode, args: tuple, outputs: list, non_diff: set, dirty: set
) -> list:
    """Make ``outputs`` (computed without a graph) the outputs of ``node``: PyTorch's rules for
    floating outputs, inputs returned as they are (a view), dirty inputs and non-differentiable
    outputs. Returns the outputs to hand back; charges the node to a session's meter."""
    ins = {id(a) for a in args if isinstance(a, Tensor)}
    several = len(outputs) > 1
    node.out_meta = [
        (o._data.shape, o._data.dtype, o._dev) if isinstance(o, Tensor) else None for o in outputs
    ]
    result = []
    for i, o in enumerate(outputs):
        if not isinstance(o, Tensor):
            result.append(o)
            continue
        if id(o) in dirty:
            if o.grad_fn is None and o.requires_grad:
                raise AutogradError(
                    "a leaf Variable that requires grad has been used in an in-place operation."
                )
        elif id(o) in ins:
            base = o
            o = wrap(o._data, o._dev)
            o._base = base if base._base is None else base._base
            o._vc = base._vc
        if id(outputs[i]) in non_diff or o._data.dtype.kind != "f":
            if id(outputs[i]) not in dirty:
                o.requires_grad = False
                o.grad_fn = None
            result.append(o)
            continue
        o.requires_grad = True
        o.grad_fn = OutputEdge(node, i) if several else node
        result.append(o)
    meter = _active.meter if _metered.ever else None
    if meter is not None:
        meter.charge_node(node, node.label)
    return result
