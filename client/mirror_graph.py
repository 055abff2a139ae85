"""The client's mirror of a remote autograd graph: names and wiring without data.

Each op on remote tensors that records a graph gets a ``MirrorNode`` (PyTorch's grad_fn name,
``next_functions``, the version counters of what its backward will read), and leaves get the
engine's own ``AccumulateGrad``. ``backward`` walks the mirror in the engine's order with the
engine's checks, so the errors PyTorch raises in ``backward()`` (a freed graph, a saved tensor
modified in place, a non-scalar root) are raised at the user's line, before anything is sent,
and the client knows which leaves now have a ``.grad`` without asking the server.
"""

from __future__ import annotations

from typing import Any

from gradd.engine.autograd import _size, _topo
from gradd.engine.copy_slices import refresh_view
from gradd.engine.errors import (
    AutogradError,
    check_backward_root,
)
from gradd.engine.node import AccumulateGrad, accumulator, check_saved

from .errors import AutogradRuleError, rule_error


class MirrorNode:
    """A grad_fn of a remote tensor: ``name()`` and ``next_functions`` as in PyTorch."""

    __slots__ = (
        "op",
        "label",
        "next",
        "saved",
        "out_meta",
        "_out_vc",
        "_out_version",
        "freed",
        "retained",
        "attrs",
    )

    def __init__(
        self, op: Any, label: str, next_: tuple, saved: tuple, attrs: dict | None = None
    ) -> None:
        self.op = op
        self.attrs = attrs  # the op's canonical attributes (the engine's rules read some)
        self.label = label
        self.next = next_
        self.saved = saved  # (version counter, version, shape, dtype) per saved input, or None
        self.out_meta: tuple = ()  # (shape, dtype) of the output, when the op saves it
        self._out_vc: list | None = None  # set by the engine's finish_output_saving
        self._out_version = 0
        self.freed = False
        self.retained: Any = None  # the non-leaf tensor that called retain_grad()

    def name(self) -> str:
        """PyTorch's name for this backward function, e.g. ``MulBackward0``."""
        return self.label

    @property
    def next_functions(self) -> tuple:
        """((node_or_None, 0), ...) per input, as in PyTorch."""
        return tuple((n, 0) for n in self.next)

    def __repr__(self) -> str:
        return f"<{self.label.rsplit('::', 1)[-1]} object at {hex(id(self))}>"


class OpaqueNode(MirrorNode):
    """A grad_fn the client could not mirror (made by create_graph): only its name is known."""

    __slots__ = ()


def node_for(opdef: Any, args: tuple, attrs: dict, tensor_type: type) -> MirrorNode:
    """The mirror node of ``opdef`` applied to ``args`` (the engine's ``make_node`` minus data)."""
    nxt = []
    for a in args:
        if type(a) is tensor_type:
            if a._base is not None and a._vc[0] != a._view_version:
                refresh_view(a, MirrorNode)  # as the engine: its base was written since
            fn = a.grad_fn
            if fn is None and a._rg:
                fn = accumulator(a)
            nxt.append(fn)
        else:
            nxt.append(None)
    g = opdef.grad_fn
    if type(g) is not str:
        meta = [(a.shape, a.dtype.np) if type(a) is tensor_type else None for a in args]
        g = g(*meta, **attrs)
    saved: tuple = ()
    if opdef.saves:
        saved = tuple(
            (a._vc, a._vc[0], a.shape, a.dtype) if type(a) is tensor_type else None
            for a in [args[i] for i in opdef.saves]
        )
    return MirrorNode(opdef, g, tuple(nxt), saved, attrs)


def _check_saved(node: MirrorNode) -> None:
    # The engine's Node.saved and Node.output checks, in that order, by the engine's rule.
    deferred = getattr(node, "deferred_error", None)  # a custom Function's bad gradients
    if deferred is not None:
        raise deferred
    op = node.op
    if not (op.saves or op.saves_output):
        return
    entries = [(e[0], e[1], e[2:]) for e in node.saved if e is not None]
    if node._out_vc is not None:
        entries.append((node._out_vc, node._out_version, node.out_meta))
    try:
        check_saved(node.label, node.freed, entries, _meta)
    except AutogradError as exc:
        raise rule_error(exc) from None


def _meta(shape_dtype: tuple) -> tuple:
    return shape_dtype[0], shape_dtype[1].name


def run_backward(
    root: Any, gradient: Any, retain_graph: bool | None, create_graph: bool, only: Any = None
) -> list:
    """Apply ``root.backward(...)`` to the mirror: check as the engine does, free the graph, and
    return the tensors whose ``.grad`` was written (leaves, or those of ``only`` when given, and
    non-leaves that retain grad)."""
    try:
        check_backward_root(root._rg, root.numel(), gradient is not None)
    except AutogradError as exc:  # the engine's error, as the SDK's
        raise rule_error(exc) from None
    if gradient is not None and tuple(gradient.shape) != tuple(root.shape):
        raise AutogradRuleError(
            f"Mismatch in shape: grad_output[0] has a shape of {_size(gradient.shape)} and "
            f"output[0] has a shape of {_size(root.shape)}."
        )
    if retain_graph is None:
        retain_graph = create_graph
    if root._base is not None and root._vc[0] != root._view_version:
        refresh_view(root, MirrorNode)
    start = root.grad_fn if root.grad_fn is not None else accumulator(root)
    nodes = _reachable(start)
    if not all(_passes(n) for n in nodes):
        _raise_in_engine_order(start, retain_graph)
    written = []
    targets = {id(t) for t in only} if only is not None else None
    opaque = False
    for node in nodes:
        if type(node) is AccumulateGrad:
            if targets is None or id(node.variable) in targets:
                written.append(node.variable)
        elif type(node) is OpaqueNode:
            opaque = True
        else:
            holder = None
            if node.retained is not None:
                holder = node.retained()
                if holder is not None:
                    written.append(holder)
            if targets is not None:
                written += [t for t in only if t.grad_fn is node and t is not holder]
            if not retain_graph:
                node.freed = True
    if opaque:
        _maybe_written(root, only, written)
    return written


def _maybe_written(root: Any, only: Any, written: list) -> None:
    # Behind a graph made by create_graph the mirror cannot see which leaves the pass reaches:
    # those that may get a .grad (the inputs, or the session's leaves that require grad) ask
    # the server when their .grad is read (MAYBE_GRAD).
    known = {id(t) for t in written}
    for t in list(only) if only is not None else list(root._s._leaves):
        if id(t) not in known and not t._has_grad:
            t._has_grad = MAYBE_GRAD


MAYBE_GRAD = 3  # RemoteTensor._has_grad: the server may have a .grad for it (ask on read)


def _reachable(start: Any) -> list:
    """Every node behind ``start``, once each (order does not matter when nothing fails)."""
    seen = {start}
    stack = [start]
    out = []
    while stack:
        node = stack.pop()
        out.append(node)
        for nxt in node.next:
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return out


def _checked(node: Any) -> bool:
    # Mirror nodes with saved tensors to check: ops' and custom Functions' (subclasses).
    return isinstance(node, MirrorNode) and type(node) is not OpaqueNode


def _passes(node: Any) -> bool:
    if not _checked(node):
        return True
    try:
        _check_saved(node)
    except AutogradRuleError:
        return False
    return True


def _raise_in_engine_order(start: Any, retain_graph: bool) -> None:
    # Something fails: walk in the engine's order so the same node fails first (with the same
    # message) and the nodes before it are freed, as the engine leaves them.
    order, _ = _topo([start])
    for node in order:
        if _checked(node):
            _check_saved(node)
            if not retain_graph:
                node.freed = True
