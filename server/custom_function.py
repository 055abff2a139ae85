"""The `custom_function` command: a custom `autograd.Function`'s node, whose backward replays a
program the client recorded (gradd.v1 CustomFunction).

A client's program is data, and hostile until checked: when the command runs, every command of
the program is checked (its kind, op name, handles and Values, under the request's Value
budget), its size is bounded and charged to the session's memory meter (the node holds it
until the graph is freed), constants are made then (checked by the meter as any tensor), and
the session tensors it reads are taken by the node, as saved tensors (freed with the graph,
checked for in-place changes when replayed). Replaying runs ops of the allow-list only, under
the backward's grad mode, in a namespace of the node's own.
"""

from __future__ import annotations

from typing import Any

import gradd.engine as ge
import numpy as np
from gradd.engine.function_node import FunctionNode, connect_outputs, delay_error
from gradd.engine.memory_meter import active_meter
from gradd.engine.random_state import DRAWING_OPS
from gradd.v1 import command_pb2 as cpb

from . import wire_tensor as wire
from .errors import invalid, shown
from .op_args import ValueBudget, engine_dtype, short_string, to_python
from .session import Session

MAX_PROGRAM_COMMANDS = 4096  # commands in one backward program
MAX_FUNCTION_TENSORS = 1024  # inputs, and outputs, of one function
_REPLAYED = ("op", "detach")
_CONSTANTS = ("factory", "tensor")


class _Program:
    """A checked program: its serialized form (the node's counted copy) and what it reads."""

    __slots__ = ("stored", "external")

    def __init__(self, stored: np.ndarray, external: list[str]) -> None:
        self.stored = stored  # the CustomFunction's bytes, charged to the meter while they live
        self.external = external  # the handles of session tensors (and constants) it reads


def _handle(h: str, what: str) -> str:
    if not h or len(h) > 256:
        raise invalid(f"{what}: a handle must be 1 to 256 characters, got {shown(h)}")
    return h


def _constant(s: Session, c: cpb.Command, budget: ValueBudget) -> Any:
    """The tensor a `factory` or `tensor` command of the program makes (now, metered)."""
    if c.WhichOneof("kind") == "tensor":
        incoming = wire.IncomingTensor(c.tensor.data, None)
        s.meter.check(incoming.nbytes, "a constant of a custom Function's backward")
        return ge.tensor(incoming.array(), device=s.device)
    f = c.factory
    fdef = ge.FACTORIES.get(f.kind)
    if fdef is None or fdef.draws:
        raise invalid(f"a custom Function's backward cannot make a {shown(f.kind)} factory tensor")
    budget.take(len(f.args))
    args = tuple(to_python(v, _no_tensor, budget) for v in f.args)
    dtype = engine_dtype(f.dtype) if f.dtype else None
    try:
        return fdef.run(tuple(f.shape), args, dtype, s.device, False)
    except (TypeError, IndexError) as exc:
        raise invalid(f"{f.kind}: bad factory arguments {list(args)}: {exc}") from None


def _no_tensor(handle: str) -> Any:
    raise invalid(f"factory arguments are numbers, not tensors (got tensor {shown(handle)})")


def _check_program(
    s: Session, c: cpb.CustomFunction, budget: ValueBudget
) -> tuple[list[str], list[Any]]:
    """Check every command; the handles the program reads from the session (or as constants),
    and their tensors."""
    if len(c.backward) > MAX_PROGRAM_COMMANDS:
        raise invalid(
            f"a custom Function's backward has at most {MAX_PROGRAM_COMMANDS} commands, "
            f"got {len(c.backward)}"
        )
    bound = {_handle(h, "grad_outputs") for h in c.grad_outputs if h}
    external: dict[str, Any] = {}

    def read(h: str) -> None:
        if h not in bound and h not in external:
            external[h] = s.table.get(h)  # NOT_FOUND for an unknown handle

    def lookup(h: str) -> None:
        read(h)

    for i, cmd in enumerate(c.backward):
        kind = cmd.WhichOneof("kind")
        if kind in _CONSTANTS:
            out = cmd.tensor.out if kind == "tensor" else cmd.factory.out
            external[_handle(out, "a constant")] = _constant(s, cmd, budget)
            continue
        if kind == "detach":
            read(_handle(cmd.detach.handle, "detach"))
            bound.add(_handle(cmd.detach.out, "detach"))
            continue
        if kind != "op":
            raise invalid(
                f"command {i} of a custom Function's backward is {kind or 'empty'}; only "
                "op, detach, factory and tensor commands are replayed"
            )
        op = cmd.op
        if op.op not in ge.OPS:
            raise invalid(f"command {i} of a custom Function's backward: unknown op {shown(op.op)}")
        if op.op in DRAWING_OPS:
            raise invalid(f"a custom Function's backward cannot draw ({shown(op.op)})")
        budget.take(len(op.args) + len(op.kwargs))
        for v in op.args:
            to_python(v, lookup, budget)
        for k, v in op.kwargs.items():
            short_string(k, "a kwarg name")
            to_python(v, lookup, budget)
        for h in op.outs:
            bound.add(_handle(h, "an op's outs"))
    for h in c.grad_inputs:
        if h:
            read(_handle(h, "grad_inputs"))
    return list(external), list(external.values())


