"""In-place ops on views, recorded as PyTorch records them: ``CopySlices`` on the base.

A view remembers how it was made from its base (``Tensor._view``: the chain of view ops, each
with its attributes and its input's shape and dtype). When an in-place op with a graph writes
into a view, the result goes into the view's memory (the base's), and:

- the base's grad_fn becomes a ``CopySlices`` node wrapping the op's own node: its backward
  takes the gradient of the base, hands the view's part of it to the op's backward, and puts
  the op's gradient for self back in that part (the rest passes through unchanged);
- the view's grad_fn becomes ``AsStridedBackward0``, the view regenerated from the new base.

Both backwards are written in recorded ops (the chain replayed, or its view ops' own backward
formulas applied in reverse), so ``create_graph`` and second derivatives work through them.
"""

from __future__ import annotations

import weakref
from typing import Any

from .node import WRITTEN_VIEW, Node, accumulator

_NEEDED = (True,)  # a view step's ``ctx.next``: its input wants a gradient


def view_step(opdef: Any, attrs: dict, source: Any) -> tuple:
    """One link of a view chain: ``opdef`` applied to ``source`` (an engine tensor)."""
    d = source._data
    return (opdef, attrs, (d.shape, d.dtype))


def replay(steps: tuple, x: Any) -> Any:
    """The view that ``steps`` make of ``x`` (a tensor shaped as the base), as recorded ops."""
    from .op_table import record

    for opdef, attrs, _ in steps:
        x = record(opdef, (x,), attrs)
    return x


def scatter_back(steps: tuple, g: Any) -> Any:
    """The adjoint of ``replay``: ``g`` (shaped as the view) placed where the view lies in
    zeros shaped as the base, by the view ops' own backward formulas, last step first."""
    for opdef, attrs, meta in reversed(steps):
        ctx = Node(opdef, "", _NEEDED, attrs, (meta,))
        g = opdef.backward(ctx, g)[0]
    return g


def overlaps(steps: tuple) -> bool:
    """Whether the chain repeats elements (an expand that grew a dim): PyTorch refuses to
    write into such a view."""
    for opdef, attrs, (shape, _) in steps:
        if opdef.name == "expand" and tuple(attrs["sizes"]) != tuple(shape):
            return True
    return False


COPY_SLICES = "torch::autograd::CopySlices"  # PyTorch's name() of the node
OVERLAP_WRITE = (
    "unsupported operation: more than one element of the written-to tensor refers to a single "
    "memory location. Please clone() the tensor before performing the operation."
)


class CopySlicesNode(Node):
    """PyTorch's CopySlices: the op's node (``attrs["fn"]``) applied to the view's part of the
    base's gradient. Freeing it frees the op's node, whose saved tensors it reads."""

    __slots__ = ()

    def release(self) -> None:
        super().release()
        self.attrs["fn"].release()


def _copy_slices_backward(ctx: Any, g: Any) -> tuple:
    fn, steps = ctx.attrs["fn"], ctx.attrs["steps"]
    part = replay(steps, g)
    grads = fn.op.backward(fn, part)
    own = grads[0]
    shape, dtype = fn.meta[0]
    if own is not None:
        if own.shape != shape:
            own = own.sum_to_size(*shape)
        if own._data.dtype != dtype:
            from .dtypes import from_numpy

            own = own.type_as_dtype(from_numpy(dtype))
        # the base's gradient, with the view's part replaced by the op's gradient for self
        base_grad = g + scatter_back(steps, own - part)
    else:
        base_grad = g - scatter_back(steps, part)
    return (base_grad, *grads[1:])


def _as_strided_backward(ctx: Any, g: Any) -> tuple:
    return (scatter_back(ctx.attrs["steps"], g),)


def _node_op(name: str, backward: Any) -> Any:
    """An unregistered op for these nodes: they are made here, never called by name."""
    from .op_table import OpDef

    def forward(xp: Any, self: Any) -> Any:
        raise NotImplementedError  # never run: the node records a write already made

    forward.__name__ = name
    return OpDef(name, forward, grad_fn=name, shape=None, backward=backward, internal=True)


