"""A CPU stand-in for CuPy, for tests only: NumPy underneath, CuPy's rules on top.

A test double, not a GPU emulator: it computes with NumPy, but its arrays (``ndarray``) are
their own type and follow the rules that make code written for NumPy fail on CuPy:

- no implicit conversion to NumPy: ``np.asarray(a)`` / ``a.__array__()`` raise CuPy's
  TypeError; so do ``bool(a)``, ``float(a)``, ``int(a)`` and ``operator.index(a)``, where CuPy
  would sync silently (stricter than CuPy on purpose: each is a hidden device-to-host sync);
- mixing with a NumPy array in an op raises TypeError, as CuPy does;
- reductions and scalar indexing give 0-d arrays, not Python or NumPy scalars;
- ``.get()``, ``asnumpy()``, ``.item()`` and ``.tolist()`` are explicit copies to the host and
  ``repr`` an implicit one; ``asarray(numpy_array)`` and NumPy arrays used as indices or assigned
  into an array are uploads: all are counted in ``TRANSFERS``;
- ``add.at`` / ``cupyx.scatter_add`` with an integer-array index take only the dtypes CUDA's
  atomicAdd has (not int64 nor bool);
- arrays belong to the device that was current when they were made (``cuda.Device(n)``), and a
  kernel on arrays of another device raises CuPy's ValueError.

``install()`` makes it the ``cuda`` device of gradd's engine (``device.register_cuda``).
"""

from __future__ import annotations

import sys
import threading
import types
import weakref
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
    "NumPy array explicitly."
)
# CUDA's atomicAdd: the dtypes CuPy's scatter_add / ufunc.at accept with an integer-array index.
ATOMIC_ADD = {np.dtype(t) for t in ("float16", "float32", "float64", "int32", "uint32", "uint64")}
DEVICE_COUNT = 2  # two "GPUs", so that code honouring cuda:N ordinals is exercised


class Transfers:
    """Copies between host and "device" since the last reset (counts and bytes)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.to_host = 0  # explicit: .get(), asnumpy(), .item(), .tolist()
        self.implicit_to_host = 0  # repr/str of an array (CuPy syncs to print it)
        self.to_device = 0  # uploads: asarray(numpy), NumPy indices and assigned values
        self.to_host_bytes = 0
        self.to_device_bytes = 0

    def snapshot(self) -> dict[str, int]:
        return dict(vars(self))


TRANSFERS = Transfers()


@contextmanager
def counting() -> Any:
    """``with counting() as t:`` — ``t`` counts the transfers made inside the block."""
    TRANSFERS.reset()
    yield TRANSFERS


def _download(a: np.ndarray, explicit: bool = True) -> None:
    if explicit:
        TRANSFERS.to_host += 1
    else:
        TRANSFERS.implicit_to_host += 1
    TRANSFERS.to_host_bytes += a.nbytes


def _upload(a: np.ndarray) -> None:
    TRANSFERS.to_device += 1
    TRANSFERS.to_device_bytes += a.nbytes


# --- devices -----------------------------------------------------------------------------------


MEMORY_BYTES = 16 << 30  # each stand-in GPU's memory, as Device.mem_info reports it
_live_bytes = [0] * DEVICE_COUNT  # bytes of the arrays alive on each stand-in GPU
_tracked: set[int] = set()


def _allocated(a: np.ndarray, device: int) -> None:
    # Count an array that owns its memory on its GPU until it is freed (views own nothing).
    key = id(a)
    if a.base is not None or key in _tracked:
        return
    _tracked.add(key)
    _live_bytes[device] += a.nbytes
    weakref.finalize(a, _released, key, device, a.nbytes)


def _released(key: int, device: int, nbytes: int) -> None:
    _tracked.discard(key)
    _live_bytes[device] -= nbytes


class _Current(threading.local):
    id = 0


_current = _Current()


class Device:
    """``cupy.cuda.Device(n)``: a context manager making GPU ``n`` current on this thread."""

    def __init__(self, device: Any = None) -> None:
        self.id = _current.id if device is None else int(getattr(device, "id", device))
        if not 0 <= self.id < DEVICE_COUNT:
            raise RuntimeError("CUDARuntimeError: cudaErrorInvalidDevice: invalid device ordinal")
        self._prev: list[int] = []

    def __enter__(self) -> Device:
        self._prev.append(_current.id)
        _current.id = self.id
        return self

    def __exit__(self, *exc: object) -> None:
        _current.id = self._prev.pop()

    def use(self) -> None:
        _current.id = self.id

    def synchronize(self) -> None:
        """Nothing runs asynchronously here."""

    @property
    def mem_info(self) -> tuple[int, int]:
        """(free, total) bytes, as CuPy's: free is what its live arrays leave."""
        return MEMORY_BYTES - _live_bytes[self.id], MEMORY_BYTES

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class _Runtime:
    @staticmethod
    def getDeviceCount() -> int:  # noqa: N802 - CuPy's name
        return DEVICE_COUNT


