"""The nine dtypes gradd supports and PyTorch's type-promotion rules over them."""

from __future__ import annotations

import numpy as np


class DType:
    """A tensor element type; prints as PyTorch's (``torch.float32``), so a tensor's repr
    (``dtype=torch.float64``) reads as PyTorch's."""

    __slots__ = (
        "name",
        "np",
        "itemsize",
        "is_floating_point",
        "is_signed",
        "category",
        "torch_name",
        "c_name",
        "kind",
    )

    def __init__(self, name: str, np_dtype: type, category: int, torch_name: str, c_name: str):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.is_floating_point = category == FLOAT
        self.is_signed = self.np.kind in "if"
        self.category = category
        self.torch_name = torch_name  # PyTorch's scalar-type name: "Float", "Long", "Byte"...
        self.c_name = c_name  # its C++ name in PyTorch's messages: "float", "c10::Half"...
        self.kind = self.np.kind  # as an array's dtype: the promotion fast path reads either

    @property
    def tensor_type(self) -> str:
        """The legacy tensor-type name ``Tensor.type()`` returns ("torch.FloatTensor")."""
        return f"torch.{self.torch_name}Tensor"

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self) -> str:  # singletons survive copy/pickle as themselves
        return self.name


BOOL, INT, FLOAT = 0, 1, 2

float16 = DType("float16", np.float16, FLOAT, "Half", "c10::Half")
float32 = DType("float32", np.float32, FLOAT, "Float", "float")
float64 = DType("float64", np.float64, FLOAT, "Double", "double")
uint8 = DType("uint8", np.uint8, INT, "Byte", "unsigned char")
int8 = DType("int8", np.int8, INT, "Char", "signed char")
int16 = DType("int16", np.int16, INT, "Short", "short int")
int32 = DType("int32", np.int32, INT, "Int", "int")
int64 = DType("int64", np.int64, INT, "Long", "long int")
bool_ = DType("bool", np.bool_, BOOL, "Bool", "bool")

ALL: tuple[DType, ...] = (float16, float32, float64, uint8, int8, int16, int32, int64, bool_)

# Canonical names and PyTorch's aliases (torch.float is float32, torch.half float16, ...).
ALIASES: dict[str, DType] = {d.name: d for d in ALL}
ALIASES.update(half=float16, float=float32, double=float64, short=int16, int=int32, long=int64)
_BY_NP: dict[np.dtype, DType] = {d.np: d for d in ALL}
_BY_TENSOR_TYPE: dict[str, DType] = {d.tensor_type: d for d in ALL}
default_float = float32


def dtype_from_name(name: str) -> DType:
    """Look a dtype up by name or PyTorch alias ("float32", "float", "long", ...)."""
    try:
        return ALIASES[name.removeprefix("torch.").removeprefix("gradd.")]
    except KeyError:
        raise TypeError(f"unsupported dtype {name!r}; gradd supports {sorted(ALIASES)}") from None


def from_tensor_type(name: str) -> DType:
    """The dtype of a legacy tensor-type name ("torch.IntTensor"), as ``Tensor.type(str)``."""
    d = _BY_TENSOR_TYPE.get(name.replace("torch.cuda.", "torch.", 1))
    if d is None:
        raise ValueError(f"invalid type: '{name}'")
    return d


def as_dtype(dtype: object) -> DType:
    """Accept a DType, a name, a NumPy dtype or a Python type (float, int, bool)."""
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str):
        return dtype_from_name(dtype)
    if dtype is float:
        return default_float
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    return from_numpy(np.dtype(dtype))


def from_numpy(np_dtype: np.dtype) -> DType:
    """Map a NumPy dtype to gradd's: the nine keep their type; other ints (uint16 and wider
    unsigned) widen to int64."""
    d = _BY_NP.get(np_dtype)
    if d is not None:
        return d
    if np_dtype.kind in "iu":
        return int64
    if np_dtype.kind == "f" and np_dtype.itemsize > 8:
        return float64
    if np_dtype.kind == "b":
        return bool_
    raise TypeError(
        f"can't convert np.ndarray of type numpy.{np_dtype}. The only supported types are: "
        "float64, float32, float16, int64, int32, int16, int8, uint8, and bool."
    )


def promote(a: DType, b: DType) -> DType:
    """torch.promote_types: the higher category wins; within one, the wider type, except that
    uint8 with a signed int needs a signed type holding both (uint8 + int8 is int16)."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == INT and a.is_signed != b.is_signed:
        u, s = (a, b) if b.is_signed else (b, a)
        return s if s.itemsize > u.itemsize else int16
    return a if a.itemsize >= b.itemsize else b


def scalar_dtype(value: object) -> DType:
    """The dtype a Python scalar would get as a tensor (float -> the default float)."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return default_float
    raise TypeError(f"expected a Tensor or a number, got {type(value).__name__}")


def _combine(higher: DType | None, lower: DType | None) -> DType | None:
    # c10's combine_categories: a lower-priority operand only matters if it is a higher category.
    if higher is None:
        return lower
    if lower is None or higher.category == FLOAT:
        return higher
    if higher is bool_ or lower.category == FLOAT:
        return promote(higher, lower)
    return higher


def result_type(*operands: object) -> DType:
    """torch.result_type over tensors and Python scalars.

    Dimensioned tensors outrank zero-dim tensors, which outrank Python scalars, unless the
    lower-ranked operand is of a higher category (bool < int < float): so ``float32 + 1.5``
    stays float32, ``int64 * 2.5`` is float32, and ``float32 + float64-tensor`` is float64.
    """
    dim = zero = wrapped = None
    for x in operands:
        dt = getattr(x, "dtype", None)
        if dt is None:
            s = scalar_dtype(x)
            wrapped = s if wrapped is None else promote(wrapped, s)
            continue
        if not isinstance(dt, DType):  # a NumPy array or scalar in a tensor's place
            dt = from_numpy(dt)
        if x.ndim:
            dim = dt if dim is None else promote(dim, dt)
        else:
            zero = dt if zero is None else promote(zero, dt)
    return _combine(dim, _combine(zero, wrapped))


def promote_types(type1: object, type2: object) -> DType:
    """torch.promote_types: the smallest dtype both convert to without losing category."""
    return promote(as_dtype(type1), as_dtype(type2))
