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
import types
import warnings
import weakref
from typing import Any

import numpy as np
from gradd.engine.grad_mode import _mode
from gradd.v1 import command_pb2 as cpb

from . import command_encoding as enc
from . import op_recording
from .call_site import user_site
from .errors import GraddError
from .mirror_graph import OpaqueNode
from .nn.module import Module
from .optim.optimizer import Optimizer
from .remote_tensor import RemoteTensor, new_tensor
from .session_base import Session

RECOMPILE_LIMIT = 8  # torch._dynamo.config.recompile_limit
_programs = itertools.count(1)


class GraphBreakError(GraddError):
    """A value was read inside a function compiled with ``fullgraph=True``."""

    code_name = "FAILED_PRECONDITION"


class _NumberArgument(float):
    """A float argument while ``fn`` is traced: passed to an op as it is, it becomes a program
    input (``plain``, a float object of its own, is what the op receives); any other use marks
    the trace as reading its value."""

    def __new__(cls, value: float, trace: _Trace) -> _NumberArgument:
        self = super().__new__(cls, value)
        self.trace = trace
        self.plain = float.__new__(float, value)  # an object no constant of fn can be
        return self

    def __reduce__(self) -> Any:
        return (float, (float(self),))


def _reading(name: str) -> Any:
    base = getattr(float, name)

    def method(self: _NumberArgument, *args: Any) -> Any:
        result = base(self, *args)
        if result is not NotImplemented:
            self.trace.by_value = True
        return result

    method.__name__ = name
    return method


for _name in (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __floordiv__ "
    "__rfloordiv__ __mod__ __rmod__ __divmod__ __rdivmod__ __pow__ __rpow__ __neg__ __pos__ "
    "__abs__ __lt__ __le__ __gt__ __ge__ __eq__ __ne__ __bool__ __int__ __float__ __round__ "
    "__trunc__ __floor__ __ceil__ as_integer_ratio is_integer hex conjugate"
).split():
    setattr(_NumberArgument, _name, _reading(_name))
_NumberArgument.__hash__ = float.__hash__  # type: ignore[method-assign]


class _GraphBreak(Exception):
    pass


class _Trace:
    """What one traced call queued, and what each later run must know."""

    def __init__(self, s: Any, fullgraph: bool, fn: Any) -> None:
        self.s = s
        self.fullgraph = fullgraph
        self.fn = fn
        self.cmds: list[bytes] = []
        self.sites: list[tuple] = []
        self.by_value = False
        self.numbers: list[tuple[int, int, int]] = []  # (command, position, float argument)
        self.optimizer_numbers: list[tuple[int, int, Any]] = []  # (command, position, source)
        self.optimizer_runs: list[Any] = []  # per-run bookkeeping of optimizer steps
        self.twins: dict[int, int] = {}  # id(plain) -> float argument index
        self.keep: list[Any] = []
        self.broken = False
        self.cacheable = True
        self.created: set[bytes] = set()  # handles of the tensors the trace made

    def next_handle(self) -> bytes:
        handle = self.saved_next_handle()
        self.created.add(handle)
        return handle

    # the pipeline's methods while tracing
    def push(self, cmd: bytes, site: tuple) -> None:
        self.cmds.append(cmd)
        self.sites.append(site)

    def send_alone(self, parts: list, site: tuple) -> None:
        self.push(b"".join(parts), site)

    def flush(self) -> int:
        return 0  # sent when the trace ends

    def read(self, method: str) -> Any:
        def reading(*args: Any, **kwargs: Any) -> Any:
            self.graph_break()
            return getattr(self.s._stream, method)(*args, **kwargs)

        return reading

    def graph_break(self) -> None:
        filename, line = user_site(3)
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        self.end()
        if self.fullgraph:
            raise GraphBreakError(
                f"compiled function {name} reads a tensor's value at {filename}:{line} (a graph "
                "break: .item(), bool(), print(), .tolist(), .numpy(), float()); "
                "fullgraph=True allows none. Read values outside the function, or compile it "
                "without fullgraph"
            )
        self.broken = True
        warnings.warn(
            f"compiled function {name} reads a tensor's value at {filename}:{line} (a graph "
            "break); it runs eagerly from now on",
            stacklevel=4,
        )

    # hooks
    def op_command(self, opdef: Any, args: tuple, attrs: dict, outs: tuple) -> bytes:
        cmd = _op_command(opdef, args, attrs, outs)
        if opdef.arity != -1:
            for position, a in enumerate(args):
                if type(a) is float and id(a) in self.twins:
                    self.numbers.append((len(self.cmds), position, self.twins[id(a)]))
        if any(isinstance(v, _NumberArgument) for v in attrs.values()):
            self.by_value = True
        return cmd

    def optimizer_step(self, rule: Any, groups: list, recount: Any) -> None:
        """An optimizer step queued by the trace: each run recounts its steps (``recount``)
        and sends the counts as numbers; a step that makes state is not replayed."""
        if any(fresh for _, params, _, _ in groups for _, _, fresh, _ in params):
            self.cacheable = False  # its state is made once: trace the next call again
        self.optimizer_runs.append(recount)
        if rule.counts_steps:
            flat = [p for _, params, _, _ in groups for p in params]
            for position in range(len(flat)):
                self.optimizer_numbers.append((len(self.cmds), position, recount))

    def start(self) -> None:
        s = self.s
        self.saved_push = s._push
        s._push = self.push
        self.saved_next_handle = s._next_handle
        s._next_handle = self.next_handle
        stream = s._stream
        stream.send_alone = self.send_alone
        stream.flush = self.flush
        for method in ("request", "request_all", "synchronize", "wait_for"):
            setattr(stream, method, self.read(method))
        s._compile_trace = self
        _TRACES.append(self)
        op_recording.op_command = _tracing_op_command

    def end(self) -> None:
        """Stop capturing and queue what was captured, as eager would have."""
        s = self.s
        if s._compile_trace is not self:
            return
        s._compile_trace = None
        _TRACES.remove(self)
        if not _TRACES:
            op_recording.op_command = _op_command
        s._push = self.saved_push
        del s._next_handle  # the class's again
        for method in ("send_alone", "flush", "request", "request_all", "synchronize", "wait_for"):
            s._stream.__dict__.pop(method, None)
        for cmd, site in zip(self.cmds, self.sites):
            s._push(cmd, site)


