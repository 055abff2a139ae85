"""The op table's declared examples made into real arguments, for the generated tests.

An ``Ex`` holds ``S`` placeholders (float64 tensors requiring grad), ``C`` constants and plain
values. ``materialise`` draws each ``S`` once; ``instantiate`` builds fresh tensors from (possibly
perturbed) arrays, so a finite-difference loop can re-run the same call many times.
"""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass
from typing import Any

import gradd.engine as ge
import numpy as np
from gradd.engine import shapes
from gradd.engine.inplace_rules import WRITING_COMPOSITES
from gradd.engine.op_examples import C, Ex, S

# Ops that have no gradient on purpose (PyTorch gives them none either).
NON_DIFFERENTIABLE = frozenset(
    {"lt", "le", "gt", "ge", "eq", "ne", "logical_and", "logical_or", "argmax", "argmin", "sign"}
    | {"logical_xor", "logical_not", "isnan", "isinf", "isfinite", "one_hot"}
    | {  # creation ops (engine/ops/creation.py): new tensors, as PyTorch's have no gradient
        "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
        "randint_like", "bernoulli", "multinomial", "normal", "new_zeros", "new_ones",
        "new_empty", "new_full", "new_tensor",
    }
    | {"all", "any", "count_nonzero", "argsort", "topk_indices", "median_indices"}
    | {"max_pool2d_indices"}  # the argmax positions of max_pool2d(return_indices=True)
)  # fmt: skip


def is_composite(d: ge.OpDef) -> bool:
    """Composites are written in other ops: their graph and gradient come from those ops."""
    return d.forward.__qualname__.startswith("_composite_forward")


def is_differentiable(d: ge.OpDef) -> bool:
    return d.backward is not None or is_composite(d)


def example_cases() -> list[tuple[str, int]]:
    """(op name, example index) for every example of every op in the table."""
    return [(name, i) for name, d in sorted(ge.OP_TABLE.items()) for i in range(len(d.examples))]


def rng_for(name: str, i: int) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{name}/{i}".encode()))


@dataclass
class _Slot:
    index: int


@dataclass
class Case:
    """One example with its S placeholders drawn: ``arrays[i]`` is the value of slot i."""

    opdef: ge.OpDef
    args: tuple
    kwargs: dict
    arrays: list[np.ndarray]
    specs: list[S]


def materialise(opdef: ge.OpDef, ex: Ex, rng: np.random.Generator) -> Case:
    arrays: list[np.ndarray] = []
    specs: list[S] = []
    args = tuple(_draw(a, rng, arrays, specs) for a in ex.args)
    kwargs = {k: _draw(v, rng, arrays, specs) for k, v in ex.kwargs.items()}
    return Case(opdef, args, kwargs, arrays, specs)


def _draw(v: Any, rng: np.random.Generator, arrays: list, specs: list) -> Any:
    # Plain recursive functions, not closures: a self-referencing closure is a reference cycle,
    # and the memory tests prove that graphs die by refcounting alone.
    if isinstance(v, S):
        arrays.append(np.asarray(v.make(rng), dtype=np.float64))
        specs.append(v)
        return _Slot(len(arrays) - 1)
    if isinstance(v, (list, tuple)) and not hasattr(v, "_fields"):
        return type(v)(_draw(x, rng, arrays, specs) for x in v)
    return v


def instantiate(
    case: Case,
    arrays: list[np.ndarray] | None = None,
    force_grad: bool = False,
    device: str | None = None,
) -> tuple[tuple, dict, list[ge.Tensor]]:
    """Fresh arguments for one call, and the leaves that require grad (in slot order)."""
    arrays = case.arrays if arrays is None else arrays
    made: dict[int, ge.Tensor] = {}
    opts = (case, arrays, force_grad, made, device)
    args = tuple(_make(a, *opts) for a in case.args)
    kwargs = {k: _make(v, *opts) for k, v in case.kwargs.items()}
    leaves = [made[i] for i in sorted(made) if made[i].requires_grad]
    return args, kwargs, leaves


