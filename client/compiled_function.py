"""``s.compile(fn)`` on a server session: trace ``fn`` once, then run it as one command.

The first call runs ``fn`` with the session's pipeline capturing the commands it queues instead
of sending them; they are sent as the call's own effect (so it runs exactly as eager did),
followed by a CompileProgram that stores them on the server. A later call whose guards hold is
one RunProgram command: its tensor arguments, its number arguments and fresh handles for its
results. The server replays the program op for op, so results, gradients, grad_fn names and the
random stream's draws are eager's.

What a program depends on is guarded, as torch.compile guards it: the structure of the
arguments, each tensor argument's shape, dtype, device and requires_grad, grad mode, the
identity of the globals and closure cells ``fn`` reads (and of the parameters of nn.Modules and
the options of optimizers among them), and int, bool and str arguments by value. Float
arguments are inputs: a call with another learning rate runs the same program. A float that
``fn`` does anything else with (arithmetic, comparison, ``float()``, a keyword argument of an
op) makes that program guard its floats by value instead. A failed guard traces again; after
``RECOMPILE_LIMIT`` traces the function runs eagerly (one warning), as torch's
``recompile_limit``. Reading a value inside ``fn`` (``item()``, ``bool(t)``, ``print(t)``,
``tolist()``, ``numpy()``) is a graph break: an error with ``fullgraph=True``, else that call
goes on eagerly and the function is not compiled (one warning).

Limits (documented in docs/sdk.md): Python state other than the guarded objects (a list
element, an attribute of an object that is not a module or optimizer) is read once, at the
trace; a math-module function of a float argument (``math.exp(lr)``) reads it without the
guard noticing; returned tensors carry their grad_fn's name only (the server holds the graph).
"""

from __future__ import annotations

import functools
import itertools
import warnings
import weakref
from typing import Any

import numpy as np
from gradd.engine.grad_mode import _mode
from gradd.v1 import command_pb2 as cpb

from . import command_encoding as enc
from .call_site import user_site
from .compile_guards import RECOMPILE_LIMIT, Guarded
from .compile_trace import NumberArgument, Trace, payload
from .mirror_graph import OpaqueNode
from .remote_tensor import RemoteTensor, new_tensor

_programs = itertools.count(1)


def _flatten(x: Any, tensors: list, numbers: list, key: list) -> Any:
    """The argument structure as a guard key part; tensors and floats collected in order."""
    t = type(x)
    if t is RemoteTensor:
        tensors.append(x)
        key.append((0, x._s, x.shape, x.dtype, x._rg))
    elif t is float:
        numbers.append(x)
        key.append(1)
    elif t in (int, bool, str) or x is None:
        key.append((2, t, x))
    elif isinstance(x, np.generic):  # a NumPy scalar: a constant of the program, by value
        key.append((2, t, x.item()))
    elif t in (list, tuple):
        key.append((3, t, len(x)))
        for item in x:
            _flatten(item, tensors, numbers, key)
    elif t is dict:
        key.append((4, tuple(x)))
        for item in x.values():
            _flatten(item, tensors, numbers, key)
    else:
        key.append((5, id(x)))  # other objects (a model, an optimizer) by identity
    return key


def _rebuild(x: Any, tensors: Any, numbers: Any) -> Any:
    """``x`` with its tensors and floats taken from the iterators (the structure of a call)."""
    t = type(x)
    if t is RemoteTensor:
        return next(tensors)
    if t is float:
        return next(numbers)
    if t in (list, tuple):
        return t(_rebuild(i, tensors, numbers) for i in x)
    if t is dict:
        return {k: _rebuild(v, tensors, numbers) for k, v in x.items()}
    return x


class _Out:
    """A place in a result's template: the run's output ``index``, or float argument
    ``index`` (``number``), or tensor argument ``index`` (``argument``)."""

    __slots__ = ("index", "kind")

    def __init__(self, index: int, kind: str) -> None:
        self.index = index
        self.kind = kind


def _template(x: Any, trace: Trace, inputs: dict, outs: list) -> Any:
    """``x`` (a result) with its parts that change from run to run replaced by _Out places;
    None if it holds something a run cannot give back."""
    t = type(x)
    if t is RemoteTensor:
        if x._h in inputs:
            return _Out(inputs[x._h], "argument")
        if x._h not in trace.created:
            return x  # a tensor from before the call (a parameter): the same object, as eager
        outs.append(x)
        return _Out(len(outs) - 1, "output")
    if t is NumberArgument:
        return _Out(trace.twins[id(x.plain)], "number")
    if t in (float, int, bool, str) or x is None:
        return x
    if t in (list, tuple, dict):
        items = [_template(i, trace, inputs, outs) for i in (x.values() if t is dict else x)]
        if any(i is _REFUSED for i in items):
            return _REFUSED
        return dict(zip(x, items)) if t is dict else t(items)
    return _REFUSED


