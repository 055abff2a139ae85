"""Tensor factories (tensors made from numbers, not from other tensors; ``tensor`` is in tensor.py,
the ``*_like`` and ``new_*`` ops in ops/creation.py), each declared once in ``FACTORIES``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import dtypes as dt
from .device import CPU, Device, get_device
from .errors import NOT_FLOAT_GRAD
from .memory_meter import check_active
from .random_state import current_generator
from .tensor import Tensor, wrap


def _size(size: tuple, itemsize: int = 0) -> tuple[int, ...]:
    """The shape asked for; with `itemsize`, checked against the active meter (before
    anything is allocated or drawn)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = tuple(int(s) for s in size)
    if any(s < 0 for s in out):
        raise RuntimeError(
            f"Trying to create tensor with negative dimension {min(out)}: {list(out)}"
        )
    if itemsize:
        check_active(math.prod(out) * itemsize)
    return out


def _finish(arr: Any, dev: Device, requires_grad: bool) -> Tensor:
    if requires_grad and arr.dtype.kind != "f":
        raise RuntimeError(NOT_FLOAT_GRAD)
    return wrap(arr, dev, bool(requires_grad))


def _build(device: Any, requires_grad: bool, make: str, *args: Any) -> Tensor:
    """``xp.<make>(*args)`` made on the device itself (nothing built on the host and copied)."""
    dev = get_device(device)
    if dev is CPU:
        return _finish(getattr(np, make)(*args), dev, requires_grad)
    with dev.scope():
        return _finish(getattr(dev.xp, make)(*args), dev, requires_grad)


def _draw(device: Any, gen: Any, cpu: str, gpu: str, *args: Any) -> tuple[Any, Device]:
    """Random values drawn where they will live: on the CPU by the generator's own stream (bit
    for bit PyTorch's), on a GPU by the device's generator seeded from the same seed."""
    dev = get_device(device)
    if dev is CPU:
        return getattr(gen, cpu)(*args), dev
    with dev.scope():
        return getattr(gen.device_stream(dev.xp), gpu)(*args), dev


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    p = _zeros_plan(*size, dtype=dtype, requires_grad=requires_grad)  # the declared rules
    check_active(math.prod(p.shape) * p.dtype.itemsize)
    return _build(device, requires_grad, "zeros", p.shape, p.dtype.np)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    p = _ones_plan(*size, dtype=dtype, requires_grad=requires_grad)
    check_active(math.prod(p.shape) * p.dtype.itemsize)
    return _build(device, requires_grad, "ones", p.shape, p.dtype.np)


