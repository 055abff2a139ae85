"""Tensors on the wire: gradd.v1 TensorData <-> NumPy arrays, and TensorValue answers.

Raw bytes are little-endian, row-major; decoding them costs no copy here (the engine copies
once when it makes the tensor). Typed values exist so a person can type a tensor into grpcurl.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gradd.v1 import tensor_pb2 as tpb
from gradd.wire.dtypes import NP_DTYPES, WIRE_DTYPES, wire_name

from .errors import invalid

_TYPED_DEFAULTS = {"float_values": tpb.FLOAT32, "int_values": tpb.INT64, "bool_values": tpb.BOOL}


MAX_DIMS = 64  # NumPy's limit: a longer shape can never make a tensor


def element_count(shape: Any) -> int:
    """The number of elements of a shape; INVALID_ARGUMENT for a negative size or more than
    MAX_DIMS dimensions (checked first: a shape may be millions of sizes long on the wire)."""
    if len(shape) > MAX_DIMS:
        raise invalid(f"a shape has at most {MAX_DIMS} dimensions, got {len(shape)}")
    if any(size < 0 for size in shape):
        raise invalid(f"negative size in shape {list(shape)}")
    return math.prod(shape)


class IncomingTensor:
    """A TensorData checked for consistency: its shape, dtype and size known before decoding."""

    __slots__ = ("data", "raw", "field", "dtype", "shape", "nbytes")

    def __init__(self, data: tpb.TensorData, raw: memoryview | None = None) -> None:
        self.data = data
        # Read once (each read of a bytes field copies it), or given as a view of the request.
        self.raw = data.raw if raw is None else raw
        if len(self.raw):
            if data.dtype == tpb.DTYPE_UNSPECIFIED:
                raise invalid("raw tensor data needs a dtype")
            self.field, count = "raw", None
        else:
            given = [f for f in _TYPED_DEFAULTS if len(getattr(data, f))]
            if len(given) > 1:
                raise invalid(f"tensor data sets {' and '.join(given)}; give only one")
            self.field = given[0] if given else ""
            count = len(getattr(data, self.field)) if self.field else 0
        self.dtype = data.dtype or _TYPED_DEFAULTS.get(self.field, tpb.FLOAT32)
        if self.dtype not in NP_DTYPES:
            raise invalid(f"unknown dtype {self.dtype}")
        shape = tuple(data.shape)
        if not shape and count is not None and count != 1:
            shape = (count,)  # typed values without a shape: 1-D (one value: a scalar)
        self.shape = shape
        elements = element_count(shape)
        self.nbytes = elements * NP_DTYPES[self.dtype].itemsize
        # Checked here, before the session's limits see nbytes: a shape the data does not fill
        # is a bad argument, however large it claims to be.
        if count is None and len(self.raw) != self.nbytes:
            raise invalid(
                f"raw holds {len(self.raw)} bytes but shape {list(shape)} of "
                f"{wire_name(self.dtype)} needs {self.nbytes}"
            )
        if count is not None and count != elements:
            raise invalid(f"{count} values given for shape {list(shape)} ({elements} elements)")

    def array(self) -> np.ndarray:
        """The elements as an array (their number was checked against the shape);
        INVALID_ARGUMENT for raw BOOL bytes other than 0 and 1, and for float values that do
        not fit INT64 (as PyTorch)."""
        np_dtype = NP_DTYPES[self.dtype]
        shape = self.shape
        if self.field == "raw":
            array = np.frombuffer(self.raw, dtype=np_dtype)
            if np_dtype.kind == "b" and array.size and array.view(np.uint8).max() > 1:
                raise invalid("raw BOOL elements must be bytes 0 or 1")
            return array.reshape(shape)
        values = getattr(self.data, self.field) if self.field else ()
        kind = {"float_values": np.float64, "int_values": np.int64}.get(self.field, bool)
        array = np.asarray(values, dtype=kind)
        if kind is np.float64 and np_dtype.kind == "i" and not _fits_int64(array):
            raise invalid("value cannot be converted to type int64 without overflow")
        with np.errstate(over="ignore"):  # FLOAT32 overflows to inf, as in PyTorch
            return array.astype(np_dtype, copy=False).reshape(shape)


def _fits_int64(array: np.ndarray) -> bool:
    # NaN compares false, so it does not fit either. PyTorch also lets 2**63 through (and
    # wraps it to -2**63); the range here is the exact one.
    return bool(np.all((array >= -(2.0**63)) & (array < 2.0**63)))


def fill_info(info: tpb.TensorInfo, tensor: Any) -> None:
    """Write a tensor's metadata (no elements) into a TensorInfo."""
    info.dtype = WIRE_DTYPES[tensor.dtype.name]
    info.shape.extend(tensor.shape)
    info.device = str(tensor.device)
    info.requires_grad = tensor.requires_grad
    info.is_leaf = tensor.is_leaf
    grad_fn = tensor.grad_fn
    info.grad_fn = grad_fn.name() if grad_fn is not None else ""
    # Only leaves and retain_grad() tensors have a .grad (reading others would warn).
    info.has_grad = (grad_fn is None or tensor.retains_grad) and tensor.grad is not None
    info.version = tensor._version
    info.nbytes = tensor.nbytes


def tensor_value(
    handle: str,
    tensor: Any,
    *,
    metadata_only: bool = False,
    typed_values: bool = False,
    into: tpb.TensorValue | None = None,
    host: np.ndarray | None = None,
) -> tpb.TensorValue:
    """A TensorValue answer for a tensor (filled into `into` if given): metadata, `item` for
    one element, and the elements. `host`: its elements already copied to the host (a GPU
    tensor is then not read twice)."""
    value = tpb.TensorValue() if into is None else into
    value.handle = handle
    fill_info(value.info, tensor)
    if metadata_only:
        if tensor.numel() == 1:
            value.item = float(tensor.item() if host is None else host.reshape(()))
        return value
    # tobytes() and ravel() give row-major order anyway
    array = tensor.detach().numpy() if host is None else host
    if array.size == 1:
        value.item = float(array.reshape(()))
    data = value.data
    data.dtype = value.info.dtype
    data.shape.extend(array.shape)
    if not typed_values:
        data.raw = array.astype(NP_DTYPES[data.dtype], copy=False).tobytes()
    elif array.dtype.kind == "f":
        data.float_values.extend(array.ravel().tolist())
    elif array.dtype.kind == "b":
        data.bool_values.extend(array.ravel().tolist())
    else:
        data.int_values.extend(array.ravel().tolist())
    return value