class Event:
    """``cupy.cuda.Event``: work here is done when it is queued."""

    def synchronize(self) -> None:
        pass


class Stream:
    """``cupy.cuda.Stream``: a queue whose work is done at once here."""

    def __init__(self, null: bool = False, non_blocking: bool = False) -> None:
        self.non_blocking = non_blocking

    def record(self, event: Event | None = None) -> Event:
        return event or Event()

    def synchronize(self) -> None:
        pass


def alloc_pinned_memory(size: int) -> bytearray:
    """``cupy.cuda.alloc_pinned_memory``: host memory with the buffer protocol."""
    return bytearray(size)


cuda = types.SimpleNamespace(
    Device=Device,
    runtime=_Runtime(),
    Stream=Stream,
    Event=Event,
    alloc_pinned_memory=alloc_pinned_memory,
)


# --- arrays ------------------------------------------------------------------------------------


class ndarray(NDArrayOperatorsMixin):  # noqa: N801 - CuPy's name
    """An array on a stand-in GPU: NumPy's values, CuPy's rules (see the module docstring)."""

    __slots__ = ("_a", "_device", "__weakref__")
    __hash__ = None  # type: ignore[assignment]  # mutable, like cupy.ndarray

    def __init__(self, a: np.ndarray, device: int | None = None) -> None:
        self._a = a
        self._device = _current.id if device is None else device
        _allocated(a, self._device)

    # -- CuPy's explicit transfers
    def get(self, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
        _download(self._a)
        return self._a.copy()

    def item(self) -> Any:
        _download(self._a)
        return self._a.item()

    def tolist(self) -> Any:
        _download(self._a)
        return self._a.tolist()

    def set(self, arr: np.ndarray, stream: Stream | None = None) -> None:
        if not isinstance(arr, np.ndarray) or arr.shape != self._a.shape:
            shapes = f"Old shape: {self.shape}, new shape: {getattr(arr, 'shape', None)}"
            raise ValueError(f"Shape mismatch. {shapes}")  # CuPy's words
        _upload(arr)
        self._a[...] = arr

    @property
    def device(self) -> Device:
        return Device(self._device)

    @property
    def __cuda_array_interface__(self) -> dict:
        a = self._a
        return {
            "shape": a.shape,
            "typestr": a.dtype.str,
            "data": (a.__array_interface__["data"][0], False),
            "strides": None if a.flags.c_contiguous else a.strides,
            "version": 3,
        }

    # -- no implicit conversions
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(IMPLICIT)

    def _sync(self, *_: Any) -> Any:
        raise TypeError(f"{IMPLICIT} (the CuPy stand-in refuses implicit device-to-host syncs)")

    __bool__ = __float__ = __int__ = __index__ = __complex__ = _sync

    def __repr__(self) -> str:
        _download(self._a, explicit=False)
        return repr(self._a)

    def __str__(self) -> str:
        _download(self._a, explicit=False)
        return str(self._a)

    def __format__(self, spec: str) -> str:
        _download(self._a, explicit=False)
        return format(self._a, spec)

    # -- containers
    def __len__(self) -> int:
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._a)

    def __iter__(self) -> Any:
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._a[_index(key)], self._device)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[_index(key)] = _value(value)

    def __copy__(self) -> ndarray:
        return ndarray(self._a.copy(), self._device)

    def __deepcopy__(self, memo: dict) -> ndarray:
        return self.__copy__()

    # -- NumPy protocols: CuPy's ufuncs and functions run on our arrays, never on NumPy's
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method == "at":
            return _Ufunc(ufunc).at(*inputs, **kwargs)
        device = _same_device(inputs + tuple(kwargs.get("out", ())))
        args = [_operand(x) for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(_operand(x) for x in kwargs["out"])
        return _wrap(getattr(ufunc, method)(*args, **kwargs), device)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        return _call(func, args, kwargs)

    # -- everything else (shape, dtype, reshape, sum, astype...) is NumPy's, wrapped
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_a", "_device"):  # copy/pickle probes, unset slots
            raise AttributeError(name)
        value = getattr(self._a, name)
        if callable(value):
            device = self._device

            def method(*args: Any, **kwargs: Any) -> Any:
                return _wrap(value(*_unwrap(args), **_unwrap(kwargs)), device)

            return method
        return _wrap(value, self._device)


# --- conversions between our arrays and NumPy's --------------------------------------------------


def _wrap(x: Any, device: int | None = None) -> Any:
    """NumPy results as device arrays (scalars as 0-d arrays, as CuPy returns them)."""
    if isinstance(x, np.ndarray):
        return ndarray(x, device)
    if isinstance(x, np.generic):
        return ndarray(np.asarray(x), device)
    if isinstance(x, tuple):
        return tuple(_wrap(v, device) for v in x)
    if isinstance(x, list):
        return [_wrap(v, device) for v in x]
    return x


def _unwrap(x: Any) -> Any:
    """Arguments for NumPy: our arrays unwrapped; a NumPy array is refused, as CuPy does."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _operand(x: Any) -> Any:
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (np.ndarray, list, tuple)):
        raise TypeError(f"Unsupported type {type(x)}")
    return x  # Python and NumPy scalars are fine


def _same_device(arrays: tuple) -> int:
    """The current device; CuPy's error when a kernel gets an array from another one."""
    current = _current.id
    for x in arrays:
        if isinstance(x, ndarray) and x._device != current:
            raise ValueError(
                f"Array device must be same as the current device: array device = {x._device} "
                f"while current = {current}"
            )
    return current


def _index(key: Any) -> Any:
    """An index for NumPy; NumPy arrays and lists in it are uploaded, as CuPy does."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, np.ndarray):
        _upload(key)
        return key
    if isinstance(key, list):
        arr = np.asarray(key)
        _upload(arr)
        return arr
    return key


def _value(value: Any) -> Any:
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        _upload(value)
    return value


def _call(func: Any, args: tuple, kwargs: dict) -> Any:
    device = _same_device(tuple(_flat(args)) + tuple(_flat(kwargs.values())))
    return _wrap(func(*_unwrap(args), **_unwrap(kwargs)), device)


def _flat(xs: Any) -> Any:
    for x in xs:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


class _Ufunc:
    """``cupy.add`` and friends: calls, reductions, and ``at`` with atomicAdd's dtypes."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._u = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        device = _same_device(args + tuple(kwargs.get("out", ())))
        inputs = [_operand(x) for x in args]
        if "out" in kwargs:
            out = kwargs["out"]
            kwargs["out"] = tuple(_operand(x) for x in (out if isinstance(out, tuple) else (out,)))
        return _wrap(self._u(*inputs, **kwargs), device)

    def at(self, a: ndarray, indices: Any, b: Any = None) -> None:
        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        _same_device((a, b))
        key = _index(indices)
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, np.ndarray) and k.dtype.kind in "iu" for k in keys):
            if self._u is np.add and a.dtype not in ATOMIC_ADD:
                raise TypeError(f"scatter_add does not support {a.dtype} (no atomicAdd for it)")
        self._u.at(a._a, key, _operand(b) if b is not None else b)

    def __getattr__(self, name: str) -> Any:  # reduce, accumulate, outer...
        method = getattr(self._u, name)
        if not callable(method):
            return method
        return lambda *args, **kwargs: _call(method, args, kwargs)


