"""Commands applied to a session: one function per gradd.v1 Command kind, and the batch loop.

A batch stops at its first failing command; the commands before it stay applied. Each command
checks everything before it changes anything, so a failing command changes nothing: the
handles of an in-place or random op's `outs` are checked before it runs (it changes a tensor or
the random stream as it runs; other ops' results are checked when bound), every allocation is
checked by the session's memory meter before it happens (the batch runs with the meter
active), a fetch is checked against the answer limits before its answer is built, and a random
op that fails gives back what it drew.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import gradd.engine as ge
import grpc
from gradd.engine.memory_meter import metering
from gradd.engine.op_table import unknown_op
from gradd.engine.random_state import DRAWING_OPS
from gradd.v1 import command_pb2 as cpb
from gradd.v1 import graph_pb2 as gpb

from . import answer_bytes as answer
from . import wire_tensor as wire
from .custom_function import custom_function
from .errors import (
    SHOWN_CHARACTERS,
    ServiceError,
    exhausted,
    invalid,
    precondition,
    shown,
    status_of,
)
from .graph_snapshot import snapshot
from .op_args import ValueBudget, engine_dtype, short_string, to_python
from .op_tape import run_tape
from .optimizer_step import optimizer_step
from .programs import compile_program, free_program, run_program
from .session import Session
from .tensor_table import new_handle

log = logging.getLogger("gradd.server")

FACTORIES = tuple(sorted(ge.FACTORIES))  # the engine declares them (engine/factories.py)
_OPS, _call_op, _Tensor = ge.OPS, ge.call_op, ge.Tensor  # hot path: no module lookups
_out = new_handle


def grad_or_none(tensor: Any) -> Any:
    """`tensor.grad`, without the engine's warning for a non-leaf whose grad is None."""
    return tensor._grad  # the getter's value; the warning is for interactive users, not us


def _no_tensor(handle: str) -> Any:
    raise invalid(f"factory arguments are numbers, not tensors (got tensor {shown(handle)})")


def create_tensor(s: Session, c: cpb.CreateTensor, raw: memoryview | None = None) -> None:
    """`out = tensor(data, requires_grad=...)`; `raw` views data.raw in the request's bytes."""
    incoming = wire.IncomingTensor(c.data, raw)
    s.table.check_new(_out(c.out), incoming.nbytes)
    tensor = ge.tensor(incoming.array(), requires_grad=c.requires_grad, device=s.device)
    s.table.bind_one(c.out, tensor)


def factory(s: Session, c: cpb.Factory, budget: ValueBudget | None = None) -> None:
    """`out = randn/rand/zeros/ones/full/arange(...)` with the session's generator; `budget`
    counts the Values of the whole request (a fresh one: this command alone)."""
    if c.kind not in FACTORIES:
        raise invalid(f"unknown factory {shown(c.kind)}; allowed: {', '.join(FACTORIES)}")
    budget = budget or ValueBudget()
    budget.take(len(c.args))
    args = tuple(to_python(v, _no_tensor, budget) for v in c.args)
    fdef = ge.FACTORIES[c.kind]
    s.table.check_handles((_out(c.out),))  # the engine checks the bytes before allocating
    dtype = engine_dtype(c.dtype) if c.dtype else None
    shape = tuple(c.shape)
    try:
        if fdef.draws:
            with _gives_back_draws(s):
                tensor = fdef.run(shape, args, dtype, s.device, c.requires_grad, s.generator)
        else:
            tensor = fdef.run(shape, args, dtype, s.device, c.requires_grad)
    except (TypeError, IndexError) as exc:  # args that do not fit the factory's wire form
        what = f"{c.kind}: bad factory arguments {list(args)} (shape {list(shape)})"
        raise invalid(f"{what}: {exc}") from None
    s.table.bind_one(c.out, tensor)


class _gives_back_draws:
    """Restore the session's random stream if the block fails (it may have drawn first)."""

    __slots__ = ("session", "state")

    def __init__(self, s: Session) -> None:
        self.session = s

    def __enter__(self) -> None:
        self.state = self.session.generator.get_state()

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if kind is not None:
            self.session.generator.set_state(self.state)


