"""Devices: one array module (``xp``) per device, NumPy on ``cpu`` and CuPy on ``cuda:N``."""

from __future__ import annotations

from contextlib import nullcontext
from types import ModuleType
from typing import Any

import numpy as np


class Device:
    """A place tensors live; ``xp`` is the array module that computes there.

    ``cuda`` devices have an ordinal (``index``) and print as PyTorch prints a tensor's device,
    ``cuda:0``; ``scope()`` makes that GPU current while an op runs."""

    __slots__ = ("type", "xp", "index", "name")

    def __init__(self, type_: str, xp: ModuleType, index: int | None = None) -> None:
        if type_.startswith("cuda:"):
            type_, index = "cuda", int(type_[5:])
        self.type = type_
        self.xp = xp
        self.index = index if index is not None or type_ == "cpu" else 0
        self.name = type_ if self.index is None else f"{type_}:{self.index}"

    def scope(self) -> Any:
        """A context in which this device's arrays are made and computed on."""
        if self.index is None or self.xp is np:
            return nullcontext()
        return self.xp.cuda.Device(self.index)

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        # A plain "cuda" names the current (first) GPU, as torch.device("cuda") does.
        name = str(other)
        return name == self.name or (name == self.type and self.index in (None, 0))

    def __hash__(self) -> int:
        return hash(self.type)


CPU = Device("cpu", np)
_default: Device = CPU
_cuda_module: ModuleType | None = None
_cuda: dict[int, Device] = {}  # one Device per GPU ordinal, made when first asked for
_cuda_error: str | None = None


def register_cuda(module: ModuleType) -> None:
    """Use ``module`` (CuPy, or an array module with CuPy's interface) as the ``cuda`` devices'
    array module. Called once, before any cuda tensor exists."""
    global _cuda_module, _cuda_error
    _cuda_module, _cuda_error = module, None
    _cuda.clear()


def _load_cuda(index: int) -> Device:
    global _cuda_module, _cuda_error
    if _cuda_module is None and _cuda_error is None:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("no CUDA device found")
            _cuda_module = cupy
        except Exception as exc:  # ImportError, CUDARuntimeError: both mean "no GPU here"
            _cuda_error = f"{type(exc).__name__}: {exc}"
    if _cuda_module is None:
        raise RuntimeError(
            f"device 'cuda' is not available ({_cuda_error}); install gradd[cuda] (CuPy) on a "
            "machine with an NVIDIA GPU, or use device='cpu'"
        )
    dev = _cuda.get(index)
    if dev is None:
        count = _cuda_module.cuda.runtime.getDeviceCount()
        if not 0 <= index < count:
            raise RuntimeError(
                f"CUDA error: invalid device ordinal (cuda:{index}; this machine has {count} "
                f"GPU{'s' if count != 1 else ''})"
            )
        dev = _cuda[index] = Device("cuda", _cuda_module, index)
    return dev


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        _load_cuda(0)
    except RuntimeError:
        return False
    return True


def get_device(device: object) -> Device:
    """Resolve None (the default device), "cpu", "cuda", "cuda:N" or a Device."""
    if device is None:
        return _default
    if isinstance(device, Device):
        return device
    name = str(device)
    if name == "cpu":
        return CPU
    if name == "cuda":
        return _load_cuda(0)
    if name.startswith("cuda:") and name[5:].isdigit():
        return _load_cuda(int(name[5:]))
    raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {name}")


def set_default_device(device: object) -> None:
    """Where tensors go when no device is given, as ``torch.set_default_device``."""
    global _default
    _default = CPU if device is None else get_device(device)


def get_default_device() -> Device:
    return _default


def cuda_device_count() -> int:
    """How many GPUs this process can use (0 without CuPy or a GPU)."""
    return _cuda_module.cuda.runtime.getDeviceCount() if cuda_is_available() else 0


def cuda_free_bytes(index: int) -> int:
    """Free memory of GPU ``index``: the driver's free bytes, plus what CuPy's memory pool holds
    unused (freed tensors stay in the pool, ready for the next ones)."""
    _load_cuda(index)
    free = int(_cuda_module.cuda.Device(index).mem_info[0])
    pool = getattr(_cuda_module, "get_default_memory_pool", None)
    if pool is not None:
        with _cuda[index].scope():
            free += int(pool().free_bytes())
    return free


def available_devices() -> list[str]:
    """The device names usable in this process: cpu, and cuda with each GPU's ordinal."""
    count = cuda_device_count()
    return ["cpu", *(["cuda", *(f"cuda:{i}" for i in range(count))] if count else [])]


def to_host(array: Any) -> np.ndarray:
    """A NumPy array for any device's array: NumPy's as it is, a GPU array copied by its own
    module's ``asnumpy`` (CuPy, or any array module registered for cuda)."""
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "__cuda_array_interface__") and _cuda_module is not None:
        return _cuda_module.asnumpy(array)
    return np.asarray(array)  # NumPy scalars and other host values
