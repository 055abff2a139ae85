"""Programs: commands a client traced once (`s.compile`), checked and resolved once, replayed by
one RunProgram command (gradd.v1 CompileProgram, RunProgram, FreeProgram).

Compiling walks the program once: every command is checked (its kind, op name, handles and
Values, under the request's Value budget) and every handle it reads or binds gets a slot: the
run's inputs and numbers first, then the session tensors the program captures, then its
temporaries. Each op becomes a small closure holding its OpDef's forward, its constant
arguments and the slots of its tensor arguments, so a run neither looks up names nor converts
Values. The other kinds (backward, grad_of, zero_grad, optimizer_step, ...) keep their
command's own function, run against the run's scope (`RunScope`, which looks like the session's
table): their work is one call each, not per-op dispatch.

A run's temporaries live in its scope and are dropped when it ends; its outputs are bound to
the handles the run names. A failing command stops the run as it stops a batch: the commands
before it stay applied, it changes nothing itself (each command's own rule), no output is
bound.

Stored programs are part of a durable session's snapshot (``EXTRA_STATE["programs"]``): each
one's CompileProgram bytes, in the order they were stored. A restore compiles them again as
CompileProgram does (every check, the session's program and byte limits), after the tensors are
bound; a program a manifest holds that CompileProgram would refuse fails the whole restore, so a
session is never half-loaded. A freed program is gone from the session, so from its snapshot.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import gradd.engine as ge
import numpy as np
from gradd.engine.random_state import DRAWING_OPS
from gradd.v1 import command_pb2 as cpb

from .errors import exhausted, invalid, not_found, shown
from .op_args import ValueBudget, short_string, to_python
from .session import Session
from .session_snapshot import EXTRA_STATE
from .tensor_table import new_handle
from .wire_tensor import IncomingTensor

MAX_PROGRAMS = 256  # stored programs per session (their bytes are metered too)
MAX_PROGRAM_COMMANDS = 1 << 14  # commands in one program (as in one ExecuteRequest)
# Kinds a program may hold, and what each command reads and binds (op and the optimizer step
# are walked by their own code below).
_READS: dict[str, Callable[[Any], list[str]]] = {
    "backward": lambda c: [c.handle, *([c.gradient] if c.gradient else []), *c.inputs],
    "grad_of": lambda c: [c.handle],
    "set_grad": lambda c: [c.handle, *([c.grad] if c.grad else [])],
    "set_data": lambda c: [c.handle, c.data],
    "zero_grad": lambda c: list(c.handles),
    "retain_grad": lambda c: [c.handle],
    "requires_grad": lambda c: [c.handle],
    "detach": lambda c: [c.handle],
    "factory": lambda c: [],
    "tensor": lambda c: [],
    "manual_seed": lambda c: [],
}
_BINDS: dict[str, Callable[[Any], list[str]]] = {
    "grad_of": lambda c: [c.out],
    "detach": lambda c: [c.out],
    "factory": lambda c: [c.out],
    "tensor": lambda c: [c.out],
}
_ALLOWED = (*_READS, "op", "optimizer_step")


class _Ref:
    """A tensor argument's slot, in place of the tensor while an op is being resolved."""

    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        self.slot = slot


class RunScope:
    """The session's table as one run sees it: the program's slots over the session's handles.
    Commands that are not ops run against it as they run against the table."""

    __slots__ = ("table", "slot_of", "values", "persist", "meter")

    def __init__(self, table: Any, slot_of: dict[str, int], values: list, persist: set) -> None:
        self.table = table
        self.slot_of = slot_of
        self.values = values
        self.persist = persist  # slots of session handles: binding them rebinds the session's
        self.meter = table.meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.table, name)  # nbytes, max_tensors, ... (read by other threads too)

    def get(self, handle: str) -> Any:
        slot = self.slot_of.get(handle)
        if slot is None:
            return self.table.get(handle)
        value = self.values[slot]
        if value is None:
            raise not_found(f"unknown tensor handle {shown(handle)}")
        return value

    def __contains__(self, handle: str) -> bool:
        slot = self.slot_of.get(handle)
        return handle in self.table if slot is None else self.values[slot] is not None

    def __len__(self) -> int:
        return len(self.table)

    def check_handles(self, handles: Any) -> None:
        self.table.check_handles(h for h in handles if h not in self.slot_of)

    def check_new(self, handle: str, nbytes: int) -> None:
        self.check_handles((handle,))
        self.meter.check(nbytes)

    def bind_one(self, handle: str, tensor: Any) -> None:
        slot = self.slot_of.get(handle)
        if slot is None or slot in self.persist:
            self.table.bind_one(handle, tensor)
        if slot is not None:
            self.values[slot] = tensor

    def bind(self, pairs: Any) -> None:
        self.check_handles(h for h, _ in pairs)
        for handle, tensor in pairs:
            self.bind_one(handle, tensor)

    def release(self, handles: Any) -> None:
        raise invalid("a program cannot release handles")


