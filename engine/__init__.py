"""gradd.engine: PyTorch's define-by-run autograd over NumPy (cpu) or CuPy (cuda).

Ops live in one table (``OP_TABLE``, filled by the ``ops`` package; ``OPS`` holds its public
ops); Tensor methods, the ``functional`` namespace and the server's allow-list derive from it.
"""

from __future__ import annotations

from . import functional, linalg
from . import ops as _ops  # noqa: F401  (fills the op table)
from .autograd import backward, grad
from .device import (
    Device,
    available_devices,
    cuda_device_count,
    cuda_free_bytes,
    cuda_is_available,
    get_default_device,
    get_device,
    set_default_device,
)
from .dtypes import (
    DType,
    bool_,
    dtype_from_name,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    promote_types,
    result_type,
    uint8,
)
from .errors import AutogradError
from .factories import (
    FACTORIES,
    arange,
    as_tensor,
    empty,
    eye,
    full,
    linspace,
    logspace,
    normal,
    ones,
    rand,
    randint,
    randn,
    randperm,
    zeros,
)
from .generator import Generator
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .graph_picture import GraphNode, GraphPicture, make_dot
from .methods import bind as _bind
from .op_table import OP_TABLE, OPS, OpDef, _bind_tensor, call_op
from .random_state import current_generator, manual_seed, use_generator
from .tensor import Tensor, tensor

_bind_tensor()
_bind()

float = float32  # noqa: A001 - PyTorch's aliases
double = float64
half = float16
short = int16
int = int32  # noqa: A001
long = int64
bool = bool_  # noqa: A001

# Top-level functions for every op the table marks as a function (torch.add, torch.cat, ...).
for _name, _d in OPS.items():
    if _d.function and _d.function not in globals():
        globals()[_d.function] = _d.call
del _name, _d

__all__ = [
    "OPS",
    "OP_TABLE",
    "AutogradError",
    "DType",
    "Device",
    "Generator",
    "GraphNode",
    "GraphPicture",
    "OpDef",
    "Tensor",
    "arange",
    "available_devices",
    "backward",
    "bool_",
    "call_op",
    "cuda_device_count",
    "cuda_free_bytes",
    "cuda_is_available",
    "current_generator",
    "dtype_from_name",
    "enable_grad",
    "float16",
    "float32",
    "float64",
    "full",
    "functional",
    "get_default_device",
    "get_device",
    "grad",
    "int8",
    "int16",
    "int32",
    "int64",
    "promote_types",
    "linalg",
    "is_grad_enabled",
    "linspace",
    "make_dot",
    "manual_seed",
    "no_grad",
    "ones",
    "rand",
    "randint",
    "randn",
    "randperm",
    "result_type",
    "set_default_device",
    "set_grad_enabled",
    "tensor",
    "uint8",
    "use_generator",
    "zeros",
    "FACTORIES",
    "as_tensor",
    "empty",
    "eye",
    "logspace",
    "normal",
]