def scatter_add(a: ndarray, slices: Any, value: Any) -> None:
    """``cupyx.scatter_add``: ``numpy.add.at`` with atomicAdd's dtypes."""
    _Ufunc(np.add).at(a, slices, value)


cupyx = types.SimpleNamespace(scatter_add=scatter_add)


class _Special(types.ModuleType):
    """``cupyx.scipy.special``: SciPy's special functions, on our arrays."""

    def __getattr__(self, name: str) -> Any:
        import scipy.special

        value = getattr(scipy.special, name)
        if isinstance(value, np.ufunc):
            return _Ufunc(value)
        return lambda *args, **kwargs: _call(value, args, kwargs)


scipy_special = _Special("cupyx.scipy.special")  # what gradd.engine.special finds first


# --- module functions -------------------------------------------------------------------------


def diagonal(a: ndarray, offset: int = 0, axis1: int = 0, axis2: int = 1) -> ndarray:
    """``cupy.diagonal``: a writable view (NumPy's is read-only)."""
    out = np.diagonal(_unwrap(a), offset, axis1, axis2)
    if a._a.flags.writeable:
        out.flags.writeable = True
    return _wrap(out, a._device)


def asarray(a: Any, dtype: Any = None, order: Any = None) -> ndarray:
    """On the current device: our arrays as they are (copied from another device), the rest
    uploaded (one copy into device memory)."""
    if isinstance(a, ndarray):
        if a._device == _current.id:
            return ndarray(a._a.astype(dtype, copy=False), a._device) if dtype else a
        return ndarray(np.array(a._a, dtype=dtype))  # a device-to-device copy
    host = np.asarray(a, dtype=dtype, order=order)
    _upload(host)
    # The device gets its own memory: never an alias of the caller's host buffer.
    return ndarray(host.copy() if host is a or host.base is not None else host)


