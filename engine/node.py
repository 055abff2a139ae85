"""Graph nodes: ``Node`` (an op's backward, PyTorch's ``grad_fn``) and ``AccumulateGrad``.

The graph points only backwards (outputs -> nodes -> inputs), and a node never holds its own
output tensor (it keeps the output's array and rebuilds the tensor when asked), so a finished
graph is freed by reference counting as soon as its last tensor goes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import dtypes as _dt
from .errors import BACKWARD_TWICE, AutogradError, modified_inplace

if TYPE_CHECKING:
    from .op_table import OpDef
    from .tensor import Tensor

# The attribute by which an in-place op's node on a view finds the view's new grad_fn.
WRITTEN_VIEW = "_written_view"
_TYPE_NAMES = {d.name: d.tensor_type.removeprefix("torch.") for d in _dt.ALL}


class Node:
    """One recorded op: what ``backward`` needs and where gradients flow next."""

    __slots__ = (
        "op",
        "label",
        "next",
        "attrs",
        "meta",
        "_saved",
        "_versions",
        "_out",
        "_out_vc",
        "_out_version",
        "freed",
        "pre_hooks",
        "retained",
        "op_device",
        "__weakref__",
    )

    def __init__(self, op: OpDef, label: str, next_: tuple, attrs: dict, meta: tuple | None):
        self.op = op
        self.label = label
        self.next = next_
        self.attrs = attrs
        self.meta = meta  # (shape, dtype) per input, for broadcast reduction and dtype casts
        self._saved: tuple = ()
        self._versions: tuple = ()
        self._out = None
        self._out_vc = None
        self._out_version = 0
        self.freed = False
        self.pre_hooks: list | None = None
        self.retained: weakref.ref | None = None  # a non-leaf output that called retain_grad()
        self.op_device: Any = None  # the output's device, when the op saves its output

    def name(self) -> str:
        """PyTorch's name for this backward function, e.g. ``MulBackward0``."""
        return self.label

    @property
    def next_functions(self) -> tuple:
        """((node_or_None, 0), ...) for each input, as in PyTorch."""
        return tuple((n, 0) for n in self.next)

    @property
    def saved(self) -> tuple:
        """The saved inputs, after checking none was modified in place since."""
        if self.op.saves:
            if self.freed:
                check_saved(self.label, True, (), _tensor_meta)
            for t, v in zip(self._saved, self._versions):  # the hot path: no call, no list
                if v is not None and t._vc[0] != v:
                    check_saved(self.label, False, ((t._vc, v, t),), _tensor_meta)
        return self._saved

    @property
    def output(self) -> Tensor:
        """The op's output, rebuilt without a reference cycle (PyTorch's SavedVariable)."""
        out = self._out
        if self.freed or self._out_vc[0] != self._out_version:
            check_saved(
                self.label, self.freed, ((self._out_vc, self._out_version, out),), _array_meta
            )
        from .tensor import wrap

        grad_fn = self
        written = self.attrs.get(WRITTEN_VIEW)
        if written is not None:  # an in-place op on a view: its output is the view, rebased
            from .copy_slices import view_output_node

            grad_fn = view_output_node(written) or self
        return wrap(out, self.op_device, requires_grad=True, grad_fn=grad_fn)

    def needs(self, i: int) -> bool:
        """Whether input ``i`` wants a gradient (it leads to a leaf that requires grad)."""
        return self.next[i] is not None

    def release(self) -> None:
        """Drop saved buffers after a backward pass that did not retain the graph."""
        self.freed = True
        self._saved = ()
        self._versions = ()
        self._out = None

    def register_prehook(self, hook: Any) -> None:
        """Run ``hook(grad)`` on the gradient flowing into this node (a tensor hook)."""
        if self.pre_hooks is None:
            self.pre_hooks = []
        self.pre_hooks.append(hook)

    def __repr__(self) -> str:
        return f"<{self.label.rsplit('::', 1)[-1]} object at {hex(id(self))}>"


class AccumulateGrad:
    """The sink of a leaf that requires grad: adds incoming gradients into ``leaf.grad``."""

    __slots__ = ("variable", "pre_hooks", "__weakref__")
    label = "AccumulateGrad"
    next: tuple = ()
    next_functions: tuple = ()

    def __init__(self, leaf: Tensor) -> None:
        self.variable = leaf
        self.pre_hooks = None

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"


def accumulator(leaf: Tensor) -> AccumulateGrad:
    """The leaf's one AccumulateGrad while it lives (graphs share it, as in PyTorch)."""
    ref = leaf._acc
    acc = ref() if ref is not None else None
    if acc is None:
        acc = AccumulateGrad(leaf)
        leaf._acc = weakref.ref(acc)
    return acc


def check_saved(label: str, freed: bool, entries: Iterable[tuple], describe: Callable) -> None:
    """What a node's backward reads must still be as it was saved (the engine's nodes and the
    SDK's mirror nodes both ask here): not freed by an earlier backward, and each entry
    (version counter, version when saved, what) not modified in place since; ``describe(what)``
    gives the (shape, dtype name) that PyTorch's error names."""
    if freed:
        raise AutogradError(BACKWARD_TWICE)
    for vc, version, what in entries:
        if vc[0] != version:
            shape, dtype_name = describe(what)
            type_name = _TYPE_NAMES.get(dtype_name, "Tensor")
            raise AutogradError(modified_inplace(type_name, shape, label, vc[0], version))


def _tensor_meta(t: Tensor) -> tuple:
    return t.shape, t.dtype.name


def _array_meta(a: Any) -> tuple:
    return a.shape, str(a.dtype)