def _make(
    v: Any, case: Case, arrays: list, force_grad: bool, made: dict, device: str | None
) -> Any:
    if isinstance(v, _Slot):
        spec = case.specs[v.index]
        grad = spec.grad or force_grad
        t = ge.tensor(arrays[v.index].copy(), device=device, requires_grad=grad)
        made[v.index] = t
        return t
    if isinstance(v, C):
        return ge.tensor(v.value, device=device)
    if isinstance(v, (list, tuple)) and not hasattr(v, "_fields"):
        return type(v)(_make(x, case, arrays, force_grad, made, device) for x in v)
    return v


def call(opdef: ge.OpDef, args: tuple, kwargs: dict) -> Any:
    """Call an op as a user would; an in-place op works on a clone of a leaf that needs grad
    (in place on the leaf itself is an error)."""
    writes = opdef.inplace or opdef.name in WRITING_COMPOSITES
    if writes and isinstance(args[0], ge.Tensor) and args[0].requires_grad:
        args = (args[0].clone(),) + args[1:]
    # Every example's random draws (dropout) start from the same seed, so re-runs agree.
    with ge.use_generator(ge.Generator().manual_seed(1234)):
        return opdef.call(*args, **kwargs)


def tensor_outputs(result: Any) -> list[ge.Tensor]:
    if isinstance(result, ge.Tensor):
        return [result]
    return [r for r in result if isinstance(r, ge.Tensor)]


def canonical(opdef: ge.OpDef, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """(inputs, canonical attrs) of a call: the normaliser's result when the op has one, else
    the forward's attribute parameters bound to the call (defaults applied)."""
    if opdef.arity == -1:  # cat/stack: a list of tensors and a dim
        inputs = tuple(args[0])
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        nd = inputs[0].ndim + (1 if opdef.name == "stack" else 0)
        return inputs, {"dim": shapes.wrap_dim(dim, nd)}
    inputs = args[: opdef.arity]
    rest = args[opdef.arity :]
    if opdef.normalize is not None:
        return inputs, opdef.normalize(*inputs, *rest, **kwargs)
    params = list(inspect.signature(opdef.forward).parameters.values())[1 + opdef.arity :]
    sig = inspect.Signature(params)
    bound = sig.bind(*rest, **kwargs)
    bound.apply_defaults()
    return inputs, dict(bound.arguments)


def renormalize(opdef: ge.OpDef, inputs: tuple, attrs: dict) -> dict:
    """Feed canonical attrs back through the normaliser (what the SDK does)."""
    params = list(inspect.signature(opdef.normalize).parameters.values())[len(inputs) :]
    names = [p.name for p in params]
    assert set(attrs) <= set(names), f"attrs {sorted(attrs)} are not parameters {names}"
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        kw_only = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        positional = (attrs[n] for n in names if n in attrs and n not in kw_only)
        return opdef.normalize(*inputs, *positional, **{n: attrs[n] for n in kw_only & set(attrs)})
    return opdef.normalize(*inputs, **attrs)


def input_shape(x: Any) -> tuple | None:
    return tuple(x.shape) if isinstance(x, ge.Tensor) else None


# --- ops that take a ``dim`` (tests/engine/test_zero_dim.py, tests/sdk/test_zero_dim.py) -------

DIM_LISTS = {"cat", "stack"}  # their dim is checked against the tensors of a list
DIM_EXTRA_ARGS = {"topk": (1,)}  # arguments before dim that the op needs


def _callable_with_dim_alone(name: str, d: ge.OpDef) -> bool:
    """``op(x, dim=...)`` is a whole call: every other parameter has a default (or
    DIM_EXTRA_ARGS gives it). Ops that also need an index, sizes or a second tensor are not
    covered by the 0-d tests."""
    required = [
        p.name
        for p in d.params[1:]
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return required in ([], ["dim"]) or name in DIM_EXTRA_ARGS


def dim_ops() -> list[str]:
    """Public ops callable as ``op(x, dim=d)``."""
    return sorted(
        n
        for n, d in ge.OPS.items()
        if n not in DIM_LISTS
        and any(p.name == "dim" for p in d.params)
        and _callable_with_dim_alone(n, d)
    )
