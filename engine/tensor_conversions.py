"""PyTorch's conversion shortcuts, written once for every kind of tensor.

Each is a spelling of ``to``, ``permute`` or ``transpose``, which the engine's ``Tensor`` and
the SDK's ``RemoteTensor`` implement in their own ways; both inherit these, and the layout
queries (``stride()``, ``is_contiguous()``, ``storage_offset()``), which read the layout both
kinds track by the op table's rules (``engine/layout.py``).
"""

from __future__ import annotations

from typing import Any, Self

from . import dtypes as dt
from . import layout as _layout
from .shapes import wrap_dim


class TensorConversions:
    """``float()``, ``double()``, ``half()``, ``byte()``, ``char()``, ``short()``, ``int()``,
    ``long()``, ``bool()``, ``type()``, ``cpu()``, ``cuda()``, ``T``, ``mT``, ``format()``."""

    __slots__ = ()
    to: Any
    ndim: int
    shape: Any
    _layout: _layout.Layout

    def stride(self, dim: int | None = None) -> Any:
        """The step in elements between neighbours along each dim (or along ``dim``)."""
        st = _layout.strides_of(self.shape, self._layout)
        if dim is None:
            return st
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise TypeError(f"stride(): argument 'dim' must be int, not {type(dim).__name__}")
        return st[wrap_dim(dim, len(st))] if st else 1

    def is_contiguous(self, memory_format: Any = None) -> bool:
        """Whether the elements lie in row-major order without gaps."""
        return _layout.is_contiguous(self.shape, self._layout)

    def storage_offset(self) -> int:
        """Where the first element lies in the storage, in elements."""
        return _layout.offset_of(self._layout)

    def __format__(self, spec: str) -> str:
        # PyTorch: a 0-d tensor formats as its value (f"{loss:.4f}", and f"{loss}" too); any
        # other is object's (its repr, or a TypeError for a non-empty spec).
        if self.ndim == 0:
            return format(self.item(), spec)
        if spec:  # PyTorch's words, whichever class the tensor is
            raise TypeError("unsupported format string passed to Tensor.__format__")
        return str(self)

    def float(self) -> Self:
        return self.to(dt.float32)

    def double(self) -> Self:
        return self.to(dt.float64)

    def half(self) -> Self:
        return self.to(dt.float16)

    def byte(self) -> Self:
        return self.to(dt.uint8)

    def char(self) -> Self:
        return self.to(dt.int8)

    def short(self) -> Self:
        return self.to(dt.int16)

    def int(self) -> Self:
        return self.to(dt.int32)

    def long(self) -> Self:
        return self.to(dt.int64)

    def type(self, dtype: Any = None, non_blocking: bool = False) -> Any:
        """Without ``dtype``, the legacy type name ("torch.FloatTensor", "torch.cuda.IntTensor"
        on a GPU); with one (a dtype or such a name), the tensor converted to it."""
        if dtype is None:
            name = self.dtype.tensor_type  # type: ignore[attr-defined]
            on_gpu = self.device.type != "cpu"  # type: ignore[attr-defined]
            return name.replace("torch.", "torch.cuda.", 1) if on_gpu else name
        if isinstance(dtype, str):
            d = dt.from_tensor_type(dtype)
            if dtype.startswith("torch.cuda."):
                return self.to("cuda", d)
            return self.to(d) if self.device.type == "cpu" else self.to("cpu", d)  # type: ignore[attr-defined]
        return self.to(dtype)

    def bool(self) -> Self:
        return self.to(dt.bool_)

    def cpu(self) -> Self:
        return self.to("cpu")

    def cuda(self) -> Self:
        return self.to("cuda")

    @property
    def T(self) -> Self:  # noqa: N802 - PyTorch's name
        return self.permute(*range(self.ndim - 1, -1, -1))  # type: ignore[attr-defined]

    @property
    def mT(self) -> Self:  # noqa: N802 - PyTorch's name
        return self.transpose(-2, -1)  # type: ignore[attr-defined]