class Program:
    """A checked program: its steps, its slots, and its counted bytes."""

    __slots__ = (
        "name",
        "steps",
        "n_slots",
        "n_inputs",
        "n_numbers",
        "captured",
        "outputs",
        "slot_of",
        "persist",
        "n_temps",
        "stored",
        "restoring",
    )

    def __init__(self, name: str, restoring: bool = False) -> None:
        self.name = name
        self.steps: list[Callable[[list], None]] = []
        self.slot_of: dict[str, int] = {}
        self.captured: list[tuple[int, str]] = []  # (slot, session handle), read by each run
        self.persist: set[int] = set()
        self.outputs: list[int] = []
        self.n_slots = self.n_inputs = self.n_numbers = self.n_temps = 0
        self.stored: Any = None
        # Compiled again from a snapshot: a session handle it captures may have been released
        # since it was compiled; a run then fails NOT_FOUND as it would have before the restart.
        self.restoring = restoring

    def _slot(self) -> int:
        self.n_slots += 1
        return self.n_slots - 1

    def read(self, s: Session, handle: str) -> int:
        """The slot of a handle a command reads: an input's, a temporary's, or a session
        tensor's (captured; NOT_FOUND if unbound now)."""
        slot = self.slot_of.get(handle)
        if slot is None:
            if not self.restoring:
                s.table.get(handle)
            slot = self.slot_of[handle] = self._slot()
            self.captured.append((slot, handle))
            self.persist.add(slot)
        return slot

    def bind(self, handle: str) -> int:
        """The slot a command binds: a new temporary unless the handle has one already."""
        slot = self.slot_of.get(new_handle(handle))
        if slot is None:
            slot = self.slot_of[handle] = self._slot()
            self.n_temps += 1
        return slot


def _no_tensor(handle: str) -> Any:
    raise invalid(f"factory arguments are numbers, not tensors (got tensor {shown(handle)})")


def compile_program(
    s: Session, c: cpb.CompileProgram, budget: ValueBudget, restoring: bool = False
) -> None:
    """Check and resolve a program, and store it under its name (replacing one)."""
    name = new_handle(c.program)
    if name not in s.programs and len(s.programs) >= MAX_PROGRAMS:
        raise exhausted(
            f"session program limit: {len(s.programs)} programs stored, the limit is "
            f"{MAX_PROGRAMS}; free some (FreeProgram)"
        )
    if len(c.commands) > MAX_PROGRAM_COMMANDS:
        raise invalid(f"a program has at most {MAX_PROGRAM_COMMANDS} commands")
    p = Program(name, restoring)
    for h in c.inputs:
        if new_handle(h) in p.slot_of:
            raise invalid(f"program input {shown(h)} is named twice")
        p.slot_of[h] = p._slot()
    p.n_inputs = len(c.inputs)
    p.n_numbers = len(c.numbers)
    number_slots = [p._slot() for _ in c.numbers]
    numbers: dict[int, dict[int, int]] = {}  # command -> position -> slot
    for n, slot in zip(c.numbers, number_slots):
        if n.command >= len(c.commands):
            raise invalid(f"a program number goes to command {n.command}, past its end")
        numbers.setdefault(n.command, {})[n.position] = slot
    for index, command in enumerate(c.commands):
        kind = command.WhichOneof("kind")
        if kind not in _ALLOWED:
            raise invalid(
                f"command {index} of a program is {kind or 'empty'}; programs hold "
                f"{', '.join(_ALLOWED)} commands"
            )
        msg = getattr(command, kind)
        at = numbers.get(index, {})
        if kind == "op":
            p.steps.append(_op_step(s, p, msg, budget, at))
        elif kind == "optimizer_step":
            p.steps.append(_optimizer_step(s, p, msg, at))
        else:
            if at:
                raise invalid(f"a program number goes to command {index}, a {kind} command")
            if kind == "factory":  # checked now as it will be run (its draws happen then)
                if msg.kind not in ge.FACTORIES:
                    raise invalid(f"unknown factory {shown(msg.kind)} in a program")
                budget.take(len(msg.args))
                for v in msg.args:
                    to_python(v, _no_tensor, budget)
            elif kind == "tensor":
                IncomingTensor(msg.data)  # its dtype, shape and size agree
            for h in _READS[kind](msg):
                p.read(s, h)
            for h in _BINDS.get(kind, lambda c: [])(msg):
                p.bind(h)
            p.steps.append(_command_step(s, kind, msg))
    for h in c.outputs:
        if h not in p.slot_of:
            p.read(s, h)
        p.outputs.append(p.slot_of[h])
    stored = np.frombuffer(c.SerializeToString(), np.uint8).copy()
    s.meter.check(stored.nbytes, "a program")
    s.meter.charge(stored)
    p.stored = stored  # counted while the program is stored
    s.programs[name] = p


