"""Hostile arguments for every public op, enumerated from the op table (new ops are covered).

Each op's first declared example (or, without one, a tensor for each required tensor
parameter) is called again with one argument replaced by a hostile value: numbers, strings,
None, lists, nested tuples, huge ints, NaN, tensors of the wrong dtype, 0-d and empty tensors.
Embedded, the engine answers or raises what PyTorch users catch (TypeError, ValueError,
RuntimeError, IndexError), never AttributeError and the like; through a real gradd-server,
the status is never INTERNAL. Sizes stay small: nothing here allocates more than a few bytes
(refusing huge results before they are computed is the byte accounting's job).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Iterator
from typing import Any

import gradd.engine as ge
import grpc
import numpy as np
import pytest
from gradd.engine.arg_check import kinds_of, signature_of
from gradd.engine.inplace_rules import WRITING_COMPOSITES
from gradd.engine.op_examples import C, Ex, S
from server_harness import Tensor, op, status, tensor

# ZeroDivisionError: torch's F.group_norm(x, 0) divides by num_groups in Python first.
PYTORCH_ERRORS = (TypeError, ValueError, RuntimeError, IndexError, ZeroDivisionError)

# Values any client can send over the wire (ints within int64).
WIRE_VALUES: list[Any] = [
    0,
    1,
    -1,
    -5,
    1.5,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    "abc",
    "",
    None,
    [1, 2],
    [[1], [2, 3]],
    ((1,), (2,)),
    (1, "a"),
    (),
    2**31,
    2**62,
    -(2**62),
    2**63 - 1,
    -(2**63),
    slice(1, 2),
    slice(None, None, 0),
    slice(2**62, -(2**62), -(2**62)),
    Ellipsis,
    [True, False],
    [2**62],
]
# Values only a Python caller can pass.
PYTHON_VALUES: list[Any] = [
    2**63,
    2**64 - 1,
    2**80,
    -(2**80),
    2**64,
    1j,
    b"x",
    object(),
    np.float32(1.5),
    np.int64(2),
    np.bool_(True),
    np.array([1.0, 2.0]),
    np.array(["a"]),
    {"a": 1},
    np.dtype("complex64"),
    np.dtype("<U3"),
    float,
    ge.int64,
]
# Tensors of the wrong dtype or shape, by handle name.
TENSORS: dict[str, np.ndarray] = {
    "t_int64": np.arange(6).reshape(2, 3),
    "t_bool": np.array([[True, False, True], [False, True, False]]),
    "t_scalar": np.array(0.5),
    "t_int_scalar": np.array(3),
    "t_empty": np.zeros((0,)),
    "t_empty2": np.zeros((0, 3)),
    "t_f32": np.ones(3, np.float32),
    "t_4d": np.ones((1, 2, 1, 3)),
}


def public_ops() -> list[str]:
    return sorted(ge.OPS)


def base_example(d: ge.OpDef) -> Ex:
    """The op's first example, or one tensor per required parameter."""
    if d.examples:
        return d.examples[0]
    args = [
        S(2, 3)
        for p in d.params
        if p.default is inspect.Parameter.empty and p.kind is not p.VAR_POSITIONAL
    ]
    return Ex(*args)


# ("pos", index), ("elem", index of a list argument), ("kw", name) or ("var", index)
Slot = tuple[str, Any]


