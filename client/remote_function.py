"""``Function.apply`` on remote tensors: the forward's ops run on the server like any others
(without a graph), and the user's ``backward`` is recorded once, here, as the commands it queues
on placeholder gradients; one gradd.v1 ``CustomFunction`` command sends the program, and the
server replays it when its backward pass reaches the node (server/custom_function.py).

While ``backward`` is recorded nothing is sent: a value read (``item()``, ``bool(t)``,
``numpy()``) has no value to give and raises, naming the user's line. The program's
differences from an embedded ``backward`` follow from recording it once: it is recorded with a
tensor for every output's gradient (outputs that get none get zeros on the server, whatever
``set_materialize_grads`` says, which gives the same numbers); PyTorch's errors about the
gradients it returns are raised, as PyTorch's, when a backward pass reaches the node.
"""

from __future__ import annotations

import types
from typing import Any

from gradd.engine.errors import LEAF_INPLACE
from gradd.engine.function_node import (
    FunctionCtx,
    OutputEdge,
    check_gradients,
    tensor_next_functions,
)
from gradd.engine.grad_mode import _mode, set_grad_enabled
from gradd.engine.node import accumulator
from gradd.engine.random_state import DRAWING_OPS
from gradd.v1 import command_pb2 as cpb

from . import command_encoding as enc
from .call_site import user_site
from .custom_function import node_class, run_forward, user_backward
from .errors import AutogradRuleError, UnimplementedError
from .mirror_graph import MirrorNode
from .remote_tensor import RemoteTensor, new_tensor

_RECORDED = ("op", "detach", "tensor", "factory")


class MirrorFunctionNode(MirrorNode, FunctionCtx):
    """The mirror of a custom Function's node, and its ``ctx`` (attributes live on it)."""

    def __init__(self, label: str, args: tuple) -> None:
        nxt = []
        for a in args:
            if type(a) is RemoteTensor:
                nxt.append(
                    a.grad_fn if a.grad_fn is not None else accumulator(a) if a._rg else None
                )
            else:
                nxt.append(None)
        op = types.SimpleNamespace(name=label, saves=(), saves_output=False)
        super().__init__(op, label, tuple(nxt), ())
        self.meta = tuple((a.shape, a.dtype) if type(a) is RemoteTensor else None for a in args)
        self.kept: tuple = ()

    @property
    def next_functions(self) -> tuple:
        return tensor_next_functions(self)

    @property
    def saved_tensors(self) -> tuple:
        """What ``ctx.save_for_backward`` kept (while ``backward`` is recorded)."""
        self.saved = tuple(
            (t._vc, t._vc[0], t.shape, t.dtype) for t in self.kept if type(t) is RemoteTensor
        )
        return self.kept

    def __repr__(self) -> str:
        return f"<gradd.autograd.function.{self.label} object at {hex(id(self))}>"


class _Recorder:
    """Stands in for the session's command stream while ``backward`` is recorded."""

    def __init__(self, stream: Any, label: str) -> None:
        self.stream = stream
        self.label = label
        self.cmds: list[bytes] = []
        self.sites: list[tuple] = []

    @property
    def released(self) -> list:
        return self.stream.released

    @property
    def free_slots(self) -> list:
        return self.stream.free_slots

    def push(self, cmd: bytes, site: tuple) -> None:
        self.cmds.append(cmd)
        self.sites.append(site)

    def send_alone(self, parts: list, site: tuple) -> None:
        self.push(b"".join(parts), site)

    def request(self, cmd: bytes, site: tuple) -> Any:
        raise UnimplementedError(
            f"{self.label}: a custom Function's backward runs on the server as recorded tensor "
            f"ops, so it cannot read values ({site[0]} at {site[1]}:{site[2]}); write it with "
            "tensor ops only, or use an embedded session"
        )

    def synchronize(self) -> None:
        self.request(b"", ("synchronize", *user_site()))

    flush = synchronize


def _record_backward(cls: type, ctx: MirrorFunctionNode, s: Any, grads: list) -> tuple:
    """Run the user's backward on placeholder gradients; (its result, the commands it queued)."""
    recorder = _Recorder(s._stream, ctx.label)
    stream, push, push_record = s._stream, s._push, s._push_record
    s._stream, s._push, s._push_record = recorder, recorder.push, None
    try:
        with set_grad_enabled(True):  # the server replays under the backward's own mode
            result = user_backward(cls)(ctx, *grads)
    finally:
        s._stream, s._push, s._push_record = stream, push, push_record
    commands = cpb.ExecuteRequest.FromString(b"".join(recorder.cmds)).commands
    for cmd, site in zip(commands, recorder.sites):
        kind = cmd.WhichOneof("kind")
        if (
            kind not in _RECORDED
            or (kind == "factory" and cmd.factory.kind in DRAWING_OPS)
            or (kind == "op" and cmd.op.op in DRAWING_OPS)
        ):
            raise UnimplementedError(
                f"{ctx.label}: a custom Function's backward runs on the server as recorded "
                f"tensor ops; {site[0]} at {site[1]}:{site[2]} is not one it can replay"
            )
    return result, commands