def custom_function(s: Session, c: cpb.CustomFunction, budget: ValueBudget | None = None) -> None:
    """Make the forward's results the outputs of a node that replays `c.backward`."""
    budget = budget or ValueBudget()
    name = short_string(c.name, "a custom Function's name")
    n_out = len(c.outputs)
    if len(c.inputs) > MAX_FUNCTION_TENSORS or n_out > MAX_FUNCTION_TENSORS:
        raise invalid(f"a custom Function has at most {MAX_FUNCTION_TENSORS} inputs and outputs")
    for field in ("outs", "differentiable", "dirty", "grad_outputs"):
        if len(getattr(c, field)) != n_out:
            raise invalid(f"CustomFunction.{field} needs one entry per output ({n_out})")
    if len(c.grad_inputs) != len(c.inputs):
        raise invalid(f"CustomFunction.grad_inputs needs one entry per input ({len(c.inputs)})")
    inputs = tuple(s.table.get(h) for h in c.inputs)
    outputs = [s.table.get(h) for h in c.outputs]
    s.table.check_handles([_handle(h, "outs") for h in c.outs])
    ids = {id(t) for t in inputs}
    dirty = {id(o) for o, d in zip(outputs, c.dirty) if d}
    if any(id(o) not in ids for o, d in zip(outputs, c.dirty) if d):
        raise invalid("CustomFunction.dirty marks an output that is not one of its inputs")
    for o in outputs:  # a forward runs without a graph: its results have none (or are inputs)
        if id(o) not in ids and (o.grad_fn is not None or o.requires_grad):
            raise invalid("a custom Function's outputs must be computed without a graph")
    non_diff = {id(o) for o, d in zip(outputs, c.differentiable) if not d}
    handles, tensors = _check_program(s, c, budget)
    stored = np.frombuffer(c.SerializeToString(), np.uint8).copy()
    s.meter.check(stored.nbytes, "a custom Function's backward program")
    s.meter.charge(stored)
    node = FunctionNode(name, inputs, _replay)
    if not any(n is not None for n in node.next) or not ge.is_grad_enabled():
        raise invalid(f"{name}: none of the custom Function's inputs requires grad")
    node.program = _Program(stored, handles)
    results = connect_outputs(node, inputs, outputs, non_diff, dirty)
    node.keep_saved(tuple(tensors), results)
    s.table.bind(list(zip(c.outs, results)))


def _replay(node: FunctionNode, grads: tuple) -> tuple:
    """The node's backward: the program on the incoming gradients."""
    c = cpb.CustomFunction.FromString(node.program.stored.tobytes())
    external = node.program.external
    # Read (and so checked, and refused once freed) only when it reads any, as the SDK expects.
    names: dict[str, Any] = dict(zip(external, node.saved_tensors)) if external else {}
    for h, g in zip(c.grad_outputs, grads):
        if h:
            names[h] = g

    def lookup(h: str) -> Any:
        try:
            return names[h]
        except KeyError:
            raise invalid(f"{node.label}'s backward reads {shown(h)} before binding it") from None

    budget = ValueBudget()
    # The backward pass counts its working gradients without refusing them (it must not stop
    # half way for its own buffers); a client's program is refused what does not fit.
    meter = active_meter()
    lenient = meter.lenient if meter is not None else 0
    if meter is not None:
        meter.lenient = 0
    try:
        for cmd in c.backward:
            kind = cmd.WhichOneof("kind")
            if kind == "detach":
                names[cmd.detach.out] = lookup(cmd.detach.handle).detach()
            elif kind == "op":
                _run(cmd.op, lookup, budget, names)
    finally:
        if meter is not None:
            meter.lenient = lenient
    results = tuple(lookup(h) if h else None for h in c.grad_inputs)
    if (
        c.once_differentiable
        and ge.is_grad_enabled()
        and any(g is not None and g.requires_grad for g in grads)
    ):
        results = delay_error(results)
    return results


def _run(op: cpb.Op, lookup: Any, budget: ValueBudget, names: dict) -> None:
    args = [to_python(v, lookup, budget) for v in op.args]
    kwargs = {k: to_python(v, lookup, budget) for k, v in op.kwargs.items()}
    if op.no_grad:
        with ge.no_grad():
            result = ge.call_op(op.op, *args, **kwargs)
    else:
        result = ge.call_op(op.op, *args, **kwargs)
    results = result if isinstance(result, tuple) else (result,)
    if op.outs and len(results) != len(op.outs):
        raise invalid(f"op {shown(op.op)} gives {len(results)} results, {len(op.outs)} outs named")
    for h, r in zip(op.outs, results):
        names[h] = r
