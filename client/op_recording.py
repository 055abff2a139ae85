"""Ops on remote tensors: the engine's op table, bound to ``RemoteTensor``.

``RemoteTensor`` gets the very functions the engine binds to its own Tensor (``OpDef.call``).
Those call the engine's ``record``/``record_inplace``, which hand any tensor that is not the
engine's to its ``_gradd_record``/``_gradd_record_inplace`` hook with the canonical attributes.
The hooks here compute the result's metadata by the op's own shape, dtype and autograd rules,
build the mirror node, and queue one gradd.v1 ``Op`` (no wait). A composite op (``linear``,
``cross_entropy``, ``getitem``, ``max``...) runs its body here for metadata only and is sent as
one ``Op`` with the user's arguments: the server runs the same body, so both graphs agree.

Ops whose arguments are tensors, numbers, bools and None, with their attributes at their
defaults (most ops of a training loop), go in the lean form instead: a Command.tape record
(gradd.wire.tape) with the op code the server announced and the tensors' slots.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from gradd.engine import dtypes as dt
from gradd.engine.copy_slices import COPY_SLICES, mirror_ops
from gradd.engine.errors import AutogradError
from gradd.engine.grad_mode import _mode
from gradd.engine.inplace_rules import check_inplace
from gradd.engine.layout import result_layout
from gradd.engine.methods import OPERATORS
from gradd.engine.node import accumulator
from gradd.engine.op_table import (
    OP_TABLE,
    OPS,
    OpDef,
    is_view,
    output_dtype,
)
from gradd.engine.ops.matmul_decomposition import decomposed, one_node, record_matmul
from gradd.engine.tensor import Tensor as EngineTensor
from gradd.wire import tape as tp

from . import command_encoding as enc
from .call_site import mark_internal, user_site
from .errors import rule_error
from .mirror_graph import MirrorNode, node_for
from .remote_tensor import RemoteTensor, new_tensor

_new = object.__new__
_PLAIN = {int, float, bool, str, type(None)}
_NO_DEFAULT = object()


class _OpWire:
    """How one op is written on the wire: its name field, defaults and ``*varargs`` attribute."""

    __slots__ = ("name", "varargs", "defaults")

    def __init__(self, opdef: OpDef) -> None:
        self.name = enc.op_name(opdef.name)
        self.varargs = None
        self.defaults: dict[str, Any] = {}
        for p in opdef.params:
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                self.varargs = p.name
            elif p.default is not inspect.Parameter.empty:
                self.defaults[p.name] = p.default


_WIRE: dict[OpDef, _OpWire] = {}

_BINARY = OPS["add"].shape  # the broadcasting rule shared by the binary arithmetic ops


_SMALL, _varint = enc._SMALL, enc.varint
_OUT, _REQ_COMMAND, _CMD_OP, _NO_GRAD = enc.OP_OUT, enc.REQ_COMMAND, enc.CMD_OP, enc.OP_NO_GRAD
_ARG_FLOAT = enc.OP_ARG + _SMALL[9] + enc.V_F  # an Op.args entry holding a Python float
_pack_double = enc._pack_double


def op_command(opdef: OpDef, args: tuple, attrs: dict, outs: tuple) -> bytes:
    """The framed gradd.v1 Op for a call with canonical ``attrs``: a ``*varargs`` attribute goes
    positionally; attributes equal to their defaults are left out (normalising is idempotent)."""
    w = _WIRE[opdef]
    body = w.name
    if opdef.arity == -1:  # cat/stack: the tensors travel as one list, as the user passed them
        body += enc.op_arg(enc.value(list(args)))
    else:
        for a in args:
            ta = type(a)
            if ta is RemoteTensor:
                body += a._arg
            elif ta is float:
                body += _ARG_FLOAT + _pack_double(a)
            else:
                body += enc.op_arg(enc.value(a))
    if attrs:
        defaults = w.defaults
        for k, v in attrs.items():
            if k == w.varargs:
                body += enc.op_arg(enc.value(v))
                continue
            d = defaults.get(k, _NO_DEFAULT)
            if d is not _NO_DEFAULT and type(v) is type(d) and type(v) in _PLAIN and v == d:
                continue
            body += enc.op_kwarg(k, enc.value(v))
    for h in outs:
        body += _OUT + _SMALL[len(h)] + h
    if not _mode.enabled:
        body += _NO_GRAD
    n = len(body)
    cmd = _CMD_OP + (_SMALL[n] if n < 128 else _varint(n)) + body
    n = len(cmd)
    return _REQ_COMMAND + (_SMALL[n] if n < 128 else _varint(n)) + cmd


def tape_codes(ops: Any) -> dict[OpDef, bytes]:
    """Each op's code in Command.tape records, from the server's ServerInfo.ops (its index
    there), as the record's first two bytes; ops this SDK does not know are left out."""
    return {OPS[name]: tp.code_bytes(i) for i, name in enumerate(ops) if name in OPS}


