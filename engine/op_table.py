"""The op table: every op is declared once, and everything else derives from the declaration.

An ``OpDef`` holds an op's name, its forward (over an array module ``xp``), its backward
(written in differentiable ops, so ``create_graph`` works), its shape rule, its dtype rule,
PyTorch's ``grad_fn`` name and what it saves. From the table come the Tensor methods, the
``functional`` namespace, the allow-list the server exposes (``OPS``), the SDK's metadata rules
and the generated gradient checks (every op carries ``examples``; an op without one fails the
suite). The annotations of an op's public signature declare what each parameter accepts
(``arg_kinds``); every caller checks its arguments against them before anything runs.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from . import arg_kinds as arg
from . import device as _devices
from . import dtypes as dt
from . import layout as _layout
from .arg_check import check_args, checked, guard_source, kinds_of, signature_of
from .arg_kinds import TENSOR_TYPES
from .copy_slices import OVERLAP_WRITE, overlaps, rebase_view, refresh_view, write_through
from .device import CPU
from .errors import NON_LEAF_REQUIRES_GRAD, AutogradError
from .grad_mode import _mode
from .inplace_rules import check_inplace_result, inplace_records_graph, plain_inplace
from .memory_meter import SCALAR_BYTES, _active
from .memory_meter import used as _metered
from .node import Node, accumulator
from .shapes import elementwise as _elementwise
from .shapes import same as _same

Shape = tuple[int, ...]


class OpDef:
    """One op's declaration. See the module docstring."""

    __slots__ = (
        "name",
        "forward",
        "backward",
        "shape",
        "dtype",
        "grad_fn",
        "arity",
        "saves",
        "saves_output",
        "normalize",
        "examples",
        "method",
        "function",
        "inplace",
        "doc",
        "params",
        "kinds",
        "_call",
        "internal",
        "extras",
        "promotes",
        "view",
        "layout",
        "scratch",
    )

    def __init__(
        self,
        name: str,
        forward: Callable,
        *,
        grad_fn: str | Callable[..., str] | None,
        shape: Callable[..., Any],
        backward: Callable | None = None,
        dtype: str | Callable[..., dt.DType] = "promote",
        arity: int = 1,
        saves: tuple[int, ...] = (),
        saves_output: bool = False,
        normalize: Callable[..., dict] | None = None,
        examples: tuple = (),
        method: bool | str = True,
        function: bool | str = True,
        inplace: bool = False,
        extras: bool = False,
        view: bool | Callable[..., bool] = False,
        layout: str | Callable[..., Any] | None = "auto",
        internal: bool = False,
        scratch: Callable[..., int] | None = None,
    ) -> None:
        self.name = name
        self.forward = forward
        self.backward = backward
        self.shape = shape
        self.dtype = dtype
        self.grad_fn = grad_fn
        self.arity = arity
        self.saves = saves
        self.saves_output = saves_output
        self.normalize = normalize
        self.examples = examples
        self.method = name if method is True else method
        self.function = name if function is True else function
        self.inplace = inplace
        self.extras = extras  # forward returns (out, dict): values its backward needs, not inputs
        self.promotes = dtype in ("promote", "float", "bool")
        # Whether the result views its first input's memory (``view(**attrs)`` when it depends
        # on the arguments): an in-place op with a graph on such a result is refused.
        self.view = view
        # How the result's strides follow from the inputs' (``engine/layout.py``): a view's
        # rule, POINTWISE (TensorIterator's), or None (contiguous). By default ops whose shape
        # is their operands' broadcast are pointwise.
        if layout == "auto":
            layout = _layout.POINTWISE if shape in (_elementwise, _same) else None
        elif layout == _layout.POINTWISE:
            layout = _layout.POINTWISE  # one object: ``record`` tests it by identity
        self.layout = layout
        # Elements of the result's dtype that the forward allocates beside its result and frees
        # before it returns (im2col's column buffer), from the input shapes and attributes:
        # they must fit the session's meter too, so they are checked (never charged).
        self.scratch = scratch
        # Internal ops are pieces of others (index, max_dim, ...): the engine calls them with
        # arguments it made, so they are not checked, and they are not in ``OPS``.
        self.internal = internal
        self.doc = (inspect.getdoc(forward) or "").split("\n")[0]
        # The public signature is the normaliser's if there is one (it maps what users pass to
        # the forward's canonical attributes), else the forward's minus ``xp``.
        if normalize is not None:
            self.params = signature_of(normalize)
        else:
            self.params = signature_of(forward)[1:]
        self.kinds = kinds_of(self.params)
        if inplace and self.kinds:
            self.kinds[0] = arg.Tensor  # ``2 .add_(x)`` has nothing to write into
        self.call = _make_caller(self)

    @property
    def call(self) -> Callable:
        """The op as users call it, arguments checked against the declared kinds."""
        return self._call

    @call.setter
    def call(self, fn: Callable) -> None:
        # A custom caller (composite body, cat's list form...) is checked by its own annotated
        # signature; the generated caller has its check inlined.
        if self.internal or getattr(fn, "_gradd_checked", False):
            self._call = fn
        else:
            self._call = checked(self.name, fn, max(self.arity, 0))

    def derivative(self, fn: Callable) -> Callable:
        """Decorator attaching the backward formula: ``fn(ctx, grad) -> grads per input``."""
        self.backward = fn
        return fn

    @property
    def grad_fn_name(self) -> str | None:
        """PyTorch's grad_fn name (for name rules that depend on arguments, the common one)."""
        g = self.grad_fn
        return g if isinstance(g, str) or g is None else getattr(g, "common", None)

    def __repr__(self) -> str:
        return f"OpDef({self.name!r}, grad_fn={self.grad_fn_name!r})"


