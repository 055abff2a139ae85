"""The backward pass: one topological walk from the roots, then one reverse loop.

Like micrograd's ``backward`` but iterative (deep graphs never hit Python's recursion limit),
with PyTorch's rules: gradients are summed back to each input's shape and dtype, leaves
accumulate into ``.grad``, saved buffers are freed unless ``retain_graph``, and with
``create_graph`` the backward formulas themselves are recorded (they are written in ops).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .copy_slices import refresh_view
from .device import CPU
from .errors import NO_GRAD_FN, AutogradError, check_backward_root
from .function_node import OutputEdge
from .grad_mode import _mode
from .layout import grad_layout
from .memory_meter import _active
from .memory_meter import used as _metered
from .node import AccumulateGrad, Node
from .tensor import Tensor, wrap


def backward(
    tensors: Sequence[Tensor],
    grad_tensors: Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | Tensor | None = None,
) -> None:
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves (or ``inputs``)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    grads = list(grad_tensors) if grad_tensors is not None else [None] * len(tensors)
    only = None
    if inputs is not None:
        only = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        if not only:
            raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    _run(list(tensors), grads, retain_graph, create_graph, capture=None, only=only)


def grad(
    outputs: Sequence[Tensor] | Tensor,
    inputs: Sequence[Tensor] | Tensor,
    grad_outputs: Sequence[Tensor | None] | Tensor | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) without touching any ``.grad``, as ``torch.autograd.grad``."""
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        gos: list = [None] * len(outs)
    elif isinstance(grad_outputs, Tensor):
        gos = [grad_outputs]
    else:
        gos = list(grad_outputs)
    for t in ins:
        if not t.requires_grad:
            raise AutogradError("One of the differentiated Tensors does not require grad")
    captured: dict[int, Any] = {}
    _run(outs, gos, retain_graph, create_graph, capture=(ins, captured), only=None)
    result = []
    for t in ins:
        g = captured.get(id(t))
        if g is None and not allow_unused:
            raise AutogradError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        result.append(g)
    return tuple(result)


def _root_grad(t: Tensor, g: Tensor | None, index: int) -> Tensor:
    check_backward_root(t.requires_grad, t._data.size, g is not None, index)
    if g is None:
        dev = t._dev
        d = t._data
        if dev is CPU:  # not ones_like: a Python wrapper around these two calls
            ones = np.empty(d.shape, d.dtype)
            ones.fill(1)
        else:
            with dev.scope():
                ones = dev.xp.ones_like(d)
        return wrap(ones, dev)
    if g.shape != t.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{index}] has a shape of {_size(g.shape)} and "
            f"output[{index}] has a shape of {_size(t.shape)}."
        )
    return g


def _size(shape: tuple) -> str:
    return f"torch.Size([{', '.join(map(str, shape))}])"


