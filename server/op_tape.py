"""Command.tape, the lean form of ops: records read with fixed-width struct reads, run on slots.

A record stands for one `op` command (see command.proto for the layout, gradd.wire.tape for the
structs): the same op table, the same checks in the same order as command_runner.run_op, so a
failing record changes nothing. Reading is linear in the tape's length and bounded whatever the
bytes: each record's size follows from its 5-byte head and its kind bytes before anything is
read past them, every read is checked against the tape's end, and nothing loops on a count the
tape gives except over bytes it holds. Any malformation is INVALID_ARGUMENT.
"""

from __future__ import annotations

import struct
from typing import Any

import gradd.engine as ge
from gradd.engine.grad_mode import _mode
from gradd.engine.random_state import DRAWING_OPS
from gradd.wire import tape as tp
from gradd.wire.dtypes import ENGINE_DTYPES

from .errors import ServiceError, invalid, status_of
from .session import Session

# Op code -> (name, the op's call, in-place, draws): codes index ServerInfo.ops (sorted names).
CODES: list[tuple[str, Any, bool, bool]] = [
    (name, ge.OPS[name].call, ge.OPS[name].inplace, name in DRAWING_OPS) for name in sorted(ge.OPS)
]
_Tensor = ge.Tensor
_head = tp.HEAD.unpack_from
_HEAD_SIZE = tp.HEAD_SIZE
_SLOT, _NONE, _DTYPE = tp.SLOT, tp.NONE, tp.DTYPE
_BAD_FLAGS = 0xFF & ~tp.FLAGS


class _Layout:
    """How to read the arguments and outs of records with one signature (nargs, nouts, kinds)."""

    __slots__ = ("read", "size", "slots", "others")

    def __init__(self, kinds: bytes, nouts: int) -> None:
        for i, k in enumerate(kinds):
            if k not in tp.PAYLOAD:
                raise invalid(f"argument {i} has unknown kind {k} (kinds are 0-5)")
        fmt = "<" + "".join(tp.PAYLOAD[k] for k in kinds) + tp.OUT * nouts
        self.read = struct.Struct(fmt).unpack_from
        self.size = struct.calcsize(fmt)
        self.slots = tuple(i for i, k in enumerate(kinds) if k == _SLOT)
        self.others = tuple((i, k) for i, k in enumerate(kinds) if k in (tp.BOOL, _NONE, _DTYPE))


_LAYOUTS: dict[bytes, _Layout] = {}
MAX_LAYOUTS = 4096  # signatures remembered (a tape may carry any; the rest are read uncached)


def run_tape(s: Session, tape: bytes) -> None:
    """Run a tape's records in order; the first failure raises, prefixed with its record."""
    pos, end, k = 0, len(tape), 0
    table = s.table
    slots = table.slots
    layouts, codes, n_codes = _LAYOUTS, CODES, len(CODES)
    name = ""
    try:
        while pos < end:
            name = ""
            if end - pos < _HEAD_SIZE:
                raise invalid(f"a truncated record head ({end - pos} of {_HEAD_SIZE} bytes)")
            code, flags, nargs, nouts = _head(tape, pos)
            if code >= n_codes:
                raise invalid(f"unknown op code {code} (ServerInfo.ops has {n_codes} ops)")
            name, call, inplace, draws = codes[code]
            if flags & _BAD_FLAGS:
                raise invalid(f"unknown flags {flags:#x} (only bit 0, no_grad, is defined)")
            at = pos + _HEAD_SIZE + nargs
            if at > end:
                raise invalid("a truncated record (its argument kinds)")
            key = tape[pos + 3 : at]  # nargs, nouts and the kinds
            layout = layouts.get(key)
            if layout is None:
                layout = _layout(key, nouts)
            pos = at + layout.size
            if pos > end:
                raise invalid(f"a truncated record ({end - at} of {layout.size} payload bytes)")
            args = layout.read(tape, at)
            if nouts:
                outs = args[nargs:]
                args = args[:nargs]
            else:
                outs = ()
            if layout.slots or layout.others:
                args = list(args)
                for i in layout.slots:
                    try:
                        tensor = slots[args[i]]
                    except IndexError:
                        tensor = None
                    if tensor is None:
                        tensor = table.slot(args[i])  # raises NOT_FOUND
                    args[i] = tensor
                if layout.others:
                    _convert(args, layout.others)
            if outs and (inplace or draws):
                if nouts > 1 and inplace:
                    raise invalid(f"in-place op '{name}' gives 1 result, {nouts} outs named")
                table.check_slots(outs)  # they change a tensor or the random stream as they run
            if draws:
                state = s.generator.get_state()
                try:
                    _bind(table, name, outs, _call(call, args, flags))
                except BaseException:
                    s.generator.set_state(state)
                    raise
            else:
                if flags:  # grad mode is on between commands (execute() makes sure of it)
                    _mode.enabled = False
                    try:
                        result = call(*args)
                    finally:
                        _mode.enabled = True
                else:
                    result = call(*args)
                if nouts == 1 and type(result) is _Tensor:  # the common case, kept short
                    n = outs[0]
                    try:
                        bound = slots[n] is not None
                    except IndexError:
                        bound = False
                    if bound:
                        slots[n] = result
                    else:
                        table.bind_slot(n, result)
                elif outs:
                    _bind(table, name, outs, result)
            k += 1
    except Exception as exc:
        code, message = status_of(exc)
        what = f" (op '{name}')" if name else ""
        raise ServiceError(code, f"record {k}{what}: {message}") from exc


def _layout(key: bytes, nouts: int) -> _Layout:
    layout = _Layout(key[2:], nouts)
    if len(_LAYOUTS) < MAX_LAYOUTS:
        _LAYOUTS[key] = layout
    return layout


def _call(call: Any, args: list, flags: int) -> Any:
    if flags:
        with ge.no_grad():
            return call(*args)
    return call(*args)


def _convert(args: list, others: tuple) -> None:
    for i, kind in others:
        v = args[i]
        if kind == tp.BOOL:
            if v > 1:
                raise invalid(f"argument {i}: a bool is 0 or 1, got {v}")
            args[i] = v == 1
        elif kind == _NONE:
            if v:
                raise invalid(f"argument {i}: a None's payload is 0, got {v}")
            args[i] = None
        else:
            dtype = ENGINE_DTYPES.get(v)
            if dtype is None:
                raise invalid(f"argument {i}: no dtype has the DType number {v}")
            args[i] = dtype


def _bind(table: Any, name: str, outs: tuple, result: Any) -> None:
    """Bind an op's results to slots, all or nothing."""
    if not outs:
        return
    results = result if isinstance(result, tuple) else (result,)
    if len(results) != len(outs):
        raise invalid(f"op '{name}' gives {len(results)} results, {len(outs)} outs named")
    if not all(isinstance(r, _Tensor) for r in results):
        raise invalid(f"op '{name}' gives {type(result).__name__}, not tensors, to bind")
    table.check_slots(outs)
    for n, r in zip(outs, results):
        table.bind_slot(n, r)