_REFUSED = object()


def _filled_in(x: Any, outs: list, numbers: list, tensors: list) -> Any:
    t = type(x)
    if t is _Out:
        kind = x.kind
        if kind == "output":
            return outs[x.index]
        return numbers[x.index] if kind == "number" else tensors[x.index]
    if t in (list, tuple):
        return t(_filled_in(i, outs, numbers, tensors) for i in x)
    if t is dict:
        return {k: _filled_in(v, outs, numbers, tensors) for k, v in x.items()}
    return x


class _Program:
    """One cached trace: the guard it holds for, and how to run it."""

    def __init__(self, session: Any, trace: Trace, key: tuple, numbers: list[float]) -> None:
        self.key = key
        self.by_value = tuple(numbers) if trace.by_value else None
        self.name = f"compiled-{next(_programs)}"
        self.session = session
        self.leaves: list[tuple[Any, int, int]] = []  # (leaf, version delta, has_grad after)
        self.optimizer_runs = trace.optimizer_runs
        self.sources: list[Any] = []  # per run number: a float argument index or an optimizer
        self.template: Any = None
        self.outputs: list[tuple] = []
        self.held: list = []  # what the key names by id, kept alive while the program is
        self.size = len(trace.cmds)  # commands in the program
        weakref.finalize(self, _free, weakref.ref(session), self.name)

    def run(self, tensors: list, numbers: list[float], site: tuple) -> Any:
        s = self.session
        counts = [recount() for recount in self.optimizer_runs]
        values = []
        for source in self.sources:
            if type(source) is int:
                values.append(numbers[source])
            else:
                run, position = source
                values.append(counts[run][position])
        outs = []
        for shape, dtype, rg, name, layout in self.outputs:
            t = new_tensor(s, shape, dtype, rg, OpaqueNode(None, name, (), ()) if name else None)
            t._layout = layout
            outs.append(t)
        s._push(_run_command(self.name, tensors, values, outs), site)
        # A run is as much work as its commands: send a batch when that much work is queued as
        # a batch of single commands holds, so that the server works while the client goes on.
        stream = s._stream
        work = stream.__dict__.get("program_work", 0) + self.size
        if work >= stream.batch_size:
            stream.flush()
            work = 0
        stream.program_work = work
        for leaf, delta, has_grad in self.leaves:
            if type(leaf) is int:
                leaf = tensors[leaf]
            leaf._vc[0] += delta
            leaf._has_grad = has_grad
            leaf._grad_obj = None  # read afresh: the server may have made a new grad tensor
        return _filled_in(self.template, outs, numbers, tensors)


def _free(session_ref: Any, name: str) -> None:
    """Free a collected function's program with the session's next batch (list.append is
    thread-safe; a finalizer must not queue a command in the middle of another)."""
    s = session_ref()
    if s is not None and not s._closed:
        s._stream.freed_programs.append(name)


_RUN_PROGRAM = enc.CMD["run_program"]
_RUN_INPUT = enc._len_key(cpb.RunProgram, "inputs")
_RUN_NUMBERS = enc._len_key(cpb.RunProgram, "numbers")
_RUN_OUT = enc._len_key(cpb.RunProgram, "outs")
_RUN_NAME = enc._len_key(cpb.RunProgram, "program")


def _run_command(name: str, tensors: list, numbers: list[float], outs: list) -> bytes:
    parts = [enc.length_delimited(_RUN_NAME, name.encode())]
    parts += [enc.length_delimited(_RUN_INPUT, t._h) for t in tensors]
    if numbers:
        packed = b"".join(enc._pack_double(float(n)) for n in numbers)
        parts.append(enc.length_delimited(_RUN_NUMBERS, packed))
    parts += [enc.length_delimited(_RUN_OUT, t._h) for t in outs]
    return enc.framed(_RUN_PROGRAM, b"".join(parts))