def _run(
    roots: list[Tensor],
    root_grads: list,
    retain_graph: bool | None,
    create_graph: bool,
    capture: tuple | None,
    only: list | None,
) -> None:
    if retain_graph is None:
        retain_graph = create_graph
    pending: dict[Any, Any] = {}
    root_nodes = []
    handed: set[int] = set()
    keep: list = []  # arrays handed to .grad fields this pass stay alive, so their ids stay unique
    for i, (t, g) in enumerate(zip(roots, root_grads)):
        if g is not None:
            handed.add(id(g._data))  # the caller's array: never alias it into a .grad
            keep.append(g._data)
        g = _root_grad(t, g, i)
        if t._view is not None and t._vc[0] != t._view_version:
            refresh_view(t, Node)  # its base was written in place since it was made
        node = t.grad_fn if t.grad_fn is not None else _leaf_sink(t)
        root_nodes.append(node)
        pending[node] = pending[node] + g if node in pending else g

    # What to capture (autograd.grad / backward(inputs=...)): the grad flowing into a tensor's
    # node. Everything else that is a leaf accumulates only when nothing is being captured.
    targets: dict[Any, Tensor] = {}
    for t in capture[0] if capture else only or ():
        targets[t.grad_fn if t.grad_fn is not None else _leaf_sink(t)] = t
    captured = capture[1] if capture else None

    order, deps = _topo(root_nodes)
    accumulate_all = captured is None and only is None
    meter = _active.meter if _metered.ever else None
    if meter is not None:
        # The new .grad buffers must fit before anything runs; the pass then never stops half
        # way (its working gradients are counted, not refused: they go when it ends).
        grown = _new_grad_bytes(
            order, accumulate_all, targets if only is not None else None, create_graph
        )
        meter.check(grown, "backward's new .grad buffers")
        meter.lenient += 1
    prev_mode, prev_layouts = _mode.enabled, _mode.layouts
    _mode.enabled = _mode.layouts = create_graph
    try:
        for node in order:
            g = pending.pop(node, None)
            if g is None:
                continue
            if node.pre_hooks:
                for hook in node.pre_hooks:
                    r = hook(g)
                    if r is not None:
                        g = r
            if targets and node in targets and captured is not None:
                captured[id(targets[node])] = g
            if type(node) is AccumulateGrad:
                if accumulate_all or (only is not None and node in targets):
                    _accumulate(node.variable, g, create_graph, handed, keep)
                continue
            holder = None
            if node.retained is not None:
                holder = node.retained()
                if holder is not None:
                    _store_retained(holder, g, create_graph, handed, keep)
            if only is not None and node in targets:
                target = targets[node]
                if target is not holder and target.grad_fn is node:
                    # backward(inputs=[non_leaf]): its .grad gets the gradient flowing into it
                    _store_retained(target, g, create_graph, handed, keep)
            if type(node) is OutputEdge:  # one output of a custom Function: to its node's slot
                node.deliver(g, pending)
                continue
            if node.freed and node.op.saves:
                _ = node.saved  # raises "backward through the graph a second time"
            grads = node.op.backward(node, g)
            for nxt, gi, meta in zip(node.next, grads, node.meta):
                if nxt is None or gi is None:
                    continue
                d = gi._data
                if d.shape != meta[0]:
                    # Undo broadcasting. Without create_graph no graph is needed: reduce the
                    # array directly instead of going through the op.
                    gi = gi.sum_to_size(*meta[0]) if create_graph else _sum_to(gi, meta[0])
                    d = gi._data
                if d.dtype != meta[1]:
                    gi = (
                        wrap(d.astype(meta[1]), gi._dev)
                        if not create_graph
                        else gi.type_as_dtype(_dtype(meta[1]))
                    )
                prev = pending.get(nxt)
                pending[nxt] = gi if prev is None else prev + gi
            if not retain_graph:
                node.release()
    finally:
        _mode.enabled, _mode.layouts = prev_mode, prev_layouts
        if meter is not None:
            meter.lenient -= 1


def _new_grad_bytes(
    order: list, accumulate_all: bool, targets: dict | None, create_graph: bool
) -> int:
    """Bytes of the .grad buffers a pass over ``order`` will allocate (one per leaf or retained
    tensor without a grad yet, or whose grad is replaced rather than added to in place)."""
    total = 0
    for node in order:
        if type(node) is AccumulateGrad:
            if accumulate_all or (targets is not None and node in targets):
                leaf = node.variable
                old = leaf._grad
                if old is None or not accumulates_in_place(create_graph, False):
                    total += leaf._data.nbytes
            continue
        holders = [node.retained() if node.retained is not None else None]
        if targets is not None and node in targets:
            holders.append(targets[node])
        for t in holders:
            if t is not None and t._grad is None:
                total += t._data.nbytes
    return total


def _sum_to(g: Tensor, shape: tuple) -> Tensor:
    d = g._data
    lead = d.ndim - len(shape)
    axes: Any = list(range(lead))
    have = d.shape
    for i, n in enumerate(shape):  # a loop, not a generator: every broadcast input's gradient
        if n == 1 and have[lead + i] != 1:
            axes.append(lead + i)
    axes = tuple(axes)
    return wrap(
        # keepdims: a full reduction must stay an array (a NumPy scalar has no device copy)
        d.sum(axis=axes, keepdims=True).reshape(shape) if axes else d.reshape(shape),
        g._dev,
    )


