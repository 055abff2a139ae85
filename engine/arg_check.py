"""Checking an op's arguments against the kinds its signature declares (see ``arg_kinds``).

An op's caller runs its guard (a few inline type tests generated from the kinds) and calls
``check_args`` only when the guard does not already prove the arguments fine: values of
unusual types (NumPy scalars, remote tensors) pass there, wrong ones raise PyTorch's error.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from . import arg_kinds as arg
from .arg_kinds import ArgError, Kind

_EMPTY = inspect.Parameter.empty


def signature_of(fn: Callable) -> list[inspect.Parameter]:
    """``fn``'s parameters with their annotations evaluated (the kinds are objects)."""
    return list(inspect.signature(fn, eval_str=True).parameters.values())


def kinds_of(params: Sequence[inspect.Parameter]) -> list[Kind | None]:
    """The declared kind of each parameter; None where it declares none (``Any``)."""
    out: list[Kind | None] = []
    for p in params:
        a = p.annotation
        out.append(a if isinstance(a, Kind) else None)
    return out


def _where(op: str, p: inspect.Parameter, position: int) -> str:
    name = "input" if p.name == "self" else p.name  # PyTorch's name for the first tensor
    if p.kind is inspect.Parameter.KEYWORD_ONLY:
        return f"{op}(): argument '{name}'"
    return f"{op}(): argument '{name}' (position {position})"


def check_args(
    op: str,
    params: Sequence[inspect.Parameter],
    kinds: Sequence[Kind | None],
    values: Sequence[Any],
    n_inputs: int,
) -> None:
    """Raise PyTorch's TypeError (ValueError for ints that overflow) for a wrong argument.

    ``n_inputs`` leading parameters are the op's inputs: when they declare kinds, one of them
    must be a tensor.
    """
    for i, (p, kind, v) in enumerate(zip(params, kinds, values)):
        if kind is None:
            continue
        try:
            kind.check(v)
        except ArgError as err:
            raise err.cls(f"{_where(op, p, i + 1)} {err.detail}") from None
    if _needs_a_tensor(kinds[:n_inputs]) and not any(arg.is_tensor(v) for v in values[:n_inputs]):
        got = ", ".join(type(v).__name__ for v in values[:n_inputs])
        raise TypeError(f"{op}(): expected a Tensor among its inputs, got ({got})")


def _needs_a_tensor(input_kinds: Sequence[Kind | None]) -> bool:
    """Whether the inputs may all be numbers by their kinds (``add``), so that one of them must
    be checked to be a tensor; undeclared inputs (an internal normaliser's) are not checked."""
    return bool(input_kinds) and all(k is not None and k is not arg.Tensor for k in input_kinds)


def guard_source(
    params: Sequence[inspect.Parameter], kinds: Sequence[Kind | None], n_inputs: int
) -> tuple[str, dict[str, Any]]:
    """A Python expression over the parameter names that, when true, proves the arguments fine,
    and the names it refers to. Parameters with a default also pass by being that default."""
    terms = []
    names: dict[str, Any] = dict(arg.GUARD_NAMES)
    inputs = list(zip(params[:n_inputs], kinds[:n_inputs]))
    if _needs_a_tensor(kinds[:n_inputs]):
        # Inputs that may all be numbers (``add``): one of them must be a tensor. Written as
        # "this one is a tensor and the others fit" per input, so the usual call (a tensor
        # first) costs one test more than the others' own.
        if any(k is None or k.guard is None for _, k in inputs):
            return "False", names
        terms.append(
            "("
            + " or ".join(
                f"type({p.name}) in _TT and "
                + " and ".join(
                    [k.guard.format(v=q.name) for q, k in inputs if q is not p] or ["True"]
                )
                for p, _ in inputs
            )
            + ")"
        )
        start = n_inputs
    else:
        start = 0
    for i, (p, kind) in enumerate(zip(params, kinds)):
        if i < start or kind is None or kind.guard == "True":
            continue
        term = None if kind.guard is None else kind.guard.format(v=p.name)
        if p.default is not _EMPTY:
            names[f"_g{i}"] = p.default
            term = f"{p.name} is _g{i}" if term is None else f"({p.name} is _g{i} or {term})"
        if term is None:
            return "False", names  # no shortcut: every call is checked in full
        terms.append(term)
    return " and ".join(terms) or "True", names


def checked(name: str, fn: Callable, n_inputs: int) -> Callable:
    """``fn`` behind the check of its own annotated signature (composites, custom callers)."""
    params = signature_of(fn)
    kinds = kinds_of(params)
    guard, ns = guard_source(params, kinds, n_inputs)
    sig, passed = [], []
    starred = False  # keyword-only parameters follow a ``*`` or ``*args``
    for i, p in enumerate(params):
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            sig.append(f"*{p.name}")
            passed.append(f"*{p.name}")
            starred = True
            continue
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not starred:
            sig.append("*")
            starred = True
        if p.default is not _EMPTY:
            ns[f"_d{i}"] = p.default
            sig.append(f"{p.name}=_d{i}")
        else:
            sig.append(p.name)
        passed.append(f"{p.name}={p.name}" if p.kind is inspect.Parameter.KEYWORD_ONLY else p.name)
    values = "(" + "".join(f"{p.name}, " for p in params) + ")"
    ns.update(_fn=fn, _check=check_args, _params=params, _kinds=kinds, _name=name)
    src = (
        f"def {name}({', '.join(sig)}):\n"
        f"    if not ({guard}):\n"
        f"        _check(_name, _params, _kinds, {values}, {n_inputs})\n"
        f"    return _fn({', '.join(passed)})\n"
    )
    exec(src, ns)  # noqa: S102 - our own source
    out = ns[name]
    out.__doc__ = fn.__doc__
    out.__wrapped__ = fn
    out._gradd_checked = True
    return out
