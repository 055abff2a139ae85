"""Tracing a compiled function on a server session (``s.compile``): the session's pipeline
captures the commands ``fn`` queues instead of sending them, a value read is a graph break,
and float arguments are watched (``NumberArgument``) so that a program can take them as
inputs. ``gradd.compiled_function`` turns a finished trace into a program.
"""

from __future__ import annotations

import warnings
from typing import Any

from . import command_encoding as enc
from . import op_recording
from .call_site import user_site
from .compile_guards import GraphBreakError
from .remote_tensor import RemoteTensor


class NumberArgument(float):
    """A float argument while ``fn`` is traced: passed to an op as it is, it becomes a program
    input (``plain``, a float object of its own, is what the op receives); any other use marks
    the trace as reading its value."""

    def __new__(cls, value: float, trace: Trace) -> NumberArgument:
        self = super().__new__(cls, value)
        self.trace = trace
        self.plain = float.__new__(float, value)  # an object no constant of fn can be
        return self

    def __reduce__(self) -> Any:
        return (float, (float(self),))


def _reading(name: str) -> Any:
    base = getattr(float, name)

    def method(self: NumberArgument, *args: Any) -> Any:
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
    setattr(NumberArgument, _name, _reading(_name))
NumberArgument.__hash__ = float.__hash__  # type: ignore[method-assign]


class Trace:
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
        self.keep: list[Any] = []  # tensors from before the call that the program reads
        self.broken = False
        self.cacheable = True
        self.created: set[bytes] = set()  # handles of the tensors the trace made (new_tensor)

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
        # Tensors from before the call that the program reads by handle stay alive as long as
        # the program: their slots must not be reused by other tensors while it may run.
        created, keep = self.created, self.keep
        for a in args:
            for x in a if type(a) in (list, tuple) else (a,):
                if type(x) is RemoteTensor and x._h not in created:
                    keep.append(x)
        if opdef.arity != -1:
            for position, a in enumerate(args):
                if type(a) is float and id(a) in self.twins:
                    self.numbers.append((len(self.cmds), position, self.twins[id(a)]))
        if any(isinstance(v, NumberArgument) for v in attrs.values()):
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
        # Ops go in the readable form while traced: the trace notes their number arguments,
        # and the server resolves a program's ops once anyway (the tape saves decoding only).
        self.saved_push_record = s._push_record
        s._push_record = None
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
        s._push_record = self.saved_push_record
        for method in ("send_alone", "flush", "request", "request_all", "synchronize", "wait_for"):
            s._stream.__dict__.pop(method, None)
        for cmd, site in zip(self.cmds, self.sites):
            s._push(cmd, site)


_op_command = op_recording.op_command
_TRACES: list[Trace] = []  # traces running now (sessions on other threads may trace too)


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


def payload(framed: bytes) -> bytes:
    """A Command's bytes from its ExecuteRequest.commands entry."""
    i, shift, n = len(enc.REQ_COMMAND), 0, 0
    while True:
        byte = framed[i]
        n |= (byte & 0x7F) << shift
        i += 1
        shift += 7
        if byte < 0x80:
            return framed[i : i + n]
