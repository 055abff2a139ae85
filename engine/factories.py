"""Tensor factories: zeros, ones, full, randn, rand, arange (and ``tensor`` from tensor.py)."""

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


def _float(dtype: Any) -> dt.DType:
    d = dt.default_float if dtype is None else dt.as_dtype(dtype)
    return d


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    d = _float(dtype)
    return _build(device, requires_grad, "zeros", _size(size, d.itemsize), d.np)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    d = _float(dtype)
    return _build(device, requires_grad, "ones", _size(size, d.itemsize), d.np)


def full(
    size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """A tensor filled with ``fill_value`` (its dtype inferred from the value, as PyTorch)."""
    d = dt.scalar_dtype(fill_value) if dtype is None else dt.as_dtype(dtype)
    return _build(device, requires_grad, "full", _size((size,), d.itemsize), fill_value, d.np)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with t's shape, dtype and device."""
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with t's shape, dtype and device."""
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples from the session's (or the given) generator, as torch.randn."""
    d = _float(dtype)
    if not d.is_floating_point:
        raise RuntimeError(f"\"normal_kernel_cpu\" not implemented for '{d.name.capitalize()}'")
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
    d = _float(dtype)
    if not d.is_floating_point:
        raise RuntimeError(f"\"check_uniform_bounds\" not implemented for '{d.name.capitalize()}'")
    gen = generator or current_generator()
    arr, dev = _draw(device, gen, "uniform", "random_sample", _size(size, d.itemsize), d.np)
    return _finish(arr, dev, requires_grad)


def randint(
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


def randperm(n: int, generator: Any = None, device: Any = None) -> Tensor:
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
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if dtype is None:
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, step))
        d = dt.int64 if ints else dt.default_float
    else:
        d = dt.as_dtype(dtype)
    if d is dt.bool_:
        raise NotImplementedError("\"arange_cpu\" not implemented for 'Bool'")
    if all(isinstance(v, (int, float)) for v in (start, end, step)):
        # arange makes 8-byte values, then the cast: both live for a moment
        check_active(max(0, math.ceil((end - start) / step)) * (8 + d.itemsize))
    dev = get_device(device)
    if dev is CPU:
        return _finish(np.arange(start, end, step).astype(d.np), dev, requires_grad)
    with dev.scope():  # as NumPy: the values in the arguments' type, then cast
        return _finish(dev.xp.arange(start, end, step).astype(d.np), dev, requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from start to end inclusive."""
    d = _float(dtype)
    check_active(max(0, int(steps)) * (8 + d.itemsize))
    dev = get_device(device)
    if dev is CPU:
        return _finish(np.linspace(start, end, int(steps)).astype(d.np), dev, requires_grad)
    with dev.scope():
        return _finish(dev.xp.linspace(start, end, int(steps)).astype(d.np), dev, requires_grad)