def full(
    size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """A tensor filled with ``fill_value`` (its dtype inferred from the value, as PyTorch)."""
    p = _full_plan(size, fill_value, dtype=dtype, requires_grad=requires_grad)
    check_active(math.prod(p.shape) * p.dtype.itemsize)
    return _build(device, requires_grad, "full", p.shape, fill_value, p.dtype.np)


def randn(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples from the session's (or the given) generator, as torch.randn."""
    d, _ = _float_dtype("normal_kernel_cpu", dtype)
    gen = generator or current_generator()
    arr, dev = _draw(device, gen, "normal", "standard_normal", _size(size, d.itemsize), d.np)
    return _finish(arr, dev, requires_grad)


def rand(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples in [0, 1), as torch.rand."""
    d, _ = _float_dtype("check_uniform_bounds", dtype)
    gen = generator or current_generator()
    arr, dev = _draw(device, gen, "uniform", "random_sample", _size(size, d.itemsize), d.np)
    return _finish(arr, dev, requires_grad)


def _draw_randint(
    low: int,
    high: int | None = None,
    size: Any = (),
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Random integers in [low, high), as torch.randint."""
    if high is None:
        low, high = 0, low
    gen = generator or current_generator()
    d = dt.int64 if dtype is None else dt.as_dtype(dtype)
    shape = _size((size,), 8 + d.itemsize)  # int64 values, then the cast: both live a moment
    if get_device(device) is CPU:
        arr, dev = gen.randint(int(low), int(high), shape), CPU
    else:
        if not int(low) < int(high):
            raise ValueError(f"randint needs low < high, got [{low}, {high})")
        arr, dev = _draw(device, gen, "randint", "randint", int(low), int(high), shape, np.int64)
    return _finish(arr.astype(d.np, copy=False), dev, False)


def _draw_randperm(n: int, generator: Any = None, device: Any = None) -> Tensor:
    """A random permutation of 0..n-1."""
    gen = generator or current_generator()
    if int(n) < 0:
        raise ValueError(f"randperm needs n >= 0, got {n}")
    check_active(int(n) * 8)
    arr, dev = _draw(device, gen, "randperm", "permutation", int(n))
    return _finish(arr.astype(np.int64, copy=False), dev, False)


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Evenly spaced values in [start, end): int64 for integer arguments, else float32."""
    p = _arange_plan(start, end, step, dtype=dtype, requires_grad=requires_grad)
    (start, end, step), d = p.args, p.dtype
    check_active(p.shape[0] * (8 + d.itemsize))  # 8-byte values, then the cast: both live
    dev = get_device(device)
    if dev is CPU:
        return _finish(np.arange(start, end, step).astype(d.np), dev, requires_grad)
    with dev.scope():  # as NumPy: the values in the arguments' type, then cast
        return _finish(dev.xp.arange(start, end, step).astype(d.np), dev, requires_grad)


# ---------------------------------------------------------------------------------------------
# Declared factories: each is declared once, here, by its engine function and a plan. The plan
# takes the user's arguments (PyTorch's signature, minus device and generator), checks them as
# the engine would, and returns what the wire carries (a Factory command: shape, numeric args,
# dtype); the engine function called as ``fn(*call(shape, args), dtype=..., ...)`` makes it.
# The SDK's sessions (methods ``s.<name>``, metadata before anything is sent) and the server's
# Factory command (its allow-list and dispatch) derive from ``FACTORIES``.


class Plan:
    """A factory call in wire form: result shape, numeric args, dtype (``given``: as passed)."""

    __slots__ = ("shape", "args", "dtype", "given", "requires_grad")

    def __init__(
        self, shape: tuple, args: tuple, dtype: dt.DType, given: Any, requires_grad: bool
    ) -> None:
        if requires_grad and not dtype.is_floating_point:
            raise RuntimeError(NOT_FLOAT_GRAD)
        self.shape, self.args, self.dtype = shape, args, dtype
        self.given, self.requires_grad = given, bool(requires_grad)


class FactoryDef:
    """One declared factory: ``fn`` (the engine's), ``plan`` (see above), ``call`` (wire form
    back to fn's positional arguments), ``draws`` (takes ``generator=``)."""

    __slots__ = ("name", "fn", "plan", "call", "draws", "tensor_op")

    def __init__(
        self, name: str, fn: Any, plan: Any, call: Any, draws: bool, tensor_op: str | None
    ) -> None:
        self.name, self.fn, self.plan, self.call, self.draws = name, fn, plan, call, draws
        self.tensor_op = tensor_op  # the op a call with a tensor among its arguments is

    def op_for(self, args: tuple, kwargs: dict) -> str | None:
        """The op name when this call is the tensor overload (torch.normal(mean_tensor, ...))."""
        if self.tensor_op is None:
            return None
        values = (*args, *kwargs.values())
        return self.tensor_op if any(hasattr(v, "dtype") for v in values) else None

    def run(
        self,
        shape: tuple,
        args: tuple,
        dtype: Any,
        device: Any,
        requires_grad: bool,
        generator: Any = None,
    ) -> Tensor:
        """Make the tensor of a wire-form call (what a server does with a Factory command)."""
        kw: dict[str, Any] = {"dtype": dtype, "device": device, "requires_grad": requires_grad}
        if self.draws:
            kw["generator"] = generator
        return self.fn(*self.call(tuple(shape), tuple(args)), **kw)


FACTORIES: dict[str, FactoryDef] = {}


def declare(
    name: str, fn: Any, call: Any, draws: bool = False, tensor_op: str | None = None
) -> Any:
    """Register ``fn`` with the plan this decorates."""

    def deco(plan: Any) -> Any:
        if name in FACTORIES:
            raise ValueError(f"factory {name!r} declared twice")
        FACTORIES[name] = FactoryDef(name, fn, plan, call, draws, tensor_op)
        return plan

    return deco


def _kinds(dtype: Any, default: dt.DType) -> tuple[dt.DType, Any]:
    return (default if dtype is None else dt.as_dtype(dtype)), dtype


def _not_for(kernel: str, d: dt.DType, *refused: dt.DType) -> None:
    if d in refused:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{d.torch_name}'")


def _float_dtype(kernel: str, dtype: Any) -> tuple[dt.DType, Any]:
    d, given = _kinds(dtype, dt.default_float)
    if not d.is_floating_point:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{d.torch_name}'")
    return d, given


def _shape_of(size: tuple) -> tuple[int, ...]:
    return _size(size)


@declare("zeros", zeros, lambda shape, args: shape)
def _zeros_plan(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Plan:
    return Plan(_shape_of(size), (), *_kinds(dtype, dt.default_float), requires_grad)


@declare("ones", ones, lambda shape, args: shape)
def _ones_plan(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Plan:
    return Plan(_shape_of(size), (), *_kinds(dtype, dt.default_float), requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor in PyTorch; here zero-filled (reading it is meaningless)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


@declare("empty", empty, lambda shape, args: shape)
def _empty_plan(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Plan:
    return Plan(_shape_of(size), (), *_kinds(dtype, dt.default_float), requires_grad)


@declare("full", full, lambda shape, args: (shape, args[0]))
def _full_plan(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Plan:
    d, given = _kinds(dtype, dt.scalar_dtype(fill_value))
    return Plan(_shape_of((size,)), (fill_value,), d, given, requires_grad)


@declare("randn", randn, lambda shape, args: shape, draws=True)
def _randn_plan(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Plan:
    return Plan(_shape_of(size), (), *_float_dtype("normal_kernel_cpu", dtype), requires_grad)


@declare("rand", rand, lambda shape, args: shape, draws=True)
def _rand_plan(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Plan:
    return Plan(_shape_of(size), (), *_float_dtype("check_uniform_bounds", dtype), requires_grad)


@declare("arange", arange, lambda shape, args: args)
def _arange_plan(
    start: Any, end: Any = None, step: Any = 1, dtype: Any = None, requires_grad: bool = False
) -> Plan:
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    ints = all(type(v) is int for v in (start, end, step))
    d, given = _kinds(dtype, dt.int64 if ints else dt.default_float)
    _not_for("arange_cpu", d, dt.bool_)
    n = max(0, math.ceil((end - start) / step))
    return Plan((n,), (start, end, step), d, given, requires_grad)


def _linspace_values(xp: Any, start: float, end: float, steps: int, d: dt.DType) -> Any:
    """PyTorch's linspace: start + step * i for the first half, end - step * (steps - 1 - i)
    for the second (each end exact), computed in the dtype (in float64 for integer dtypes)."""
    wd = d.np if d.is_floating_point else np.dtype(np.float64)
    i = xp.arange(steps, dtype=wd)
    lo, hi = wd.type(start), wd.type(end)
    step = (hi - lo) / wd.type(steps - 1) if steps > 1 else wd.type(0)
    if steps == 1:
        return xp.full(1, lo).astype(d.np)
    out = xp.where(i < steps // 2, lo + step * i, hi - step * (wd.type(steps - 1) - i))
    return out.astype(d.np)


def _linspace_dtype(kernel: str, steps: Any, dtype: Any) -> tuple[dt.DType, Any]:
    if int(steps) < 0:
        raise RuntimeError("number of steps must be non-negative")
    d, given = _kinds(dtype, dt.default_float)
    _not_for(kernel, d, dt.bool_)
    return d, given


def linspace(
    start: float,
    end: float,
    steps: int,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from start to end inclusive."""
    d, _ = _linspace_dtype("linspace_cpu", steps, dtype)
    check_active(max(0, int(steps)) * (8 + d.itemsize))
    dev = get_device(device)
    if dev is CPU:
        return _finish(_linspace_values(np, start, end, int(steps), d), dev, requires_grad)
    with dev.scope():
        arr = _linspace_values(dev.xp, start, end, int(steps), d)
        return _finish(arr, dev, requires_grad)


@declare("linspace", linspace, lambda shape, args: args)
def _linspace_plan(
    start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False
) -> Plan:
    d, given = _linspace_dtype("linspace_cpu", steps, dtype)
    return Plan((int(steps),), (start, end, int(steps)), d, given, requires_grad)


def logspace(
    start: float,
    end: float,
    steps: int,
    base: float = 10.0,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``base ** linspace(start, end, steps)``, as torch.logspace."""
    d, _ = _linspace_dtype("logspace_cpu", steps, dtype)
    check_active(max(0, int(steps)) * (16 + d.itemsize))
    dev = get_device(device)
    xp = np if dev is CPU else dev.xp
    with dev.scope():
        exps = _linspace_values(xp, start, end, int(steps), dt.float64)
        arr = xp.power(np.float64(base), exps)
        if not d.is_floating_point:
            arr = xp.trunc(arr)
        return _finish(arr.astype(d.np), dev, requires_grad)


@declare("logspace", logspace, lambda shape, args: args)
def _logspace_plan(
    start: float,
    end: float,
    steps: int,
    base: float = 10.0,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Plan:
    d, given = _linspace_dtype("logspace_cpu", steps, dtype)
    return Plan((int(steps),), (start, end, int(steps), base), d, given, requires_grad)


def _eye_shape(n: int, m: int | None) -> tuple[int, int]:
    if int(n) < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {n}")
    m = n if m is None else m
    if int(m) < 0:
        raise RuntimeError(f"m must be greater or equal to 0, got {m}")
    return int(n), int(m)


def eye(
    n: int,
    m: int | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A 2-D tensor with ones on the diagonal, as torch.eye."""
    shape = _eye_shape(n, m)
    d, _ = _kinds(dtype, dt.default_float)
    check_active(math.prod(shape) * d.itemsize)
    return _build(device, requires_grad, "eye", *shape, 0, d.np)


@declare("eye", eye, lambda shape, args: args)
def _eye_plan(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Plan:
    shape = _eye_shape(n, m)
    return Plan(shape, shape, *_kinds(dtype, dt.default_float), requires_grad)


def _randint_args(args: tuple, size: Any) -> tuple[int, int, tuple]:
    """torch.randint's overloads: (high, size), (low, high, size); size may be a keyword."""
    if size is None:
        if len(args) not in (2, 3):
            raise TypeError(
                "randint() received an invalid combination of arguments: expected "
                "(high, size) or (low, high, size)"
            )
        *bounds, size = args
    else:
        bounds = list(args)
        if len(bounds) not in (1, 2):
            raise TypeError("randint() takes (high, size) or (low, high, size)")
    low, high = (0, bounds[0]) if len(bounds) == 1 else bounds
    return int(low), int(high), _size((size,))


def _randint_check(low: int, high: int, d: dt.DType) -> None:
    if not low < high:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    if d.is_floating_point:
        return
    info = np.iinfo(d.np) if d is not dt.bool_ else None
    lo, hi = (0, 1) if info is None else (info.min, info.max)
    if high - 1 > hi:
        raise RuntimeError(f"to - 1 is out of bounds for {d.c_name.replace(' int', '')}")
    if low < lo:
        raise RuntimeError(f"from is out of bounds for {d.c_name.replace(' int', '')}")


def randint(
    *args: Any,
    size: Any = None,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    low, high, shape = _randint_args(args, size)
    d, _ = _kinds(dtype, dt.int64)
    _randint_check(low, high, d)
    if requires_grad and not d.is_floating_point:
        raise RuntimeError(NOT_FLOAT_GRAD)
    """Random integers in [low, high) (low defaults to 0), as torch.randint."""
    t = _draw_randint(low, high, shape, generator=generator, dtype=d, device=device)
    return t.requires_grad_() if requires_grad else t


@declare("randint", randint, lambda shape, args: (*args, shape), draws=True)
def _randint_plan(
    *args: Any, size: Any = None, dtype: Any = None, requires_grad: bool = False
) -> Plan:
    low, high, shape = _randint_args(args, size)
    d, given = _kinds(dtype, dt.int64)
    _randint_check(low, high, d)
    return Plan(shape, (low, high), d, given, requires_grad)


def randperm(
    n: int,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A random permutation of 0..n-1, as torch.randperm."""
    if int(n) < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    d, _ = _kinds(dtype, dt.int64)
    if requires_grad and not d.is_floating_point:
        raise RuntimeError(NOT_FLOAT_GRAD)
    t = _draw_randperm(n, generator=generator, device=device)
    t = t if d is dt.int64 else t.to(d)
    return t.requires_grad_() if requires_grad else t


@declare("randperm", randperm, lambda shape, args: args, draws=True)
def _randperm_plan(n: int, dtype: Any = None, requires_grad: bool = False) -> Plan:
    if int(n) < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    return Plan((int(n),), (int(n),), *_kinds(dtype, dt.int64), requires_grad)


def _normal_check(std: float, dtype: Any) -> tuple[dt.DType, Any]:
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")
    return _float_dtype("normal_kernel_cpu", dtype)


def normal_numbers(
    mean: float,
    std: float,
    size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """torch.normal(mean, std, size) with number mean and std."""
    d, _ = _normal_check(std, dtype)
    gen = generator or current_generator()
    shape = _size((size,), d.itemsize)
    dev = get_device(device)
    if dev is CPU:
        arr = gen.normal(shape, d.np, float(mean), float(std))
    else:
        with dev.scope():
            z = gen.device_stream(dev.xp).standard_normal(shape, dtype=d.np)
            arr = (z * float(std) + float(mean)).astype(d.np)
    return _finish(arr, dev, requires_grad)


@declare(
    "normal", normal_numbers, lambda shape, args: (*args, shape), draws=True, tensor_op="normal"
)
def _normal_plan(
    mean: float, std: float, size: Any, dtype: Any = None, requires_grad: bool = False
) -> Plan:
    d, given = _normal_check(std, dtype)
    return Plan(_size((size,)), (float(mean), float(std)), d, given, requires_grad)


def normal(mean: Any, std: Any = 1.0, size: Any = None, **kw: Any) -> Tensor:
    """torch.normal: with a tensor mean or std, the ``normal`` op (shaped by them); with
    numbers, the factory (``size`` needed)."""
    if hasattr(mean, "dtype") or hasattr(std, "dtype"):
        if size is not None:
            raise RuntimeError("normal(): size is given by the mean and std tensors")
        from .op_table import OPS

        return OPS["normal"].call(mean, std, **kw)
    if size is None:
        raise TypeError("normal() with number mean and std needs a size")
    return normal_numbers(mean, std, size, **kw)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` itself when it is already a tensor of that dtype and device, else a new one."""
    from .tensor import tensor

    if isinstance(data, Tensor):
        out = data if device is None else data.to(device)
        return out if dtype is None else out.to(dtype)
    return tensor(data, dtype=dtype, device=device)
