"""``nn.Parameter``: a tensor that a module registers, requiring grad by default.

A parameter is the session's own tensor kind, marked (``gradd.engine.parameter_marks``):
``isinstance(p, nn.Parameter)`` holds and its repr starts ``Parameter containing:``.
"""

from __future__ import annotations

from typing import Any

from gradd.engine.parameter_marks import is_parameter, mark_parameter


def is_tensor(obj: Any) -> bool:
    """A gradd tensor of any session."""
    import gradd

    return isinstance(obj, gradd.Tensor)


_LEGACY_TENSOR_TYPES = {
    "float16": "HalfTensor",
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "uint8": "ByteTensor",
    "int8": "CharTensor",
    "int16": "ShortTensor",
    "int32": "IntTensor",
    "int64": "LongTensor",
    "bool": "BoolTensor",
}


def typename(obj: Any) -> str:
    """What PyTorch's messages call a value's type (``torch.typename``: torch.FloatTensor...)."""
    if is_tensor(obj):
        cuda = ".cuda" if obj.device.type == "cuda" else ""
        return f"torch{cuda}.{_LEGACY_TENSOR_TYPES[obj.dtype.name]}"
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", None) else f"{module}.{cls.__qualname__}"


class _ParameterType(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return is_parameter(obj)


class Parameter(metaclass=_ParameterType):
    """``Parameter(data, requires_grad=True)``: ``data``'s values (shared, detached from its
    graph) as a leaf tensor that modules register as a parameter."""

    def __new__(cls, data: Any = None, requires_grad: bool = True) -> Any:  # type: ignore[misc]
        if data is None:
            import gradd.torch

            data = gradd.torch.session().empty(0)
        if not is_tensor(data):
            raise TypeError(
                f"Parameter() takes a tensor, not {type(data).__name__} (make one with the "
                "session: s.tensor(...))"
            )
        p = data.detach()
        if requires_grad:
            p.requires_grad_(True)
        return mark_parameter(p)