def slots(d: ge.OpDef, ex: Ex) -> list[Slot]:
    """Every argument slot: each positional one of the example, then each other parameter."""
    out: list[Slot] = []
    given = set(ex.kwargs)
    positional = [p for p in d.params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var = next((p for p in d.params if p.kind is p.VAR_POSITIONAL), None)
    for i, a in enumerate(ex.args):
        out.append(("pos", i))
        if isinstance(a, list):
            out.append(("elem", i))  # cat([hostile, t])
        if i < len(positional):
            given.add(positional[i].name)
    if var is not None:
        out.append(("var", len(positional)))  # the only vararg: reshape(x, hostile)
    for p in d.params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in given:
            continue
        out.append(("kw", p.name))
    for name in ex.kwargs:
        out.append(("kw", name))
    return out


def with_hostile(ex_args: tuple, ex_kwargs: dict, slot: Slot, value: Any) -> tuple[tuple, dict]:
    kind, where = slot
    args, kwargs = list(ex_args), dict(ex_kwargs)
    if kind == "pos":
        args[where] = value
    elif kind == "elem":
        args[where] = [value, *args[where][1:]]
    elif kind == "var":
        args = args[:where] + [value]
    else:
        kwargs[where] = value
    return tuple(args), kwargs


def cases(values: list[Any]) -> Iterator[tuple[str, Slot, Any]]:
    for name in public_ops():
        d = ge.OPS[name]
        for slot in slots(d, base_example(d)):
            for v in values:
                yield name, slot, v


# --- embedded --------------------------------------------------------------------------------


def writes_into(d: ge.OpDef) -> bool:
    """In place on a leaf that requires grad is an error: such ops get leaves without grad."""
    return d.inplace or d.name in WRITING_COMPOSITES


def build(x: Any, rng: np.random.Generator, grad: bool) -> Any:
    if isinstance(x, S):
        return ge.tensor(x.make(rng), requires_grad=grad and x.grad)
    if isinstance(x, C):
        return ge.tensor(x.value)
    if isinstance(x, list):
        return [build(v, rng, grad) for v in x]
    if isinstance(x, tuple):
        return tuple(build(v, rng, grad) for v in x)
    return x


def engine_values() -> list[Any]:
    return WIRE_VALUES + PYTHON_VALUES + [("tensor", k) for k in TENSORS]


@pytest.mark.parametrize("name", public_ops())
def test_embedded_ops_raise_pytorch_errors_for_hostile_arguments(name: str) -> None:
    d = ge.OPS[name]
    ex = base_example(d)
    rng = np.random.default_rng(0)
    base = [build(a, rng, grad=not writes_into(d)) for a in ex.args]
    d.call(*base, **{k: build(x, rng, grad=False) for k, x in ex.kwargs.items()})  # it works
    failures = []
    for slot in slots(d, ex):
        for v in engine_values():
            args = build(ex.args, rng, grad=not writes_into(d))
            kwargs = {k: build(x, rng, grad=not writes_into(d)) for k, x in ex.kwargs.items()}
            if isinstance(v, tuple) and v[:1] == ("tensor",):
                v = ge.tensor(TENSORS[v[1]])
            args, kwargs = with_hostile(args, kwargs, slot, v)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    d.call(*args, **kwargs)
            except PYTORCH_ERRORS:
                pass
            except Exception as exc:  # anything else is a bug the test reports
                failures.append(f"{name} {slot} {v!r}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures[:40])


def test_every_public_op_declares_the_kind_of_every_parameter() -> None:
    """A new op cannot skip the check: its public signature must annotate every parameter."""
    for name, d in ge.OPS.items():
        assert getattr(d.call, "_gradd_checked", False), name
        wrapped = getattr(d.call, "__wrapped__", None)  # a composite or custom caller
        params = signature_of(wrapped) if wrapped is not None else d.params
        undeclared = [p.name for p, k in zip(params, kinds_of(params)) if k is None]
        assert not undeclared, f"{name}: no arg_kinds annotation for {undeclared}"


def test_engine_call_op_knows_only_public_ops() -> None:
    x = ge.randn(2, 3)
    for internal in ("alias", "index", "index_backward", "max_all", "max_dim", "min_dim"):
        assert internal not in ge.OPS and internal in ge.OP_TABLE
        with pytest.raises(ValueError, match="unknown op"):
            ge.call_op(internal, x)


def test_messages_are_pytorchs() -> None:
    x = ge.randn(2, 3)
    expected = {
        "neg(): argument 'input' (position 1) must be Tensor, not int": lambda: ge.neg(1),
        "sum(): argument 'input' (position 1) must be Tensor, not NoneType": lambda: ge.sum(None),
        "mm(): argument 'mat2' (position 2) must be Tensor, not int": lambda: ge.mm(x, 99),
        "add(): argument 'other' (position 2) must be Tensor, not str": lambda: ge.add(x, "a"),
        "transpose(): argument 'dim0' (position 2) must be int, not bool": lambda: x.transpose(
            True, 0
        ),
        "sum(): argument 'keepdim' (position 3) must be bool, not int": lambda: x.sum(0, 1),
        "zero_(): argument 'input' (position 1) must be Tensor, not int": lambda: ge.zero_(1),
    }
    for message, call in expected.items():
        with pytest.raises(TypeError) as info:
            call()
        assert str(info.value) == message


@pytest.mark.cpu_only("NumPy operands meet CPU tensors only (CuPy, as CUDA tensors, refuses them)")
def test_what_pytorch_accepts_still_works() -> None:
    x = ge.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert (2 - x).tolist() == [[1.0, 0.0, -1.0], [-2.0, -3.0, -4.0]]
    assert ge.add(1, x).shape == (2, 3) and (x * 2.0).shape == (2, 3)
    assert (2**x).shape == (2, 3) and ge.pow(2, x).shape == (2, 3)
    assert x.reshape(True, 6).shape == (1, 6)  # PyTorch takes bools as sizes
    assert x.reshape(np.int64(6)).shape == (6,) and x.sum(np.int64(0)).shape == (3,)
    assert x.add(np.float32(1)).dtype is ge.float32 and x.clamp(True).shape == (2, 3)
    assert ge.where(x > 2, 1.0, 0.0).shape == (2, 3)
    assert x.clone().copy_(1).tolist() == [[1.0] * 3] * 2
    assert (np.ones(3) * x).dtype is ge.float64  # an ndarray operand is a tensor
    assert x.sum(dim=[0, 1]).item() == 21.0 and x.argmax(1).tolist() == [2, 2]
    assert x.sum(dim=()).shape == () and x.mean(dim=[], keepdim=True).shape == (1, 1)


# --- through a real gradd-server ---------------------------------------------------------------


def wire_base(ex: Ex, d: ge.OpDef) -> tuple[list, tuple, dict]:
    """Commands creating the example's tensors, and its arguments with handles in their place."""
    made: list = []
    rng = np.random.default_rng(0)

    def wire(x: Any) -> Any:
        if isinstance(x, (S, C)):
            handle = f"a{len(made)}"
            array = x.make(rng) if isinstance(x, S) else x.value
            made.append(
                tensor(handle, array, requires_grad=isinstance(x, S) and not writes_into(d))
            )
            return Tensor(handle)
        if isinstance(x, list):
            return [wire(v) for v in x]
        if isinstance(x, tuple):
            return tuple(wire(v) for v in x)
        if isinstance(x, ge.DType):
            return x.name  # the dtype by name (ops take names too)
        return x

    args = tuple(wire(a) for a in ex.args)
    kwargs = {k: wire(v) for k, v in ex.kwargs.items()}
    return made, args, kwargs


@pytest.mark.parametrize("name", public_ops())
def test_server_never_answers_internal_for_hostile_arguments(session, name: str) -> None:
    d = ge.OPS[name]
    ex = base_example(d)
    made, base_args, base_kwargs = wire_base(ex, d)
    values = WIRE_VALUES + [Tensor(k) for k in TENSORS]
    setup = [tensor(k, a) for k, a in TENSORS.items()] + made
    # One out per result: ops giving several tensors (chunk, split...) name each.
    rng = np.random.default_rng(0)
    kw = {k: build(v, rng, False) for k, v in ex.kwargs.items()}
    result = d.call(*build(ex.args, rng, False), **kw)
    outs = [f"r{i}" for i in range(len(result))] if isinstance(result, tuple) else ["r"]
    session.execute(*setup, op(name, *base_args, outs=outs, **base_kwargs))  # the base works
    failures = []
    for slot in slots(d, ex):
        for v in values:
            args, kwargs = with_hostile(base_args, base_kwargs, slot, v)
            try:
                session.execute(*setup, op(name, *args, outs=outs, **kwargs))
            except grpc.RpcError as err:
                if err.code() is grpc.StatusCode.INTERNAL:
                    failures.append(f"{name} {slot} {v!r}: {err.details()}")
    assert not failures, "\n".join(failures[:40])


def test_internal_ops_are_unknown_over_the_wire(session) -> None:
    session.execute(tensor("x", np.ones((2, 3))))
    for internal in ("alias", "index_backward", "max_all", "min_dim"):
        code, message = status(lambda n=internal: session.execute(op(n, Tensor("x"), outs=["r"])))
        assert code is grpc.StatusCode.INVALID_ARGUMENT and f"unknown op {internal!r}" in message
        hint = message.split(f"unknown op {internal!r}", 1)[1]
        assert "'alias'" not in hint  # internal names are never suggested


def test_server_info_lists_public_ops_only(client) -> None:
    from gradd.v1 import service_pb2 as spb

    info = client.stub.ServerInfo(spb.ServerInfoRequest(), timeout=30)
    assert list(info.ops) == sorted(ge.OPS)
    assert not {"alias", "index", "index_backward", "max_all", "max_dim"} & set(info.ops)