def _op_step(
    s: Session, p: Program, op: cpb.Op, budget: ValueBudget, numbers: dict[int, int]
) -> Callable[[list], None]:
    name = op.op
    opdef = ge.OPS.get(name)
    if opdef is None:
        raise invalid(f"unknown op {shown(name)} in a program (ServerInfo.ops lists every op)")
    budget.take(len(op.args) + len(op.kwargs))

    def lookup(h: str) -> _Ref:
        return _Ref(p.read(s, h))

    args = [to_python(v, lookup, budget) for v in op.args]
    kwargs = {}
    for k, v in op.kwargs.items():
        kwargs[short_string(k, "a kwarg name")] = to_python(v, lookup, budget)
    for position, slot in numbers.items():
        if position >= len(args) or type(args[position]) is not float:
            raise invalid(
                f"a program number goes to argument {position} of op {shown(name)}, "
                "which is not a float"
            )
        args[position] = _Ref(slot)
    outs = [p.bind(h) for h in op.outs]
    if len(outs) > 1 and opdef.inplace:
        raise invalid(f"in-place op {shown(name)} gives 1 result, {len(outs)} outs named")
    fn = opdef.call
    top = [(i, a.slot) for i, a in enumerate(args) if type(a) is _Ref]
    nested = any(_holds_ref(a) for a in args if type(a) is not _Ref)
    nested = nested or any(_holds_ref(v) for v in kwargs.values())
    consts = tuple(None if type(a) is _Ref else a for a in args)
    no_grad, draws, persist = op.no_grad, name in DRAWING_OPS, p.persist
    scope_bind = _binder(s, p, op.outs, outs, name)

    def arguments(v: list) -> tuple[list, dict]:
        a = list(consts)
        for i, slot in top:
            a[i] = v[slot]
        if nested:
            return [_resolve(x, v) for x in a], {k: _resolve(x, v) for k, x in kwargs.items()}
        return a, kwargs

    def step(v: list) -> None:
        a, kw = arguments(v)
        if draws:
            state = s.generator.get_state()
            try:
                result = _call(fn, a, kw, no_grad)
            except BaseException:
                s.generator.set_state(state)  # a failing draw gives back what it drew
                raise
        else:
            result = _call(fn, a, kw, no_grad)
        if outs:
            if len(outs) == 1 and type(result) is ge.Tensor and outs[0] not in persist:
                v[outs[0]] = result  # the common case: one temporary
            else:
                scope_bind(v, result)

    return step


def _call(fn: Callable, a: list, kw: dict, no_grad: bool) -> Any:
    if no_grad:
        with ge.no_grad():
            return fn(*a, **kw)
    return fn(*a, **kw)


def _binder(s: Session, p: Program, handles: Any, slots: list, name: str) -> Callable:
    def bind(v: list, result: Any) -> None:
        results = result if isinstance(result, tuple) else (result,)
        if len(results) != len(slots):
            raise invalid(f"op {shown(name)} gives {len(results)} results, {len(slots)} outs named")
        if not all(isinstance(r, ge.Tensor) for r in results):
            raise invalid(f"op {shown(name)} gives {type(result).__name__}, not tensors, to bind")
        for h, slot, r in zip(handles, slots, results):
            v[slot] = r
            if slot in p.persist:
                s.table.bind_one(h, r)

    return bind


