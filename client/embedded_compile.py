"""``s.compile(fn)`` on an embedded session: trace the gradd calls ``fn`` makes once, then replay
them without running ``fn``'s own Python.

While ``fn`` is traced, a profile hook sees each call from ``fn``'s code (or from code it calls
outside gradd) into gradd: an op, a method, ``backward()``, a ``.grad`` read, ``no_grad``'s
``__enter__``, a module's ``__call__``, ``optimizer.step()``. Each such call is one step of the
plan: the function, and where each argument comes from (a tensor argument of the call, the
result of an earlier step, or a constant: a parameter, a module, a number). A replay calls the
steps in order with this call's arguments, so results, gradients, grad_fn names and random
draws are eager's. Guards are the server sessions' (gradd.compile_guards), except that
float arguments are guarded by value: an embedded plan cannot see what ``fn`` computes from
them. A tensor ``fn`` uses that no step made and that existed before the call (a parameter) is
a constant; any other (an attribute a module set during the call) makes the trace a plan that
is not kept (the function is traced again at its next call).
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import types
import warnings
from typing import Any

import gradd.engine as ge
import numpy as np
from gradd.engine.grad_mode import _mode

from .compile_guards import RECOMPILE_LIMIT, GraphBreakError, Guarded

_GRADD_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (sys.modules["gradd"], sys.modules["gradd.engine"])
)
_VALUE_READS = frozenset(
    "item tolist numpy __bool__ __float__ __int__ __index__ __repr__ __str__ __format__ "
    "__array__ __iter__".split()
)
_Tensor = ge.Tensor
_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08
_RESUMABLE = 0x20 | 0x80 | 0x100 | 0x200  # generators, coroutines, async generators


class _Arg:
    """Where a step's argument comes from: tensor argument ``index`` of the call (``step`` is
    None), or the result of step ``step`` (``path`` into it: tuple indices)."""

    __slots__ = ("step", "index", "path")

    def __init__(self, step: int | None, index: int, path: tuple) -> None:
        self.step, self.index, self.path = step, index, path


class _Refused(Exception):
    pass


def _is_gradd(code: Any) -> bool:
    return code.co_filename.startswith(_GRADD_DIRS)


_functions: dict[Any, Any] = {}


def _index_functions() -> None:
    """code -> function for gradd's module-level functions, methods and properties (found
    once; a code not among them is looked up among all objects)."""
    prefix = ("gradd.", "gradd")
    for name, module in list(sys.modules.items()):
        if not name.startswith(prefix) or module is None:
            continue
        for value in list(vars(module).values()):
            for fn in _functions_in(value):
                _functions.setdefault(fn.__code__, fn)


def _functions_in(value: Any) -> list:
    if type(value) is types.FunctionType:
        return [value]
    if not isinstance(value, type):
        return []
    found = []
    for attr in vars(value).values():
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        if isinstance(attr, property):
            found += [f for f in (attr.fget, attr.fset) if type(f) is types.FunctionType]
        elif type(attr) is types.FunctionType:
            found.append(attr)
    return found


def _function_of(code: Any) -> Any:
    """The one function object running ``code`` (gradd's functions are module-level or
    generated once; a closure shared by several functions cannot be told apart)."""
    if not _functions:
        _index_functions()
    fn = _functions.get(code)
    if fn is None:
        found = [f for f in gc.get_referrers(code) if type(f) is types.FunctionType]
        if len(found) != 1:
            raise _Refused
        fn = _functions[code] = found[0]
    return fn


class _Trace:
    def __init__(self, fn: Any, fullgraph: bool, tensors: list) -> None:
        self.fn = fn
        self.fullgraph = fullgraph
        self.steps: list[tuple] = []  # (function, positional args, keyword args)
        self.where: dict[int, _Arg] = {id(t): _Arg(None, i, ()) for i, t in enumerate(tensors)}
        self.keep: list[Any] = []  # results, alive while tracing (their ids stay theirs)
        self.entry: Any = None  # the frame of the gradd call running now
        self.broken = False
        self.refused = False
        self.unknown: dict[int, Any] = {}  # tensors no step made: constants if older than fn

    def profile(self, frame: Any, event: str, arg: Any) -> None:
        if self.entry is not None:
            if event == "return" and frame is self.entry:
                self.entry = None
                self.note_result(arg)
            return
        if event != "call" or not _is_gradd(frame.f_code):
            return
        caller = frame.f_back
        if caller is None or _is_gradd(caller.f_code):
            return
        code = frame.f_code
        if code.co_name in _VALUE_READS:
            self.graph_break(caller)
            return
        self.entry = frame
        try:
            if code.co_flags & _RESUMABLE:
                raise _Refused  # a generator's frame: calling its function again is no replay
            self.steps.append((_function_of(code), *self.arguments(code, frame.f_locals)))
        except _Refused:
            self.refused = True
            self.steps.append(None)

    def arguments(self, code: Any, local: dict) -> tuple[list, dict]:
        n = code.co_argcount
        names = code.co_varnames
        positional = [self.source(local[name]) for name in names[:n]]
        k = n + code.co_kwonlyargcount
        keywords = {name: self.source(local[name]) for name in names[n:k]}
        if code.co_flags & _CO_VARARGS:
            positional += [self.source(a) for a in local[names[k]]]
            k += 1
        if code.co_flags & _CO_VARKEYWORDS:
            keywords.update((key, self.source(v)) for key, v in local[names[k]].items())
        return positional, keywords

    def source(self, v: Any) -> Any:
        t = type(v)
        if t is _Tensor:
            where = self.where.get(id(v))
            if where is not None:
                return where
            self.unknown[id(v)] = v
            return v
        if t in (list, tuple):
            return t(self.source(x) for x in v)
        if t is dict:
            return {k: self.source(x) for k, x in v.items()}
        return v

    def note_result(self, result: Any) -> None:
        index = len(self.steps) - 1
        self.keep.append(result)

        def walk(x: Any, path: tuple) -> None:
            if type(x) is _Tensor:
                self.where.setdefault(id(x), _Arg(index, 0, path))
            elif isinstance(x, (list, tuple)):
                for i, item in enumerate(x):
                    walk(item, (*path, i))

        walk(result, ())

    def graph_break(self, caller: Any) -> None:
        sys.setprofile(None)
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        if self.fullgraph:
            raise GraphBreakError(
                f"compiled function {name} reads a tensor's value at {where} (a graph break: "
                ".item(), bool(), print(), .tolist(), .numpy(), float()); fullgraph=True "
                "allows none. Read values outside the function, or compile it without fullgraph"
            )
        self.broken = True
        warnings.warn(
            f"compiled function {name} reads a tensor's value at {where} (a graph break); it "
            "runs eagerly from now on",
            stacklevel=3,
        )


def _flatten(x: Any, tensors: list, key: list) -> list:
    t = type(x)
    if t is _Tensor:
        tensors.append(x)
        key.append((0, x.shape, x.dtype, x.device, x.requires_grad))
    elif t in (int, float, bool, str) or x is None:
        key.append((2, t, x))  # floats too: a plan cannot see what fn computes from them
    elif isinstance(x, np.generic):  # a NumPy scalar, by value
        key.append((2, t, x.item()))
    elif t in (list, tuple):
        key.append((3, t, len(x)))
        for item in x:
            _flatten(item, tensors, key)
    elif t is dict:
        key.append((4, tuple(x)))
        for item in x.values():
            _flatten(item, tensors, key)
    else:
        key.append((5, id(x)))
    return key


def _holds_arg(a: Any) -> bool:
    t = type(a)
    if t is _Arg:
        return True
    if t in (list, tuple):
        return any(_holds_arg(x) for x in a)
    return t is dict and any(_holds_arg(x) for x in a.values())


def _expr(a: Any, consts: list) -> str:
    """Python source for an argument of a step (constants go to ``consts``)."""
    t = type(a)
    if t is _Arg:
        if a.step is None:
            return f"T[{a.index}]"
        return f"r{a.step}" + "".join(f"[{i}]" for i in a.path)
    if not _holds_arg(a):
        consts.append(a)
        return f"c{len(consts) - 1}"
    if t is tuple:
        return "(" + "".join(_expr(x, consts) + ", " for x in a) + ")"
    if t is list:
        return "[" + ", ".join(_expr(x, consts) for x in a) + "]"
    keys = [_expr(k, consts) for k in a]  # a dict holding tensors: keys are constants
    return "{" + ", ".join(f"{k}: {_expr(v, consts)}" for k, v in zip(keys, a.values())) + "}"


def _plan_function(steps: list, template: Any) -> Any:
    """The plan as one generated function of the call's tensors: each step one line (as the
    engine generates its op callers), so a replay does no per-argument work of its own."""
    consts: list = []
    lines = []
    for i, (fn, args, kwargs) in enumerate(steps):
        parts = [_expr(a, consts) for a in args]
        parts += [f"{k}={_expr(v, consts)}" for k, v in kwargs.items()]
        lines.append(f"    r{i} = {_expr(fn, consts)}({', '.join(parts)})")
    lines.append(f"    return {_expr(template, consts)}")
    names = {f"c{i}": c for i, c in enumerate(consts)}
    exec("def plan(T):\n" + "\n".join(lines) + "\n", names)  # noqa: S102 - our own source
    return names["plan"]


class _Plan:
    def __init__(self, key: tuple, steps: list, template: Any) -> None:
        self.key = key
        self.run = _plan_function(steps, template)


class EmbeddedCompiledFunction:
    """``fn`` compiled for an embedded session (what ``s.compile(fn)`` returns)."""

    def __init__(self, fn: Any, fullgraph: bool) -> None:
        self._fn = fn
        self._fullgraph = fullgraph
        self._plans: list[_Plan] = []
        self._traces = 0
        self._eager = False
        self._guarded = Guarded(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._eager or sys.getprofile() is not None:
            return self._fn(*args, **kwargs)  # inside a trace (or a profiler): eager
        tensors: list = []
        key = _flatten((args, kwargs), tensors, [_mode.enabled])
        key.append(self._guarded.key())
        key = tuple(key)
        for plan in self._plans:
            if plan.key == key:
                return plan.run(tensors)
        if self._traces >= RECOMPILE_LIMIT:
            self._eager = True
            warnings.warn(
                f"compiled function {self.__qualname__} was traced {RECOMPILE_LIMIT} times "
                "(recompile_limit); it runs eagerly from now on",
                stacklevel=2,
            )
            return self._fn(*args, **kwargs)
        trace = _Trace(self._fn, self._fullgraph, tensors)
        # Every object the call makes stays in generation 0 until the trace ends: then the
        # tensors it used that no step made must be older (a parameter, not a module's cache).
        collecting = gc.isenabled()
        gc.collect(0)
        gc.disable()
        sys.setprofile(trace.profile)
        try:
            result = self._fn(*args, **kwargs)
        finally:
            sys.setprofile(None)
            made = {id(o) for o in gc.get_objects(0) if type(o) is _Tensor}
            if collecting:
                gc.enable()
        if trace.broken:
            self._eager = True
            return result
        self._traces += 1
        if trace.refused:
            return result
        template = trace.source(result)
        if any(i in made for i in trace.unknown):
            return result  # made during the call, but by no step: not replayable
        self._plans.append(_Plan(key, trace.steps, template))
        return result