def array(a: Any, dtype: Any = None, copy: bool = True, order: Any = None) -> ndarray:
    if isinstance(a, ndarray):
        return ndarray(np.array(a._a, dtype=dtype, copy=copy or None))
    return asarray(a, dtype=dtype, order=order)


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
    """``cupy.asnumpy``: a host copy of a device array (NumPy input as it is)."""
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def ascontiguousarray(a: ndarray, dtype: Any = None) -> ndarray:
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}")
    _same_device((a,))
    return ndarray(np.ascontiguousarray(a._a, dtype=dtype))


def get_array_module(*args: Any) -> types.ModuleType:
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


class RandomState:
    """``cupy.random.RandomState``: a seeded stream whose draws are made on the device."""

    def __init__(self, seed: int | None = None) -> None:
        self._gen = np.random.default_rng(seed)

    def seed(self, seed: int | None = None) -> None:
        self._gen = np.random.default_rng(seed)

    def standard_normal(self, size: Any = None, dtype: Any = float) -> ndarray:
        return _wrap(self._gen.standard_normal(size, dtype=dtype))

    def random_sample(self, size: Any = None, dtype: Any = float) -> ndarray:
        return _wrap(self._gen.random(size, dtype=dtype))

    def randint(self, low: int, high: int | None = None, size: Any = None, dtype: Any = "l"):  # noqa: ANN201
        return _wrap(self._gen.integers(low, high, size, dtype=dtype))

    def permutation(self, num: int) -> ndarray:
        return _wrap(self._gen.permutation(num))


random = types.SimpleNamespace(RandomState=RandomState)
_UFUNCS: dict[str, _Ufunc] = {}


def __getattr__(name: str) -> Any:
    """Everything else is NumPy's, on our arrays: ufuncs, functions, dtypes and constants."""
    value = getattr(np, name)
    if isinstance(value, np.ufunc):
        return _UFUNCS.setdefault(name, _Ufunc(value))
    if callable(value) and not isinstance(value, type):
        return lambda *args, **kwargs: _call(value, args, kwargs)
    return value  # dtypes (float32...), classes (dtype, iinfo), constants (pi, newaxis)


def install() -> types.ModuleType:
    """Make this module the engine's ``cuda`` array module (device.register_cuda)."""
    from gradd.engine import device

    module = sys.modules[__name__]
    device.register_cuda(module)
    return module