# Every public op, by name: the allow-list of the engine's ``call_op`` and of the server.
# Composite ops (built from others) are here too; internal ops are only in ``OP_TABLE``.
OPS: dict[str, OpDef] = {}
# Every declared op, internal ones included (gradient checks, the SDK's bookkeeping).
OP_TABLE: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    """Add an op to the table; names are unique."""
    if opdef.name in OP_TABLE:
        raise ValueError(f"op {opdef.name!r} declared twice")
    OP_TABLE[opdef.name] = opdef
    if not opdef.internal:
        OPS[opdef.name] = opdef
    return opdef


def op(name: str | None = None, **decl: Any) -> Callable[[Callable], OpDef]:
    """Decorator form: ``@op("mul", grad_fn="MulBackward0", ...)`` on the forward function."""

    def deco(forward: Callable) -> OpDef:
        return register(OpDef(name or forward.__name__.rstrip("_"), forward, **decl))

    return deco


def composite(
    name: str,
    *,
    examples: tuple,
    method: bool | str = False,
    function: bool | str = True,
    arity: int = 1,
) -> Callable[[Callable], OpDef]:
    """Declare an op written in terms of other ops; its graph and gradient come from them.
    ``arity``: how many leading parameters are inputs, one of which must be a tensor (0 for
    einsum, whose tensors follow its equation)."""

    def deco(fn: Callable) -> OpDef:
        d = OpDef(
            name,
            _composite_forward(fn),
            grad_fn=None,
            shape=None,  # derived by tracing the ops it calls
            examples=examples,
            method=method,
            function=function,
        )
        d.arity = arity  # after the generated caller (replaced below) was made
        d.params = signature_of(fn)
        d.kinds = kinds_of(d.params)
        d.call = fn
        d.doc = (inspect.getdoc(fn) or "").split("\n")[0]
        return register(d)

    return deco


