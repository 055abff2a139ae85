"""What a compiled function's cache depends on besides its arguments (``s.compile``, both kinds
of session): the objects ``fn`` reads, as torch.compile guards them, and the limits both kinds
share.

``fn``'s globals (the names its code reads) and closure cells are read at each call, so a
global bound after ``compile`` counts, and their identities are the key; so are the parameters
of nn.Modules among them (or among the attributes of plain objects among them) and the
parameters and options of optimizers, which a scheduler changes.
"""

from __future__ import annotations

import functools
import types
from typing import Any

from .errors import GraddError
from .nn.module import Module
from .optim.optimizer import Optimizer
from .remote_tensor import RemoteTensor
from .session_base import Session

RECOMPILE_LIMIT = 8  # torch._dynamo.config.recompile_limit


class GraphBreakError(GraddError):
    """A value was read inside a function compiled with ``fullgraph=True``."""

    code_name = "FAILED_PRECONDITION"


def _read_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _read_names(const)
    return names


class Guarded:
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
        objects = self.objects()
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