_op_command = op_recording.op_command
_TRACES: list[_Trace] = []  # traces running now (sessions on other threads may trace too)


def _tracing_op_command(opdef: Any, args: tuple, attrs: dict, outs: tuple) -> bytes:
    """``op_recording.op_command`` while any session traces: its session's trace notes the
    op's float arguments."""
    for a in args:
        if type(a) is RemoteTensor:
            trace = a._s._compile_trace
            if trace is not None:
                return trace.op_command(opdef, args, attrs, outs)
            break
    return _op_command(opdef, args, attrs, outs)


def _payload(framed: bytes) -> bytes:
    """A Command's bytes from its ExecuteRequest.commands entry."""
    i, shift, n = len(enc.REQ_COMMAND), 0, 0
    while True:
        byte = framed[i]
        n |= (byte & 0x7F) << shift
        i += 1
        shift += 7
        if byte < 0x80:
            return framed[i : i + n]


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


def _read_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _read_names(const)
    return names


class _Guarded:
    """Where the objects ``fn`` reads live: the globals it names and its closure cells (read
    at each call: a global bound after ``compile`` counts), and its bound object."""

    def __init__(self, fn: Any) -> None:
        self.fixed: list[Any] = []
        target = getattr(fn, "__func__", fn)
        owner = getattr(fn, "__self__", None)
        if owner is not None:
            self.fixed.append(owner)
        if getattr(target, "__code__", None) is None:  # a callable object: its __call__
            self.fixed.append(fn)
            target = type(fn).__call__
        code = getattr(target, "__code__", None)
        self.globals = getattr(target, "__globals__", {}) if code is not None else {}
        self.names = sorted(_read_names(code)) if code is not None else []
        self.cells = (getattr(target, "__closure__", None) or ()) if code is not None else ()

    def held(self) -> list:
        """The guarded objects and the parameters their key names: a program keeps them, so
        that no new object takes the id of one of them while the program may run."""
        objects = self.objects()
        for obj in list(objects):
            found = [obj]
            if _KINDS.get(type(obj)) == _HOLDER:
                found = [v for v in vars(obj).values() if isinstance(v, (Module, Optimizer))]
            for o in found:
                if isinstance(o, Module):
                    objects += list(o.parameters())
                elif isinstance(o, Optimizer):
                    objects += [p for group in o.param_groups for p in group["params"]]
        return objects

    def objects(self) -> list:
        g = self.globals
        objects = [*self.fixed, *(g.get(n, _MISSING) for n in self.names)]
        for cell in self.cells:
            try:
                objects.append(cell.cell_contents)
            except ValueError:  # an empty cell
                objects.append(_MISSING)
        return objects

    def key(self) -> tuple:
        """Identity of the guarded objects, of the parameters of modules among them (or among
        their attributes) and of optimizers' parameters; optimizers' options by value."""
        g = self.globals
        objects = [*self.fixed, *(g.get(n, _MISSING) for n in self.names)]
        for cell in self.cells:
            try:
                objects.append(cell.cell_contents)
            except ValueError:  # an empty cell
                objects.append(_MISSING)
        key: list[Any] = []
        for obj in objects:
            key.append(id(obj))
            kind = _KINDS.get(type(obj))
            if kind is None:
                kind = _KINDS[type(obj)] = _kind(type(obj))
            if kind == _STATEFUL:
                _state(obj, key)
            elif kind == _HOLDER:
                for v in vars(obj).values():
                    if _KINDS.get(type(v)) == _STATEFUL or isinstance(v, (Module, Optimizer)):
                        key.append(id(v))
                        _state(v, key)
        return tuple(key)