_COPY_SLICES = None
_AS_STRIDED = None


def _ops() -> tuple:
    global _COPY_SLICES, _AS_STRIDED
    if _COPY_SLICES is None:
        _COPY_SLICES = _node_op("CopySlices", _copy_slices_backward)
        _AS_STRIDED = _node_op("AsStridedBackward0", _as_strided_backward)
    return _COPY_SLICES, _AS_STRIDED


def mirror_ops() -> tuple:
    """The ops of the CopySlices and AsStridedBackward0 nodes (the SDK's mirror uses them)."""
    return _ops()


def rebase_view(view: Any, fn: Node) -> None:
    """Record an in-place op (its node ``fn``, whose first input was the view's old value) as
    PyTorch does: CopySlices on the base, AsStridedBackward0 on the view."""
    copy_slices, as_strided = _ops()
    base = view._base
    steps = view._view
    base_fn = base.grad_fn
    if base_fn is None and base.requires_grad:
        base_fn = accumulator(base)
    d = base._data
    base_meta = (d.shape, d.dtype)
    node = CopySlicesNode(
        copy_slices,
        COPY_SLICES,
        (base_fn, *fn.next[1:]),
        {"fn": fn, "steps": steps},
        (base_meta, *fn.meta[1:]),
    )
    base.grad_fn = node
    base.requires_grad = True
    view.grad_fn = Node(as_strided, "AsStridedBackward0", (node,), {"steps": steps}, (base_meta,))
    view.requires_grad = True
    if fn.op.saves_output:
        # The op's saved output is the view: its backward, differentiated again, must reach
        # the base through CopySlices (a weak reference: the node must not keep it alive).
        fn.attrs = {**fn.attrs, WRITTEN_VIEW: (weakref.ref(node), steps, base_meta)}


def view_output_node(written: tuple) -> Node | None:
    """The grad_fn of an in-place op's output written into a view: AsStridedBackward0 of the
    base's CopySlices (None once that graph is gone)."""
    ref, steps, base_meta = written
    node = ref()
    if node is None:
        return None
    return Node(_ops()[1], "AsStridedBackward0", (node,), {"steps": steps}, (base_meta,))


def refresh_view(view: Any, node_type: type) -> None:
    """PyTorch's regenerated grad_fn of a view whose base was written in place after the view
    was made (through another view, or directly): AsStridedBackward0 of the base's grad_fn
    (``node_type``: the engine's Node, or the SDK's mirror node). Without it the view's old
    grad_fn would miss the write. Works on the metadata of any tensor kind."""
    view._view_version = view._vc[0]
    base = view._base
    base_fn = base.grad_fn
    if base_fn is None:
        if not base.requires_grad:
            return
        base_fn = accumulator(base)
    as_strided = _ops()[1]
    if node_type is Node:
        d = base._data
        meta = (d.shape, d.dtype)
        view.grad_fn = Node(
            as_strided, "AsStridedBackward0", (base_fn,), {"steps": view._view}, (meta,)
        )
        view.requires_grad = True
    else:
        view.grad_fn = node_type(as_strided, "AsStridedBackward0", (base_fn,), ())
        view._rg = True  # the mirror's flag (setting requires_grad would send a command)


def write_through(view: Any, result: Any, xp: Any) -> None:
    """Write ``result`` (an array shaped as the view) into the view and so into its base. A
    view op that had to copy (NumPy's reshape of a transposed array) left the view with memory
    of its own: the base's part is then rewritten from the chain's adjoint."""
    xp.copyto(view._data, result, casting="unsafe")
    base = view._base
    if base is None or xp.may_share_memory(view._data, base._data):
        return
    from .grad_mode import no_grad
    from .tensor import wrap

    with no_grad():
        b = wrap(base._data, base._dev)
        part = wrap(view._data, view._dev)
        new = b + scatter_back(view._view, part - replay(view._view, b))
    xp.copyto(base._data, new._data, casting="unsafe")