def manual_seed(s: Session, c: cpb.ManualSeed) -> None:
    """Reseed the session's generator."""
    s.generator.manual_seed(c.seed)
    s.seed = c.seed


def run_op(s: Session, c: cpb.Op, budget: ValueBudget | None = None) -> None:
    """`outs = call_op(op, *args, **kwargs)` under the op's own grad mode; `budget` counts the
    Values of the whole request (a fresh one: this command alone)."""
    name = c.op
    opdef = _OPS.get(name)
    if opdef is None:
        raise invalid(unknown_op(name, shown(name)) + " (ServerInfo.ops lists every op)")
    outs = c.outs
    table = s.table
    draws = name in DRAWING_OPS
    if outs:
        if len(outs) > 1 and opdef.inplace:
            raise invalid(f"in-place op {shown(name)} gives 1 result, {len(outs)} outs named")
        for handle in outs:
            _out(handle)
        if opdef.inplace or draws:  # they change a tensor or the random stream as they run
            table.check_handles(outs)  # (other ops' results are checked when bound)
    lookup = table.get
    budget = budget or ValueBudget()
    budget.take(len(c.args) + len(c.kwargs))
    args = [to_python(v, lookup, budget) for v in c.args]
    kwargs = {}
    if c.kwargs:
        for k, v in c.kwargs.items():
            kwargs[short_string(k, "a kwarg name")] = to_python(v, lookup, budget)
    if draws:
        with _gives_back_draws(s):
            _bind_results(s, c, _call(c, name, args, kwargs))
        return
    if c.no_grad:  # _call's body, inlined on the hot path
        with ge.no_grad():
            result = _call_op(name, *args, **kwargs)
    else:
        result = _call_op(name, *args, **kwargs)
    if not outs:
        return
    if len(outs) == 1 and type(result) is _Tensor:  # the common case, kept short
        table.bind_one(outs[0], result)
        return
    _bind_results(s, c, result)


def _call(c: cpb.Op, name: str, args: list, kwargs: dict) -> Any:
    if c.no_grad:
        with ge.no_grad():
            return _call_op(name, *args, **kwargs)
    return _call_op(name, *args, **kwargs)  # grad mode is on between ops (execute() says so)


def _bind_results(s: Session, c: cpb.Op, result: Any) -> None:
    """Bind an op's results to its outs (their handles were checked before the op ran)."""
    outs, name = c.outs, c.op
    if not outs:
        return
    if len(outs) == 1 and type(result) is _Tensor:
        s.table.bind_one(outs[0], result)
        return
    results = result if isinstance(result, tuple) else (result,)
    if len(results) != len(outs):
        raise invalid(f"op {shown(name)} gives {len(results)} results, {len(outs)} outs named")
    if not all(isinstance(r, ge.Tensor) for r in results):
        raise invalid(f"op {shown(name)} gives {type(result).__name__}, not tensors, to bind")
    s.table.bind(list(zip(outs, results)))


def backward(s: Session, c: cpb.Backward) -> None:
    """`handle.backward(gradient, retain_graph, create_graph)`: one training step."""
    root = s.table.get(c.handle)
    gradient = s.table.get(c.gradient) if c.gradient else None
    retain = c.retain_graph if c.HasField("retain_graph") else None
    inputs = [s.table.get(h) for h in c.inputs] if c.inputs else None
    s.backward(
        c.handle,
        root,
        gradient=gradient,
        retain_graph=retain,
        create_graph=c.create_graph,
        inputs=inputs,
    )


def set_grad(s: Session, c: cpb.SetGrad) -> None:
    """`handle.grad = grad` (the tensor itself), or None for an empty `grad`."""
    tensor = s.table.get(c.handle)
    tensor.grad = s.table.get(c.grad) if c.grad else None


def set_data(s: Session, c: cpb.SetData) -> None:
    """`handle.data = data`: the elements of `data` (shared), `handle`'s autograd state."""
    tensor = s.table.get(c.handle)
    tensor.data = s.table.get(c.data)


