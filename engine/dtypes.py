"""The four dtypes gradd supports and PyTorch's type-promotion rules over them."""

from __future__ import annotations

import numpy as np


class DType:
    """A tensor element type; prints like PyTorch's (``gradd.float32``)."""

    __slots__ = ("name", "np", "itemsize", "is_floating_point", "category")

    def __init__(self, name: str, np_dtype: type, category: int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.is_floating_point = category == FLOAT
        self.category = category

    def __repr__(self) -> str:
        return f"gradd.{self.name}"

    def __reduce__(self) -> str:  # singletons survive copy/pickle as themselves
        return self.name


BOOL, INT, FLOAT = 0, 1, 2

float32 = DType("float32", np.float32, FLOAT)
float64 = DType("float64", np.float64, FLOAT)
int64 = DType("int64", np.int64, INT)
bool_ = DType("bool", np.bool_, BOOL)

# PyTorch's aliases: torch.float is float32, torch.double float64, torch.long int64.
ALIASES: dict[str, DType] = {
    "float32": float32,
    "float": float32,
    "float64": float64,
    "double": float64,
    "int64": int64,
    "long": int64,
    "bool": bool_,
}
_BY_NP: dict[np.dtype, DType] = {d.np: d for d in (float32, float64, int64, bool_)}
default_float = float32


def dtype_from_name(name: str) -> DType:
    """Look a dtype up by name or PyTorch alias ("float32", "float", "long", ...)."""
    try:
        return ALIASES[name.removeprefix("torch.").removeprefix("gradd.")]
    except KeyError:
        raise TypeError(f"unsupported dtype {name!r}; gradd supports {sorted(ALIASES)}") from None


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
    """Map a NumPy dtype to gradd's; narrower ints widen to int64, float16 to float32."""
    d = _BY_NP.get(np_dtype)
    if d is not None:
        return d
    if np_dtype.kind in "iu":
        return int64
    if np_dtype.kind == "f":
        return float32 if np_dtype.itemsize < 8 else float64
    if np_dtype.kind == "b":
        return bool_
    raise TypeError(
        f"can't convert np.ndarray of type {np_dtype}. The only supported types are: "
        "float64, float32, int64 (and narrower ints), and bool."
    )


def promote(a: DType, b: DType) -> DType:
    """promote_types for two dtypes: higher category wins, wider float wins."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
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
