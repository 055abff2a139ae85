"""Devices: one array module (``xp``) per device, NumPy on ``cpu`` and CuPy on ``cuda``."""

from __future__ import annotations

from types import ModuleType

import numpy as np


class Device:
    """A place tensors live; ``xp`` is the array module that computes there."""

    __slots__ = ("type", "xp")

    def __init__(self, type_: str, xp: ModuleType) -> None:
        self.type = type_
        self.xp = xp

    def __repr__(self) -> str:
        return f"device(type='{self.type}')"

    def __str__(self) -> str:
        return self.type

    def __eq__(self, other: object) -> bool:
        return str(other) == self.type

    def __hash__(self) -> int:
        return hash(self.type)


CPU = Device("cpu", np)
_cuda: Device | None = None
_cuda_error: str | None = None


def _load_cuda() -> Device:
    global _cuda, _cuda_error
    if _cuda is None and _cuda_error is None:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("no CUDA device found")
            _cuda = Device("cuda", cupy)
        except Exception as exc:  # ImportError, CUDARuntimeError: both mean "no GPU here"
            _cuda_error = f"{type(exc).__name__}: {exc}"
    if _cuda is None:
        raise RuntimeError(
            f"device 'cuda' is not available ({_cuda_error}); install gradd[cuda] (CuPy) on a "
            "machine with an NVIDIA GPU, or use device='cpu'"
        )
    return _cuda


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        _load_cuda()
    except RuntimeError:
        return False
    return True


def get_device(device: object) -> Device:
    """Resolve "cpu", "cuda", "cuda:0" or a Device."""
    if device is None or device is CPU:
        return CPU
    if isinstance(device, Device):
        return device
    name = str(device)
    if name == "cpu":
        return CPU
    if name == "cuda" or name.startswith("cuda:"):
        return _load_cuda()
    raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {name}")


def available_devices() -> list[str]:
    """The device names usable in this process."""
    return ["cpu", "cuda"] if cuda_is_available() else ["cpu"]


def to_host(array: object) -> np.ndarray:
    """A NumPy array for any device's array (copies from the GPU)."""
    if isinstance(array, np.ndarray):
        return array
    return array.get()  # CuPy