def grad_of(s: Session, c: cpb.GradOf) -> None:
    """Bind `out` to `handle.grad` itself."""
    grad = grad_or_none(s.table.get(c.handle))
    if grad is None:
        raise precondition(f"tensor {shown(c.handle)} has no grad (its .grad is None)")
    s.table.bind_one(_out(c.out), grad)


def zero_grad(s: Session, c: cpb.ZeroGrad) -> None:
    """Zero each `.grad` in place, or set it to None (optimizer.zero_grad: one command)."""
    tensors = [s.table.get(h) for h in c.handles]  # all found before any is changed
    for tensor in tensors:
        if c.set_to_none:
            tensor.grad = None
        elif (grad := grad_or_none(tensor)) is not None:
            grad.detach_()  # as PyTorch's zero_grad: cut from any graph (create_graph's)
            with ge.no_grad():
                grad.zero_()


def retain_grad(s: Session, c: cpb.RetainGrad) -> None:
    """`handle.retain_grad()`."""
    s.table.get(c.handle).retain_grad()


def set_requires_grad(s: Session, c: cpb.SetRequiresGrad) -> None:
    """`handle.requires_grad_(requires_grad)`."""
    s.table.get(c.handle).requires_grad_(c.requires_grad)


def detach(s: Session, c: cpb.Detach) -> None:
    """`out = handle.detach()`."""
    s.table.bind_one(_out(c.out), s.table.get(c.handle).detach())


def release(s: Session, c: cpb.Release) -> None:
    """Unbind handles (unknown ones are ignored)."""
    s.table.release(c.handles)


def fetch(s: Session, c: cpb.Fetch, answered: int | None = None) -> list[Any]:
    """A TensorValue of `handle` or of its `.grad`, as wire-byte chunks.

    Its size is checked before it is built: with the `answered` bytes of the batch's answer
    so far (None: an answer of its own) it must fit the message limit, and its memory the
    session's byte limit (in a batch, reserved on the meter until the batch ends).
    """
    tensor = s.table.get(c.handle)
    if c.grad:
        tensor = grad_or_none(tensor)
        if tensor is None:
            return answer.none_value(c.handle)
    wire_bytes, memory = answer.answer_size(
        c.handle, tensor, metadata_only=c.metadata_only, typed_values=c.typed_values
    )
    _answer_fits(s, answered, wire_bytes, memory, f"fetch {c.handle!r}")
    return answer.tensor_value(
        c.handle, tensor, metadata_only=c.metadata_only, typed_values=c.typed_values
    )


def _answer_fits(s: Session, answered: int | None, wire_bytes: int, memory: int, what: str) -> None:
    # Raise unless an answer part fits the message limit and the session's bytes.
    so_far = answered or 0
    if so_far + wire_bytes > s.max_answer_bytes:
        raise exhausted(
            f"answer limit: the batch's answer holds {so_far} bytes, {what} adds {wire_bytes}, "
            f"past the message limit of {s.max_answer_bytes} bytes; ask for it in a batch of "
            "its own, or in parts"
        )
    if answered is None:
        s.meter.check(memory, f"the answer of {what}")
    else:
        s.meter.reserve(memory, f"the answer of {what}")


def graph(s: Session, c: cpb.Graph, answered: int | None = None) -> gpb.GraphSnapshot:
    """make_dot(handle, params) as a GraphSnapshot; remembered labels serve Watch snapshots.

    Checked as a fetch is (see `fetch`), once built and before anything else changes."""
    root = s.table.get(c.handle)
    params = {short_string(label, "a graph label"): s.table.get(h) for label, h in c.params.items()}
    picture = snapshot(root, params)
    size = picture.ByteSize()
    _answer_fits(s, answered, size, size, f"graph {c.handle!r}")
    if c.params:
        s.graph_params = dict(c.params)
    if c.publish:
        s.publish_graph(c.handle, picture)
    return picture