_PLAIN, _STATEFUL, _HOLDER = 0, 1, 2
_KINDS: dict[type, int] = {}
_NOT_HOLDERS = (
    type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    functools.partial, RemoteTensor, Session, int, float, str, bytes, list, tuple, dict, set,
)  # fmt: skip


def _kind(t: type) -> int:
    """Whether objects of type ``t`` are modules or optimizers (their state is guarded), plain
    objects whose attributes may hold some, or neither."""
    if issubclass(t, (Module, Optimizer)):
        return _STATEFUL
    if issubclass(t, _NOT_HOLDERS) or not hasattr(t, "__dict__") or t.__module__ == "builtins":
        return _PLAIN
    return _HOLDER if "__dict__" in dir(t) else _PLAIN


def _state(obj: Any, key: list) -> None:
    if isinstance(obj, Module):
        key.append(tuple(map(id, obj.parameters())))
        return
    for group in obj.param_groups:
        key.append(tuple((k, _plain(v)) for k, v in group.items() if k != "params"))
        key.append(tuple(map(id, group["params"])))


_MISSING = object()


def _plain(v: Any) -> Any:
    if type(v) in (int, float, bool, str, type(None)):
        return v
    return tuple(map(_plain, v)) if type(v) in (list, tuple) else id(v)


class _Out:
    """A place in a result's template: the run's output ``index``, or float argument
    ``index`` (``number``), or tensor argument ``index`` (``argument``)."""

    __slots__ = ("index", "kind")

    def __init__(self, index: int, kind: str) -> None:
        self.index = index
        self.kind = kind


def _template(x: Any, trace: _Trace, inputs: dict, outs: list) -> Any:
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
    if t is _NumberArgument:
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

    def __init__(self, session: Any, trace: _Trace, key: tuple, numbers: list[float]) -> None:
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
        self._guarded = _Guarded(fn)
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
        trace = _Trace(s, self._fullgraph, self._fn)
        wrapped = [_NumberArgument(n, trace) for n in numbers]
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
        program.held = self._guarded.held()
        inputs = {t._h: i for i, t in enumerate(tensors)}
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
            commands=[cpb.Command.FromString(_payload(c)) for c in trace.cmds],
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


def _rebinds_old(trace: _Trace) -> bool:
    """Whether a captured command rebinds a handle older than the trace (``detach_()`` of a
    parameter): such a trace is not replayed."""
    for cmd in trace.cmds:
        c = cpb.Command.FromString(_payload(cmd))
        if c.WhichOneof("kind") == "detach" and c.detach.out == c.detach.handle:
            if c.detach.out.encode() not in trace.created:
                return True
    return False


def _unwrapped(x: Any) -> Any:
    """The result with float arguments returned as plain floats."""
    t = type(x)
    if t is _NumberArgument:
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