_U32, _F64, _I64 = tp.slot_bytes, tp.float_bytes, tp.int_bytes
_K_SLOT, _K_FLOAT, _K_INT = bytes((tp.SLOT,)), bytes((tp.FLOAT,)), bytes((tp.INT,))
_K_TRUE, _K_FALSE = bytes((tp.BOOL,)), bytes((tp.BOOL,))
_P_TRUE, _P_FALSE, _K_NONE, _P_NONE = b"\x01", b"\x00", bytes((tp.NONE,)), b"\x00"
_FLAGS = (b"\x00", bytes((tp.NO_GRAD,)))  # by grad mode: enabled, disabled
_COUNTS = [[bytes((n, k)) for k in range(2)] for n in range(256)]  # nargs, nouts (0 or 1)
_INT_MIN, _INT_MAX = tp.INT_MIN, tp.INT_MAX


def tape_record(code: bytes, opdef: OpDef, args: tuple, attrs: dict, out: Any) -> bytes | None:
    """The tape record of a call (``out``: the result's slot, or None to bind nothing), or None
    when it does not fit the lean form (an attribute off its default, an argument that is not
    a tensor, number, bool or None): it goes as a readable Op then."""
    if attrs:
        w = _WIRE[opdef]
        defaults = w.defaults
        for k, v in attrs.items():
            d = defaults.get(k, _NO_DEFAULT)
            if k == w.varargs or d is _NO_DEFAULT or type(v) is not type(d) or v != d:
                return None
            if type(v) not in _PLAIN:
                return None
    if opdef.arity == -1 or len(args) > 255:
        return None
    kinds = b""
    payload = b""
    for a in args:
        ta = type(a)
        if ta is RemoteTensor:
            kinds += _K_SLOT
            payload += _U32(a._slot)
        elif ta is float:
            kinds += _K_FLOAT
            payload += _F64(a)
        elif ta is bool:
            kinds += _K_TRUE
            payload += _P_TRUE if a else _P_FALSE
        elif ta is int:
            if not _INT_MIN <= a <= _INT_MAX:
                return None
            kinds += _K_INT
            payload += _I64(a)
        elif a is None:
            kinds += _K_NONE
            payload += _P_NONE
        else:
            return None
    if out is None:
        return code + _FLAGS[not _mode.enabled] + _COUNTS[len(args)][0] + kinds + payload
    return code + _FLAGS[not _mode.enabled] + _COUNTS[len(args)][1] + kinds + payload + _U32(out)


def _coerced(s: Any, opdef: OpDef, args: tuple) -> tuple:
    # Arrays and engine tensors become tensors of the session (PyTorch treats an ndarray operand
    # as a tensor); NumPy scalars become Python scalars; anything else fails as in the engine.
    out = []
    for a in args:
        if type(a) is RemoteTensor:
            if a._s is not s:
                raise RuntimeError(
                    f"{opdef.name}: expected all tensors to be in the same gradd session, "
                    f"but found tensors of sessions {s.id} and {a._s.id}"
                )
        elif isinstance(a, (np.ndarray, EngineTensor)):
            a = s.tensor(a)
        elif isinstance(a, np.generic):
            a = a.item()
        elif type(a) not in (float, int, bool):
            plain = getattr(a, "plain", None)  # a compiled function's float argument (traced)
            if type(plain) is float and isinstance(a, float):
                a = plain
            else:
                dt.scalar_dtype(a)  # raises the engine's TypeError
        out.append(a)
    return tuple(out)