def _holds_ref(x: Any) -> bool:
    if type(x) is _Ref:
        return True
    return type(x) in (list, tuple) and any(_holds_ref(i) for i in x)


def _resolve(x: Any, v: list) -> Any:
    if type(x) is _Ref:
        return v[x.slot]
    if type(x) in (list, tuple):
        return type(x)(_resolve(i, v) for i in x)
    return x


def _optimizer_step(
    s: Session, p: Program, c: cpb.OptimizerStep, numbers: dict[int, int]
) -> Callable[[list], None]:
    from .optimizer_step import optimizer_step

    params = [entry for group in c.groups for entry in group.params]
    for entry in params:
        p.read(s, entry.param)
        for h in entry.state:
            (p.bind if entry.init else lambda h: p.read(s, h))(h)
    for position in numbers:
        if position >= len(params):
            raise invalid(
                f"a program number goes to parameter {position} of an optimizer step "
                f"of {len(params)}"
            )
    steps = [(params[position], slot) for position, slot in numbers.items()]

    def step(v: list) -> None:
        for entry, slot in steps:
            entry.step = v[slot]
        optimizer_step(s, c)

    return step


def _command_step(s: Session, kind: str, msg: Any) -> Callable[[list], None]:
    from .command_runner import APPLY, create_tensor, factory

    if kind == "factory":
        return lambda v: factory(s, msg)
    if kind == "tensor":
        return lambda v: create_tensor(s, msg)
    apply = APPLY[kind]
    return lambda v: apply(s, msg)


def run_program(s: Session, c: cpb.RunProgram) -> None:
    """Bind the inputs, run the steps against the run's scope, bind the outputs."""
    p = s.programs.get(c.program)
    if p is None:
        raise not_found(f"unknown program {shown(c.program)}")
    for what, given, wanted in (
        ("inputs", len(c.inputs), p.n_inputs),
        ("numbers", len(c.numbers), p.n_numbers),
        ("outs", len(c.outs), len(p.outputs)),
    ):
        if given != wanted:
            raise invalid(f"program {shown(p.name)} takes {wanted} {what}, {given} given")
    table = s.table
    outs = [new_handle(h) for h in c.outs]
    if len(table) + p.n_temps + len(outs) > table.max_tensors:
        table.check_handles([*outs, *(h for h in p.slot_of if h not in table)])
    v: list = [None] * p.n_slots
    v[: p.n_inputs] = [table.get(h) for h in c.inputs]
    v[p.n_inputs : p.n_inputs + p.n_numbers] = c.numbers
    for slot, h in p.captured:
        v[slot] = table.get(h)
    s.table = RunScope(table, p.slot_of, v, p.persist)
    try:
        for step in p.steps:
            step(v)
    finally:
        s.table = table
    results = [v[slot] for slot in p.outputs]
    if any(r is None for r in results):
        raise invalid(f"program {shown(p.name)} left an output unbound")
    table.bind(list(zip(outs, results)))


def free_program(s: Session, c: cpb.FreeProgram) -> None:
    """Forget a program (unknown names are ignored)."""
    s.programs.pop(c.program, None)


# --- snapshots ---------------------------------------------------------------------------------
def _capture(s: Session) -> list[list[str]]:
    """[name, base64 of its CompileProgram bytes] per stored program, in the order stored."""
    return [[name, base64.b64encode(p.stored.tobytes()).decode()] for name, p in s.programs.items()]


def _restore(s: Session, value: Any) -> None:
    """Compile a snapshot's programs again, each checked as its CompileProgram was; raises (the
    session is discarded) on anything CompileProgram would refuse."""
    if not isinstance(value, list):
        raise ValueError("the snapshot's programs are not a list")
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 2 and all(type(x) is str for x in entry)):
            raise ValueError("a snapshot program is not [name, bytes]")
        name, data = entry
        c = cpb.CompileProgram.FromString(base64.b64decode(data, validate=True))
        if c.program != name:
            raise ValueError(f"snapshot program {shown(name)} holds program {shown(c.program)}")
        compile_program(s, c, ValueBudget(), restoring=True)


EXTRA_STATE["programs"] = (_capture, _restore)
