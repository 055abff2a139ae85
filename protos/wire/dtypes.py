"""Engine dtypes on the wire: each one's gradd.v1 DType is the enum value of its upper-cased
name (float32 -> FLOAT32). Raw tensor bytes are little-endian, row-major."""

from __future__ import annotations

from typing import Any

import numpy as np
from gradd.engine import dtypes as _dt
from gradd.v1 import tensor_pb2 as _tpb

# Engine dtype name -> wire DType number.
WIRE_DTYPES: dict[str, int] = {d.name: _tpb.DType.Value(d.name.upper()) for d in _dt.ALL}
# Wire DType number -> the engine's dtype (DTYPE_UNSPECIFIED is absent).
ENGINE_DTYPES: dict[int, Any] = {WIRE_DTYPES[d.name]: d for d in _dt.ALL}
# Wire DType number -> the little-endian NumPy dtype of its raw bytes.
NP_DTYPES: dict[int, np.dtype] = {WIRE_DTYPES[d.name]: d.np.newbyteorder("<") for d in _dt.ALL}


def wire_name(number: int) -> str:
    """The DType enum name of a wire number (e.g. "DTYPE_UNSPECIFIED"), for messages."""
    return _tpb.DType.Name(number)