def _composite_forward(fn: Callable) -> Callable:
    def forward(xp: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    forward.__module__ = fn.__module__  # the declaring module names the op's family
    return forward


def unknown_op(name: str, shown: str) -> str:
    """The error for an op name that is not public: the closest public names, if any (the list
    of every op is too long for a message)."""
    near = difflib.get_close_matches(name, OPS, n=3) if len(name) <= 64 else []
    hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
    return f"unknown op {shown}{hint}"


def call_op(name: str, *args: Any, **kwargs: Any) -> Any:
    """Run a public op by name, as the server does for a client's request."""
    try:
        d = OPS[name]
    except KeyError:
        raise ValueError(unknown_op(name, repr(name))) from None
    return d.call(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Recording: run an op's forward and, when a graph is wanted, its node.

_new = object.__new__
_NDARRAY = np.ndarray
_POINTWISE = _layout.POINTWISE
_result_layout = _layout.result_layout


def _wrap_factory() -> Callable:
    from .tensor import Tensor, wrap, wrap_charged

    return Tensor, wrap, wrap_charged


Tensor: Any = None
wrap: Any = None
_wrap_charged: Any = None


def _bind_tensor() -> None:
    global Tensor, wrap, _wrap_charged
    Tensor, wrap, _wrap_charged = _wrap_factory()
    TENSOR_TYPES.add(Tensor)


def result_dtype(opdef: OpDef, args: tuple, attrs: Mapping) -> dt.DType:
    """The output dtype for these arguments, by the op's dtype rule."""
    rule = opdef.dtype
    if rule == "bool":
        return dt.bool_
    if rule == "promote":
        return dt.result_type(*args) if opdef.arity != 1 else args[0].dtype
    if rule == "float":
        r = dt.result_type(*args) if opdef.arity != 1 else args[0].dtype
        return r if r.is_floating_point else dt.default_float
    if rule == "same":
        return args[0].dtype
    return rule(*args, **attrs)


def shared_float_dtype(operands: Any) -> Any:
    """The dtype every tensor of ``operands`` shares when it is a float one (arrays' or tensors'
    dtypes alike; Python scalars are weak, as PyTorch's, and never change it), else None: the
    fast path of the dtype rules, where no promotion and no cast is needed."""
    ndt = None
    for x in operands:
        t = type(x)
        if t is float or t is int or t is bool:
            continue
        try:
            d = x.dtype
        except AttributeError:  # not a tensor or number: result_type raises the TypeError
            return None
        if ndt is None:
            if d.kind != "f":
                return None
            ndt = d
        elif d is not ndt and d != ndt:
            return None
    return ndt


def output_dtype(opdef: OpDef, args: tuple, attrs: Mapping) -> dt.DType:
    """``result_dtype``, by the fast path when it applies (the SDK's metadata rule)."""
    if opdef.dtype == "bool":
        return dt.bool_
    if opdef.promotes:
        shared = shared_float_dtype(args)
        if shared is not None:
            return shared
    return result_dtype(opdef, args, attrs)


# The attributes of every call of an op that has none: one shared mapping, read-only (nodes
# keep their attributes; rules and backward formulas only read them).
NO_ATTRS: Mapping = MappingProxyType({})


def record(opdef: OpDef, args: tuple, attrs: dict) -> Any:
    """Run ``opdef`` on ``args`` (tensors or Python scalars) and record its node if needed."""
    first = args[0]
    if type(first) is Tensor:
        dev = first._dev
        if len(args) > 1 and _devices._cuda:  # until a GPU is used, every tensor is on the CPU
            for a in args:
                if type(a) is Tensor and a._dev is not dev:
                    raise _mixed_devices(dev, a._dev)
    else:
        for a in args:  # ``2 - t``: the first tensor decides
            if type(a) is Tensor:
                break
            hook = getattr(a, "_gradd_record", None)
            if hook is not None:  # another tensor kind (the SDK's remote tensors) records itself
                return hook(opdef, args, attrs)
        dev = _device_of(args)
    # The arrays, and whether the dtype rule has work to do: none when every tensor shares
    # one float dtype (Python numbers never change it), decided inline for the hot shapes of
    # call (one or two operands, NumPy arrays) as ``shared_float_dtype`` decides.
    promote = opdef.promotes
    n = len(args)
    if n == 2:
        x, y = args
        if type(x) is Tensor:
            x = x._data
        if type(y) is Tensor:
            y = y._data
        datas: Any = (x, y)
        if promote:
            if type(x) is _NDARRAY:
                dx = x.dtype
                ty = type(y)
                if ty is _NDARRAY:
                    dy = y.dtype
                    promote = dx.kind != "f" or (dy is not dx and dy != dx)
                elif ty is float or ty is int or ty is bool:
                    promote = dx.kind != "f"
                else:
                    promote = shared_float_dtype(datas) is None
            else:
                promote = shared_float_dtype(datas) is None
    elif n == 1 and type(first) is Tensor:
        x = first._data
        datas = (x,)
        if promote:
            if type(x) is _NDARRAY:
                promote = x.dtype.kind != "f"
            else:
                promote = shared_float_dtype(datas) is None
    else:
        datas = [a._data if type(a) is Tensor else a for a in args]
        if promote:
            promote = shared_float_dtype(datas) is None
    out_dt = None
    if promote:
        out_dt = result_dtype(opdef, args, attrs)
    meter = _active.meter if _metered.ever else None
    if meter is not None:  # a session's op: its result must fit before it is computed
        nbytes = _elementwise_nbytes(opdef, datas) if out_dt is None else -1
        if nbytes < 0:
            nbytes = predicted_nbytes(opdef, args, attrs, out_dt)
        if opdef.scratch is not None:
            nbytes += scratch_nbytes(opdef, args, attrs)
        if nbytes > SCALAR_BYTES:
            meter.check(nbytes, op=opdef.name)
    elif opdef.scratch is not None:  # no session limit: still never past the machine's memory
        check_machine_fits(
            predicted_nbytes(opdef, args, attrs, out_dt) + scratch_nbytes(opdef, args, attrs)
        )
    if promote:
        # Comparisons compute in the promoted dtype; only their result is bool.
        cdt = (dt.result_type(*args) if opdef.dtype == "bool" else out_dt).np
        datas = [
            x.astype(cdt) if type(a) is Tensor and x.dtype != cdt else x
            for a, x in zip(args, datas)
        ]
    try:
        if dev is CPU:
            out = opdef.forward(np, *datas, **attrs) if attrs else opdef.forward(np, *datas)
        else:
            with dev.scope():  # the op's arrays are made on, and run on, its GPU
                out = opdef.forward(dev.xp, *datas, **attrs)
    except (ValueError, OverflowError) as exc:  # NumPy's words (an int64 tensor + 2**63 is an
        # OverflowError); PyTorch users expect its RuntimeError and message
        raise _explain(opdef, args, attrs, exc) from None
    if opdef.extras:
        out, extra = out
        attrs = {**attrs, **extra}
        if meter is not None:  # kept by the node for backward: counted while it lives
            for v in extra.values():
                if hasattr(v, "base"):
                    meter.charge(v)
    if type(out) is not _NDARRAY and isinstance(out, np.generic):
        out = np.asarray(out)
    if out_dt is not None and out.dtype != out_dt.np:
        out = out.astype(out_dt.np)
    if meter is not None and (out.base is not None or out.nbytes > SCALAR_BYTES):
        meter.charge(out)
    node = None
    if opdef.backward is not None and _mode.enabled:
        for a in args:
            if type(a) is Tensor and a.requires_grad:
                if out.dtype.kind == "f":
                    node = make_node(opdef, args, attrs, out, dev)
                break
    if node is None:
        t = _wrap_charged(out, dev)
    else:
        t = _wrap_charged(out, dev, True, node)
        if meter is not None:
            meter.charge_node(node, opdef.name)
    rule = opdef.layout
    if rule is _POINTWISE:  # contiguous operands (nearly all) make a contiguous result
        for a in args:
            if type(a) is Tensor and a._layout is not None:
                if _mode.layouts:
                    t._layout = _result_layout(opdef, args, attrs, out.shape)
                break
    elif rule is not None and _mode.layouts:
        t._layout = _result_layout(opdef, args, attrs, out.shape)
    if opdef.view and is_view(opdef, attrs):
        # A view shares its base's version counter and remembers how it was made from it
        # (what an in-place op on it needs to record CopySlices).
        base = first._base
        t._base = first if base is None else base
        t._vc = first._vc
        t._view_version = first._vc[0]
        step = (opdef, attrs, (first._data.shape, first._data.dtype))
        chain = first._view
        t._view = (step,) if chain is None else (*chain, step)
    return t


def _elementwise_nbytes(opdef: OpDef, datas: list) -> int:
    """``predicted_nbytes`` of the hot case, cheaply (-1 when it is not that case): an
    elementwise op whose operands share one shape. Call it only when no promotion is needed
    (every tensor has one float dtype), as ``record`` knows."""
    rule = opdef.shape
    if (rule is not _elementwise and rule is not _same) or not opdef.promotes or opdef.extras:
        return -1
    first = datas[0]
    shape = getattr(first, "shape", None)
    if shape is None:
        return -1
    for x in datas:
        t = type(x)
        if t is not float and t is not int and t is not bool and x.shape != shape:
            return -1
    return first.size if opdef.dtype == "bool" else first.nbytes


def predicted_nbytes(
    opdef: OpDef, args: tuple, attrs: Mapping, out_dt: dt.DType | None = None
) -> int:
    """Bytes ``opdef`` will allocate for its result at these arguments, from its shape and dtype
    rules, before its forward runs (``out_dt``: the result dtype, when already known).

    A view allocates nothing; a composite op's own ops predict theirs; an op with ``extras``
    keeps an array of its result's size for backward (dropout's mask), so it counts twice.
    """
    rule = opdef.shape
    if rule is None or (opdef.view and is_view(opdef, attrs)):
        return 0
    if out_dt is None:
        datas = [a._data if type(a) is Tensor else a for a in args]
        if shared_float_dtype(datas) is not None:
            nbytes = _elementwise_nbytes(opdef, datas)
            if nbytes >= 0:
                return nbytes
    try:
        numel = math.prod(rule(*[getattr(a, "shape", None) for a in args], **attrs))
    except Exception:  # bad arguments: the forward reports them in PyTorch's words
        return 0
    if numel <= 0:
        return 0
    itemsize = _result_itemsize(opdef, args, attrs) if out_dt is None else out_dt.itemsize
    nbytes = numel * itemsize
    return 2 * nbytes if opdef.extras else nbytes


def _machine_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no bound known
        return 1 << 62


MACHINE_BYTES = _machine_bytes()


def check_machine_fits(nbytes: int) -> None:
    """PyTorch's allocator error for a request larger than this machine's memory, raised
    before anything is allocated (the OS would grant it lazily, then kill the process)."""
    if nbytes > MACHINE_BYTES:
        raise RuntimeError(
            f"DefaultCPUAllocator: can't allocate memory: you tried to allocate {nbytes} bytes."
        )


def scratch_nbytes(opdef: OpDef, args: tuple, attrs: Mapping) -> int:
    """Bytes of the temporaries ``opdef``'s forward makes beside its result (its ``scratch``)."""
    try:
        numel = opdef.scratch(*[getattr(a, "shape", None) for a in args], **attrs)
    except Exception:  # bad arguments: the forward reports them in PyTorch's words
        return 0
    return max(numel, 0) * _result_itemsize(opdef, args, attrs)


def _result_itemsize(opdef: OpDef, args: tuple, attrs: Mapping) -> int:
    try:
        return result_dtype(opdef, args, attrs).itemsize
    except Exception:  # bad arguments: the forward reports them; count the widest dtype
        return 8


def is_view(opdef: OpDef, attrs: dict) -> bool:
    """Whether this call of ``opdef`` returns a view of its first input."""
    v = opdef.view
    return v if type(v) is bool else v(**attrs)


def _explain(opdef: OpDef, args: tuple, attrs: dict, exc: Exception) -> Exception:
    """Turn an array-library error into PyTorch's, via the op's shape rule when it applies."""
    if opdef.shape is not None:
        try:
            opdef.shape(*[getattr(a, "shape", None) for a in args], **attrs)
        except (RuntimeError, IndexError, ValueError) as rule_error:
            return rule_error
    return RuntimeError(f"{opdef.name}: {exc}")


def make_node(opdef: OpDef, args: tuple, attrs: dict, out: Any, dev: Any) -> Node:
    """Build the node that differentiates ``opdef`` at these arguments."""
    nxt = []
    meta = []
    for a in args:
        if type(a) is Tensor:
            d = a._data
            meta.append((d.shape, d.dtype))
            if a._view is not None and a._vc[0] != a._view_version:
                refresh_view(a, Node)  # its base was written in place since it was made
            fn = a.grad_fn
            if fn is None and a.requires_grad:
                ref = a._acc  # the leaf's AccumulateGrad, as ``accumulator`` finds it
                fn = ref() if ref is not None else None
                if fn is None:
                    fn = accumulator(a)
            nxt.append(fn)
        else:
            meta.append(None)
            nxt.append(None)
    g = opdef.grad_fn
    if type(g) is not str:  # a name that depends on the arguments (pow's, sum's)
        g = g(*meta, **attrs) if attrs else g(*meta)
    node = Node(opdef, g, nxt, attrs, meta)
    saves = opdef.saves
    if saves:
        saved = []
        versions = []
        for i in saves:
            a = args[i]
            saved.append(a)
            versions.append(a._vc[0] if type(a) is Tensor else None)
        node._saved = saved
        node._versions = versions
    if opdef.saves_output:
        node._out = out
        node.op_device = dev
    return node


def finish_output_saving(t: Any) -> Any:
    """Point a node that saved its output at the output's version counter."""
    node = t.grad_fn
    if node is not None and node.op.saves_output:
        node._out_vc = t._vc
        node._out_version = t._vc[0]
    return t


def record_inplace(opdef: OpDef, self: Any, args: tuple, attrs: dict) -> Any:
    """Apply ``opdef`` (out of place) and write its result into ``self``, as PyTorch's ``op_``.

    The result is written into self's array (views and holders of ``.grad`` see it). With a
    graph, self's old value and grad_fn become the new node's input, and holders of self as a
    saved tensor see its version move (and fail in backward); on a view, the node is wrapped
    in its base's CopySlices (``copy_slices``).
    """
    if type(self) is not Tensor:
        hook = getattr(self, "_gradd_record_inplace", None)
        if hook is not None:  # another tensor kind (the SDK's remote tensors) records itself
            return hook(opdef, args, attrs)
    # check_inplace, in its parts: the hot case (``plain``) is decided once, for the rule and
    # for the dtype promotion both.
    wants_graph = _mode.enabled and inplace_records_graph(opdef, self, args)
    plain = plain_inplace(opdef, self, args)
    if not plain:
        check_inplace_result(opdef, self, args, attrs)
    view = self._view
    if view is not None and overlaps(view):
        raise RuntimeError(OVERLAP_WRITE)
    meter = _active.meter if _metered.ever else None
    if meter is not None:  # its one self-sized temporary (or saved copy) must fit
        meter.check(self._data.nbytes, op=opdef.name)
    dev = self._dev
    if not wants_graph:
        if len(args) == 2:
            x, y = args
            datas: Any = (
                x._data if type(x) is Tensor else x,
                y._data if type(y) is Tensor else y,
            )
        elif len(args) == 1:
            datas = (self._data,)
        else:
            datas = [x._data if type(x) is Tensor else x for x in args]
        if not plain and opdef.promotes and shared_float_dtype(datas) is None:
            with _NoGrad():
                res = record(opdef, args, attrs)._data
        else:
            if _devices._cuda:
                for a in args:
                    if type(a) is Tensor and a._dev is not dev:
                        raise _mixed_devices(dev, a._dev)
            try:
                if dev is CPU:
                    res = opdef.forward(np, *datas, **attrs) if attrs else opdef.forward(np, *datas)
                else:
                    res = _on(dev, opdef.forward, dev.xp, *datas, **attrs)
            except (ValueError, OverflowError) as exc:
                raise _explain(opdef, args, attrs, exc) from None
        if dev is CPU and self._base is None:  # _write's hot case, inlined
            self._data[...] = res  # np.copyto(casting="unsafe") without its dispatcher
        else:
            _write(self, res)
        self._vc[0] += 1
        return self
    # self's old value becomes the node's input; it is copied only when the node saves it,
    # because the result is written into self's own array (so views of self see it).
    data = self._data
    if 0 in opdef.saves:
        data = data.copy()
    if view is None:
        old = wrap(data, dev, self.requires_grad, self.grad_fn)
        old._acc = self._acc
    else:  # its gradient is routed by CopySlices, not by this tensor
        old = wrap(data, dev, self.requires_grad)
    old._vc = [self._vc[0]]
    # Only the written-into argument is the old value: ``b.mul_(b)`` saves b itself as its
    # other factor, which the write then modifies (PyTorch's error in backward).
    res = record(opdef, (old, *args[1:]), attrs)
    _write(self, res._data)
    fn = res.grad_fn
    if fn is not None:
        if view is None:
            self.grad_fn = fn
            self.requires_grad = True
        else:
            rebase_view(self, fn)
    self._vc[0] += 1
    if view is not None:
        self._view_version = self._vc[0]  # its grad_fn is current (AsStridedBackward0)
    if fn is not None and fn.op.saves_output:
        fn._out_vc = self._vc
        fn._out_version = self._vc[0]
    return self


def _write(self: Any, res: Any) -> None:
    """Write an op's result array into ``self`` (and so into its base, for a view)."""
    dev = self._dev
    if self._base is not None:
        if dev is CPU:
            write_through(self, res, np)
        else:
            _on(dev, write_through, self, res, dev.xp)
    elif dev is CPU:
        np.copyto(self._data, res, casting="unsafe")
    else:
        _on(dev, dev.xp.copyto, self._data, res, casting="unsafe")


def _on(dev: Any, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with ``dev``'s GPU current."""
    with dev.scope():
        return fn(*args, **kwargs)


class _NoGrad:
    __slots__ = ("prev",)

    def __enter__(self) -> None:
        self.prev = _mode.enabled
        _mode.enabled = False

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self.prev


def _device_of(args: tuple) -> Any:
    """The device of the first tensor in ``args`` (or in a list there, as cat's); every other
    tensor must be on it too."""
    dev = None
    for a in args:
        for x in a if isinstance(a, (list, tuple)) else (a,):
            if type(x) is Tensor:
                if dev is None:
                    dev = x._dev
                elif x._dev is not dev:
                    raise _mixed_devices(dev, x._dev)
    return CPU if dev is None else dev


def _mixed_devices(dev: Any, other: Any) -> RuntimeError:
    """PyTorch's error for an op on tensors of two devices (its TensorIterator's words)."""
    return RuntimeError(
        "Expected all tensors to be on the same device, but found at least two devices, "
        f"{dev} and {other}!"
    )


def set_requires_grad(t: Any, flag: bool) -> Any:
    """``requires_grad_``: only leaves, only floating point."""
    if t.grad_fn is not None and not flag:
        raise AutogradError(NON_LEAF_REQUIRES_GRAD)
    if flag and not t.dtype.is_floating_point:
        raise RuntimeError("only Tensors of floating point dtype can require gradients")
    t.requires_grad = bool(flag)
    return t


# ---------------------------------------------------------------------------------------------
# Callers: each op gets a generated Python function with its real signature, so arguments are
# bound by the interpreter (fast, and PyTorch-like TypeErrors) instead of by inspect per call.


def _make_caller(opdef: OpDef) -> Callable:
    params = opdef.params
    inputs = [p.name for p in params[: opdef.arity]]
    attrs = params[opdef.arity :]
    sig = []
    ns: dict[str, Any] = {}
    starred = False
    for i, p in enumerate(params):
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not starred:
            sig.append("*")  # keyword-only parameters (var's ``correction``)
            starred = True
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            sig.append(f"*{p.name}")
            starred = True
        elif p.default is not inspect.Parameter.empty:
            ns[f"_d{i}"] = p.default
            sig.append(f"{p.name}=_d{i}")
        else:
            sig.append(p.name)
    if opdef.normalize is not None:
        passed = [
            f"*{p.name}"
            if p.kind is inspect.Parameter.VAR_POSITIONAL
            else f"{p.name}={p.name}"
            if p.kind is inspect.Parameter.KEYWORD_ONLY
            else p.name
            for p in attrs
        ]
        attr_dict = f"_normalize({', '.join(inputs + passed)})"
    elif attrs:
        attr_dict = "{" + ", ".join(f"{p.name!r}: {p.name}" for p in attrs) + "}"
    else:
        attr_dict = "_NO_ATTRS"  # no dict made per call
    tup = f"({', '.join(inputs)},)"
    if opdef.inplace:
        body = f"return _record_inplace(_op, {inputs[0]}, {tup}, {attr_dict})"
    elif any(p.name == "inplace" for p in attrs):
        # PyTorch's ``F.elu(x, inplace=True)``: the same op, written into its input.
        body = (
            f"_a = {attr_dict}\n    if inplace:\n        "
            f"return _record_inplace(_op, {inputs[0]}, {tup}, _a)\n    "
            + (
                f"return _finish(_record(_op, {tup}, _a))"
                if opdef.saves_output
                else f"return _record(_op, {tup}, _a)"
            )
        )
    elif opdef.saves_output:
        body = f"return _finish(_record(_op, {tup}, {attr_dict}))"
    else:
        body = f"return _record(_op, {tup}, {attr_dict})"
    if not opdef.internal:
        # The argument check, inlined: a few type tests, and the full check only when they
        # do not already prove the arguments fine.
        n_inputs = max(opdef.arity, 0)
        guard, names = guard_source(params, opdef.kinds, n_inputs)
        ns.update(names, _check=check_args, _params=params, _kinds=opdef.kinds)
        values = "(" + "".join(f"{p.name}, " for p in params) + ")"
        check = f"_check({opdef.name!r}, _params, _kinds, {values}, {n_inputs})"
        body = f"if not ({guard}):\n        {check}\n    {body}"
    ns.update(
        _op=opdef,
        _record=record,
        _record_inplace=record_inplace,
        _finish=finish_output_saving,
        _normalize=opdef.normalize,
        _NO_ATTRS=NO_ATTRS,
    )
    exec(f"def {opdef.name}({', '.join(sig)}):\n    {body}\n", ns)  # noqa: S102 - our own source
    fn = ns[opdef.name]
    fn.__doc__ = opdef.doc
    fn._gradd_checked = True
    return fn