class CompiledFunction:
    """``fn`` compiled for one session (what ``s.compile(fn)`` returns)."""

    def __init__(self, session: Any, fn: Any, fullgraph: bool) -> None:
        self._s = session
        self._fn = fn
        self._fullgraph = fullgraph
        self._programs: list[_Program] = []
        self._traces = 0
        self._eager = False
        self._guarded = Guarded(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._eager or self._s._compile_trace is not None:
            return self._fn(*args, **kwargs)  # inside another trace: part of its program
        tensors: list = []
        numbers: list = []
        key = _flatten((args, kwargs), tensors, numbers, [_mode.enabled])
        key.append(self._guarded.key())
        key = tuple(key)
        for program in self._programs:
            by_value = program.by_value
            if program.key == key and (by_value is None or by_value == tuple(numbers)):
                return program.run(tensors, numbers, ("compiled " + self.__name__, *user_site()))
        if self._traces >= RECOMPILE_LIMIT:
            self._eager = True
            warnings.warn(
                f"compiled function {self.__qualname__} was traced {RECOMPILE_LIMIT} times "
                "(recompile_limit); it runs eagerly from now on",
                stacklevel=2,
            )
            return self._fn(*args, **kwargs)
        return self._trace(args, kwargs, tensors, numbers, key)

    def _trace(self, args: Any, kwargs: Any, tensors: list, numbers: list, key: tuple) -> Any:
        s = self._s
        if any(t._s is not s for t in tensors):
            self._eager = True
            return self._fn(*args, **kwargs)
        trace = Trace(s, self._fullgraph, self._fn)
        wrapped = [NumberArgument(n, trace) for n in numbers]
        trace.twins = {id(w.plain): i for i, w in enumerate(wrapped)}
        args, kwargs = _rebuild((args, kwargs), iter(tensors), iter(wrapped))
        leaves = {id(t): (t, t._vc[0], t._has_grad) for t in [*s._leaves, *tensors]}
        for t, _, _ in leaves.values():
            # A .grad read in fn binds its handle in the trace (a temporary of the program),
            # never one from before that the client may release while the program lives.
            t._grad_obj = None
        trace.start()
        try:
            result = self._fn(*args, **kwargs)
        finally:
            trace.end()
        if trace.broken:
            self._eager = True
            return result
        self._traces += 1
        program = _Program(s, trace, key, numbers)
        inputs = {t._h: i for i, t in enumerate(tensors)}
        read = {id(t): t for t in trace.keep if t._h not in inputs}  # not the arguments
        program.held = [*self._guarded.held(), *read.values()]
        out_tensors: list = []
        template = _template(result, trace, inputs, out_tensors)
        if not trace.cacheable or template is _REFUSED or _rebinds_old(trace):
            return _unwrapped(result)
        program.template = template
        for t in out_tensors:
            name = t.grad_fn.name() if t.grad_fn is not None else ""
            program.outputs.append((t.shape, t.dtype, t._rg, name, t._layout))
        changed = [
            (t, t._vc[0] - vc, t._has_grad)
            for t, vc, has_grad in leaves.values()
            if t._vc[0] != vc or t._has_grad != has_grad or t._grad_obj is not None
        ]
        for t, _, _ in changed:
            t._grad_obj = None
        # The tensor arguments' mirrors change in the run's arguments, the others' in place.
        program.leaves = [(inputs.get(t._h, t), delta, has) for t, delta, has in changed]
        message = cpb.CompileProgram(
            program=program.name,
            commands=[cpb.Command.FromString(payload(c)) for c in trace.cmds],
            inputs=[h.decode() for h in inputs],
            outputs=[t._h.decode() for t in out_tensors],
        )
        for command, position, index in trace.numbers:
            message.numbers.add(command=command, position=position)
            program.sources.append(index)
        runs = {id(r): i for i, r in enumerate(trace.optimizer_runs)}
        for command, position, recount in trace.optimizer_numbers:
            message.numbers.add(command=command, position=position)
            program.sources.append((runs[id(recount)], position))
        s._push(
            enc.framed(enc.CMD["compile_program"], message.SerializeToString()),
            ("compile " + self.__name__, *user_site(3)),
        )
        self._programs.append(program)
        return _unwrapped(result)


def _rebinds_old(trace: Trace) -> bool:
    """Whether a captured command rebinds a handle older than the trace (``detach_()`` of a
    parameter): such a trace is not replayed."""
    for cmd in trace.cmds:
        c = cpb.Command.FromString(payload(cmd))
        if c.WhichOneof("kind") == "detach" and c.detach.out == c.detach.handle:
            if c.detach.out.encode() not in trace.created:
                return True
    return False


def _unwrapped(x: Any) -> Any:
    """The result with float arguments returned as plain floats."""
    t = type(x)
    if t is NumberArgument:
        return float.__new__(float, x)
    if t in (list, tuple):
        return t(_unwrapped(i) for i in x)
    if t is dict:
        return {k: _unwrapped(v) for k, v in x.items()}
    return x


def compile_for(session: Any, fn: Any = None, *, fullgraph: bool = False, **options: Any) -> Any:
    """``torch.compile(fn, *, fullgraph=False)`` for a server session; without ``fn``, a
    decorator. ``options`` (backend, mode, dynamic, ...) are accepted and change nothing."""
    if fn is None:
        return lambda f: CompiledFunction(session, f, fullgraph)
    return CompiledFunction(session, fn, fullgraph)