# The commands without op arguments (op and factory take the request's ValueBudget too).
APPLY: dict[str, Callable[[Session, Any], None]] = {
    "manual_seed": manual_seed,
    "backward": backward,
    "grad_of": grad_of,
    "set_grad": set_grad,
    "set_data": set_data,
    "zero_grad": zero_grad,
    "retain_grad": retain_grad,
    "requires_grad": set_requires_grad,
    "detach": detach,
    "release": release,
    "optimizer_step": optimizer_step,
    "run_program": run_program,
    "free_program": free_program,
}


def describe(command: cpb.Command) -> str:
    """A short name for a command in messages and logs, e.g. "op 'add'"."""
    kind = command.WhichOneof("kind") or "empty command"
    return f"op {shown(command.op.op)}" if kind == "op" else kind


def execute(
    s: Session,
    commands: Sequence[cpb.Command],
    response: cpb.ExecuteResponse,
    results: list,
    raw_views: dict[int, memoryview] | None = None,
) -> tuple[grpc.StatusCode, str] | None:
    """Apply commands in order; the failure that stopped them, if any.

    `response` gets `applied` and `error`; `results` gets the answers of fetch and graph
    commands as wire-byte chunks of ExecuteResponse.results. `raw_views` holds the raw data of
    large `tensor` commands, by index (see request_views). Call with the session's lock held.
    """
    if not ge.is_grad_enabled():  # never expected: ops switch it off only inside `with`
        ge.set_grad_enabled(True)
    # Random ops (dropout) draw from this session's stream; every allocation is metered.
    try:
        with ge.use_generator(s.generator), metering(s.meter):
            return _apply_all(s, commands, response, results, raw_views or {})
    finally:
        s.meter.end_batch()  # the answer leaves with the batch


def _apply_all(
    s: Session,
    commands: Sequence[cpb.Command],
    response: cpb.ExecuteResponse,
    results: list,
    raw_views: dict[int, memoryview],
) -> tuple[grpc.StatusCode, str] | None:
    interrupt = s.interrupt
    budget = ValueBudget()  # one for the whole request
    for index, command in enumerate(commands):
        kind = command.WhichOneof("kind")
        try:
            if interrupt.is_set():  # the server's grace period is over: stop between commands
                raise ServiceError(grpc.StatusCode.UNAVAILABLE, "server shutting down")
            if kind is None:
                raise invalid("a Command has no field set")
            if kind == "tape":
                run_tape(s, command.tape)
            elif kind == "op":
                run_op(s, command.op, budget)
            elif kind == "tensor":
                create_tensor(s, command.tensor, raw_views.get(index))
            elif kind == "fetch":
                chunks = fetch(s, command.fetch, sum(len(c) for c in results))
                results += answer.command_result(index, answer.RESULT_TENSOR, chunks)
            elif kind == "graph":
                picture = graph(s, command.graph, sum(len(c) for c in results))
                chunks = [picture.SerializeToString()]
                results += answer.command_result(index, answer.RESULT_GRAPH, chunks)
            elif kind == "factory":
                factory(s, command.factory, budget)
            elif kind == "custom_function":
                custom_function(s, command.custom_function, budget)
            elif kind == "compile_program":
                compile_program(s, command.compile_program, budget)
            else:
                APPLY[kind](s, getattr(command, kind))
        except Exception as exc:  # every failure becomes a status; the session goes on
            code, message = status_of(exc)
            log_failure(s.id, f"command {index} ({describe(command)})", code, message, exc)
            response.applied = index
            response.error.index = index
            response.error.code = code.value[0]
            response.error.message = message
            return code, message
    response.applied = len(commands)
    return None


def log_failure(
    session_id: str, what: str, code: grpc.StatusCode, message: str, exc: BaseException
) -> None:
    """One log line per error (with a traceback for our own bugs); never a token. The session
    id may be a client's unchecked string (an unknown session): it is cut."""
    if len(session_id) > SHOWN_CHARACTERS:
        session_id = shown(session_id)
    if code is grpc.StatusCode.INTERNAL:
        log.error(
            "session %s: %s failed: %s %s", session_id, what, code.name, message, exc_info=exc
        )
    else:
        log.info("session %s: %s failed: %s %s", session_id, what, code.name, message)