def _dtype(np_dtype: Any) -> Any:
    from .dtypes import from_numpy

    return from_numpy(np_dtype)


def _leaf_sink(t: Tensor) -> AccumulateGrad:
    from .node import accumulator

    if not t.requires_grad:
        raise AutogradError(NO_GRAD_FN.format(i=0))
    return accumulator(t)


def _topo(roots: list) -> tuple[list, dict]:
    """Nodes reachable from ``roots``, each after every node that feeds it a gradient."""
    deps: dict[Any, int] = dict.fromkeys(roots, 0)  # a node is seen once it has a count
    stack = list(deps)
    while stack:
        node = stack.pop()
        for nxt in node.next:
            if nxt is None:
                continue
            if nxt in deps:
                deps[nxt] += 1
            else:
                deps[nxt] = 1
                stack.append(nxt)
    order = []
    ready = [n for n in dict.fromkeys(roots) if deps[n] == 0]
    while ready:
        node = ready.pop()
        order.append(node)
        for nxt in node.next:
            if nxt is None:
                continue
            deps[nxt] -= 1
            if deps[nxt] == 0:
                ready.append(nxt)
    return order, deps


def _owned(g: Tensor, handed: set, keep: list) -> Any:
    """g's array, copied if another .grad (or the caller) may already hold it."""
    arr = g._data
    if id(arr) in handed or getattr(arr, "base", None) is not None:
        arr = arr.copy()
    handed.add(id(arr))
    keep.append(arr)
    return arr


def accumulates_in_place(create_graph: bool, retained_non_leaf: bool) -> bool:
    """Whether a backward adds into an existing ``.grad`` in place (holders of ``.grad`` see
    the sum, its grad_fn stays) rather than binding a new tensor: PyTorch adds in place unless
    the backward records a graph; a retained non-leaf's grad is always a new sum. The engine
    and the SDK's mirror both follow this."""
    return not create_graph and not retained_non_leaf


def _accumulate(leaf: Tensor, g: Tensor, create_graph: bool, handed: set, keep: list) -> None:
    if leaf._hooks:
        for hook in leaf._hooks:
            r = hook(g)
            if r is not None:
                g = r
    old = leaf._grad
    if old is None and create_graph and g.requires_grad:
        # PyTorch stores a copy that records CopyBackwards (a fresh buffer ``copy_`` from g), so
        # ``.grad``'s own graph starts there.
        from .op_table import OPS  # the ops import this module: look up at call time

        leaf._grad = OPS["copy_"].call(wrap(g._data.copy(), leaf._dev, False), g)
    elif old is None:
        leaf._grad = g if create_graph else wrap(_owned(g, handed, keep), leaf._dev)
        if leaf._layout is not None and not create_graph:
            leaf._grad._layout = grad_layout(leaf._data.shape, leaf._layout)
    elif not accumulates_in_place(create_graph, False):
        leaf._grad = old + g
    else:
        # In place, as PyTorch: whoever holds ``leaf.grad`` sees the sum, and a grad made with
        # create_graph keeps its grad_fn. A buffer stored as handed over may be shared or
        # read-only (a broadcast): it is copied once first.
        arr = old._data
        if getattr(arr, "base", None) is not None or not getattr(arr.flags, "writeable", True):
            old._data = arr = arr.copy()
        arr += g._data
        old._vc[0] += 1


def _store_retained(t: Tensor, g: Tensor, create_graph: bool, handed: set, keep: list) -> None:
    if t._grad is None:
        t._grad = g if create_graph else wrap(_owned(g, handed, keep), t._dev)
    else:
        t._grad = t._grad + g  # accumulates_in_place(..., retained_non_leaf=True) is False