def _record(self: RemoteTensor, opdef: OpDef, args: tuple, attrs: dict) -> RemoteTensor:
    """``_gradd_record``: metadata by the op's rules, a mirror node, one queued Op."""
    s = self._s
    in_shapes = []
    rg = False
    for a in args:
        ta = type(a)
        if ta is RemoteTensor:
            if a._s is not s:
                return _record(self, opdef, _coerced(s, opdef, args), attrs)
            in_shapes.append(a.shape)
            if a._rg:
                rg = True
        elif ta is float or ta is int or ta is bool or a is None:  # None: an absent optional
            in_shapes.append(None)  # input (convolution's bias, layer_norm's weight)
        else:
            return _record(self, opdef, _coerced(s, opdef, args), attrs)
    shape_rule = opdef.shape
    if shape_rule is _BINARY and len(in_shapes) == 2:
        a, b = in_shapes  # broadcasting: most calls pair equal shapes or a Python scalar
        shape = a if (b is None or a == b) else b if a is None else shape_rule(a, b)
    else:
        shape = shape_rule(*in_shapes, **attrs)
        if type(shape) is not tuple:
            shape = tuple(shape)
    out_dtype = output_dtype(opdef, args, attrs)  # the engine's rule, fast path included
    tracing = s._tracing
    if rg and _mode.enabled and opdef.backward is not None and out_dtype.is_floating_point:
        node = node_for(opdef, args, attrs, RemoteTensor)
        if opdef.saves_output:
            node.out_meta = (shape, out_dtype)
        out = new_tensor(s, shape, out_dtype, True, node, not tracing)
    else:
        out = new_tensor(s, shape, out_dtype, False, None, not tracing)
    if opdef.layout is not None:  # the engine's rule: server and client agree on strides
        out._layout = result_layout(opdef, args, attrs, shape)
    if opdef.view and is_view(opdef, attrs):  # as the engine: base and version counter
        base = self._base
        out._base = self if base is None else base
        out._vc = self._vc
        out._view_version = self._vc[0]
    if not tracing:
        site = (opdef.name, *user_site(4))
        code = s._codes.get(opdef)
        if code is not None and s._push_record is not None:
            record = tape_record(code, opdef, args, attrs, out._slot)
            if record is not None:
                s._push_record(record, site)
                return out
        s._push(op_command(opdef, args, attrs, (out._h,)), site)
    return out


def _record_inplace(self: RemoteTensor, opdef: OpDef, args: tuple, attrs: dict) -> RemoteTensor:
    """``_gradd_record_inplace``: the engine's in-place rule on the mirror, one queued Op."""
    s = self._s
    for a in args:
        ta = type(a)
        if not (
            ta is RemoteTensor and a._s is s or ta is float or ta is int or ta is bool or a is None
        ):
            return _record_inplace(self, opdef, _coerced(s, opdef, args), attrs)
    try:
        wants_graph = check_inplace(opdef, self, args, attrs, _mode.enabled)
    except AutogradError as exc:
        raise rule_error(exc) from None
    if wants_graph:
        # As the engine: self's old value (own version counter) becomes the node's input.
        view = self._base is not None
        old = _new(RemoteTensor)
        old._s, old._bound, old.shape, old.dtype = s, False, self.shape, self.dtype
        old._rg, old._vc, old._acc = self._rg, [self._vc[0]], self._acc
        old.grad_fn = None if view else self.grad_fn
        old._base = old._layout = None
        node = node_for(opdef, (old, *args[1:]), attrs, RemoteTensor)
        if view:
            _rebase_view(self, node)
        else:
            self.grad_fn = node
            self._rg = True
        self._vc[0] += 1
        if view:
            self._view_version = self._vc[0]
        if opdef.saves_output:
            owner = self._base.grad_fn if view else node
            owner._out_vc, owner._out_version = self._vc, self._vc[0]
            owner.out_meta = (self.shape, self.dtype)
    else:
        self._vc[0] += 1
    if s._tracing:
        s._tracing = 2  # the composite being traced wrote into a tensor: it must be sent
    else:
        site = (opdef.name, *user_site(4))
        code = s._codes.get(opdef)
        if code is not None and s._push_record is not None:
            record = tape_record(code, opdef, args, attrs, None)
            if record is not None:
                s._push_record(record, site)
                return self
        s._push(op_command(opdef, args, attrs, ()), site)
    return self


def _rebase_view(view: RemoteTensor, node: MirrorNode) -> None:
    """The engine's ``copy_slices.rebase_view`` on the mirror: CopySlices (reading what the
    op's node reads) on the base, AsStridedBackward0 on the view."""
    copy_slices, as_strided = mirror_ops()
    base = view._base
    base_fn = base.grad_fn
    if base_fn is None and base._rg:
        base_fn = accumulator(base)
    cs = MirrorNode(node.op, COPY_SLICES, (base_fn, *node.next[1:]), node.saved)
    base.grad_fn = cs
    base._rg = True
    view.grad_fn = MirrorNode(as_strided, "AsStridedBackward0", (cs,), ())
    view._rg = True