def _reads_session(commands: Any, placeholders: set, grad_inputs: list) -> bool:
    """Whether the program reads tensors of the session (it then fails after the graph is
    freed, as a backward reading saved tensors does)."""
    bound = set(placeholders)
    for cmd in commands:
        kind = cmd.WhichOneof("kind")
        if kind == "op":
            values = list(cmd.op.args) + list(cmd.op.kwargs.values())
            while values:
                v = values.pop()
                which = v.WhichOneof("kind")
                if which == "tensor" and v.tensor not in bound:
                    return True
                if which in ("tuple", "list"):
                    values += getattr(v, which).items
            bound.update(cmd.op.outs)
        elif kind == "detach":
            if cmd.detach.handle not in bound:
                return True
            bound.add(cmd.detach.out)
        else:  # constants: made by the program
            bound.add(getattr(cmd, kind).out)
    return any(h and h not in bound for h in grad_inputs)


def _grad_handles(label: str, args: tuple, grads: tuple, s: Any) -> list[str]:
    """The handle of each tensor argument's gradient ("" for None)."""
    handles = []
    for a, g in zip(args, grads):
        if type(a) is not RemoteTensor:
            continue
        if g is not None and (type(g) is not RemoteTensor or g._s is not s):
            raise TypeError(
                f"{label}: backward returned {type(g).__name__} for a tensor input; a custom "
                "Function's backward on remote tensors returns tensors of its session or None"
            )
        handles.append(g._h.decode() if g is not None else "")
    return handles


def apply_remote(cls: type, args: tuple, kwargs: dict) -> Any:
    """``cls.apply(*args)`` with remote tensors among ``args``."""
    s = next(a._s for a in args if type(a) is RemoteTensor)
    label = getattr(cls, "_backward_name", f"{cls.__name__}Backward")
    ctx = node_class(cls, MirrorFunctionNode)(label, args)
    ctx.needs_input_grad = tuple(type(a) is RemoteTensor and a._rg for a in args)
    out = run_forward(cls, ctx, args, kwargs)
    if not (_mode.enabled and any(ctx.needs_input_grad)):
        return out
    outs = list(out) if type(out) is tuple else [out]
    inputs = [a for a in args if type(a) is RemoteTensor]
    ids = {id(a) for a in inputs}
    non_diff, dirty = getattr(ctx, "non_diff", set()), getattr(ctx, "dirty", set())
    tensor_outs = [o for o in outs if type(o) is RemoteTensor]
    several = len(tensor_outs) > 1
    results, binds, diff_flags, before = [], [], [], []
    for o in outs:
        if type(o) is not RemoteTensor:
            results.append(o)
            continue
        r = o
        before.append((o, o._rg, o.grad_fn))
        if id(o) in dirty:
            if o.grad_fn is None and o._rg:
                raise AutogradRuleError(LEAF_INPLACE)
        elif id(o) in ids:  # an input returned as it is: a new view of it, as in PyTorch
            r = new_tensor(s, o.shape, o.dtype, False, None)
            r._vc = o._vc
            r._base = o if o._base is None else o._base
            r._view_version = o._vc[0]
        differentiable = id(o) not in non_diff and o.dtype.is_floating_point
        if differentiable:
            r._rg = True
            r.grad_fn = OutputEdge(ctx, len(binds)) if several else ctx
        elif id(o) not in dirty:
            r._rg, r.grad_fn = False, None
        results.append(r)
        binds.append(r)
        diff_flags.append(differentiable)
    kept = []
    for t in ctx.to_save:  # saved outputs are the outputs handed back
        j = next((i for i, o in enumerate(outs) if o is t), None)
        kept.append(t if j is None else results[j])
    ctx.kept = tuple(kept)
    grads = [
        new_tensor(s, o.shape, o.dtype, False, None, False) if type(o) is RemoteTensor else None
        for o in results
    ]
    try:
        result, commands = _record_backward(cls, ctx, s, grads)
    except BaseException:
        for o, rg, fn in before:  # nothing was sent: the outputs stay as the server has them
            o._rg, o.grad_fn = rg, fn
        raise
    finally:
        ctx.kept = ctx.to_save = ()  # saved outputs would make a cycle (their grad_fn is ctx)
    try:
        grad_inputs = _grad_handles(label, args, check_gradients(label, ctx.meta, result), s)
    except (RuntimeError, TypeError) as exc:
        # PyTorch raises these when the backward pass reaches the node: so does the mirror
        # (before the pass is sent), and the server's node gives no gradients.
        ctx.deferred_error = exc
        grad_inputs = [""] * len(inputs)
    placeholders = [g._h.decode() for g in grads if g is not None]
    if _reads_session(commands, set(placeholders), grad_inputs):
        ctx.op.saves = (0,)  # a freed graph's second backward fails, as the engine's does
    message = cpb.CustomFunction(
        name=label,
        inputs=[a._h.decode() for a in inputs],
        outputs=[o._h.decode() for o in outs if type(o) is RemoteTensor],
        outs=[r._h.decode() for r in binds],
        differentiable=diff_flags,
        dirty=[id(o) in dirty for o in tensor_outs],
        grad_outputs=placeholders,
        backward=commands,
        grad_inputs=grad_inputs,
        once_differentiable=getattr(user_backward(cls), "_gradd_once_differentiable", False),
    )
    command = cpb.Command(custom_function=message).SerializeToString()
    s._push(enc.length_delimited(enc.REQ_COMMAND, command), ("autograd.Function", *user_site()))
    return tuple(results) if type(out) is tuple else results[0]