def _session_of(args: tuple, kwargs: dict) -> Any:
    for a in (*args, *kwargs.values()):
        if type(a) is RemoteTensor:
            return a._s
        if type(a) in (list, tuple):
            for x in a:
                if type(x) is RemoteTensor:
                    return x._s
    return None


def _send_composite(
    s: Any, opdef: OpDef, args: tuple, kwargs: dict, out: Any, site: tuple, wrote: bool
) -> Any:
    results = out if isinstance(out, tuple) else (out,)
    if len(results) == 1 and any(out is a for a in args):
        if not wrote:
            return out  # the body returned its input (e.g. t[:]): the server does the same
        results = ()  # it wrote into its input (t[k] = v, inplace=True): nothing new to name
    for r in results:
        r._bound = True
    w = _WIRE[opdef]
    parts = [w.name]
    for a in args:
        parts.append(a._arg if type(a) is RemoteTensor else enc.op_arg(enc.value(a)))
    for k, v in kwargs.items():
        parts.append(enc.op_kwarg(k, enc.value(v)))
    for r in results:
        parts.append(enc.op_out(r._h))
    if not _mode.enabled:
        parts.append(enc.OP_NO_GRAD)
    s._push(enc.op_command(b"".join(parts)), site)
    return out


def traced(opdef: OpDef, body: Callable | None = None) -> Callable:
    """A composite op for remote tensors: its body runs here for metadata only (inner ops queue
    nothing) and one Op with the user's arguments is queued."""
    fn = body or opdef.call

    @functools.wraps(opdef.call)
    def call(*args: Any, **kwargs: Any) -> Any:
        s = _session_of(args, kwargs)
        if s is None or s._tracing:
            return fn(*args, **kwargs)
        site = (opdef.name, *user_site(2))
        s._tracing = 1
        try:
            out = fn(*args, **kwargs)
            wrote = s._tracing == 2
        finally:
            s._tracing = 0
        return _send_composite(s, opdef, args, kwargs, out, site, wrote)

    return call


def _rmatmul(self: RemoteTensor, other: Any) -> Any:
    (other,) = _coerced(self._s, OPS["matmul"], (other,))
    return _matmul(other, self)


_traced_matmul = traced(OPS["matmul"], decomposed)


def _matmul(self: Any, other: Any) -> Any:
    """``matmul``: one Op either way; batches are traced through PyTorch's decomposition (which
    the server repeats), vectors and matrices record the one node directly (the hot path)."""
    if one_node(self, other):
        return record_matmul(self, other)
    return _traced_matmul(self, other)


# Ops whose engine call depends on data the client does not have (a mask's values; see
# remote_indexing), or whose decomposition has internal ops that only the server may run (as
# one Op). Filled by ``bind``.
_REMOTE_OVERRIDES: dict[str, Callable] = {}


def remote_function(opdef: OpDef) -> Callable:
    """The function to call ``opdef`` on remote tensors (composites are traced)."""
    override = _REMOTE_OVERRIDES.get(opdef.name)
    if override is not None:
        return override
    return opdef.call if opdef.shape is not None else traced(opdef)


def to_dtype(t: RemoteTensor, dtype: dt.DType) -> RemoteTensor:
    """``t`` converted to ``dtype`` (the engine's ``to_dtype`` op)."""
    return OPS["to_dtype"].call(t, dtype)


def bind() -> None:
    """Install every op of the table, the operators and the recording hooks on RemoteTensor."""
    from . import remote_indexing as ri  # it builds on this module's composite sending

    _REMOTE_OVERRIDES.update(
        matmul=_matmul,
        masked_select=ri.masked_select,
        index_put_=ri.index_put("index_put_"),
        index_put=ri.index_put("index_put"),
    )
    for d in OP_TABLE.values():  # internal ops too: composites call them while tracing
        _WIRE[d] = _OpWire(d)
        mark_internal(d.call)
        if d.method and not d.method.startswith("__") and d.method not in RemoteTensor.__dict__:
            setattr(RemoteTensor, d.method, remote_function(d))
    for dunder, (name, swapped) in OPERATORS.items():
        if dunder in ("__getitem__", "__setitem__"):
            continue
        setattr(RemoteTensor, dunder, _rmatmul if swapped else remote_function(OPS[name]))
    RemoteTensor.__getitem__ = ri.getitem  # type: ignore[method-assign]
    RemoteTensor.__setitem__ = ri.setitem  # type: ignore[attr-defined]
    RemoteTensor._gradd_record = _record  # type: ignore[attr-defined]
    RemoteTensor._gradd_record_inplace = _record_inplace  # type: ignore[attr-defined]


bind()
