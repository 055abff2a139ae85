"""Activation modules: each calls its session's ``nn.functional`` op, with torch's repr."""

from __future__ import annotations

from typing import Any

from .module import Module


def _inplace(inplace: bool) -> str:
    return ", inplace=True" if inplace else ""


class _Pointwise(Module):
    """An activation without parameters: ``forward`` is ``F.<fn>(input, **options)``."""

    fn: str = ""

    def _options(self) -> dict[str, Any]:
        return {}

    def forward(self, input: Any) -> Any:  # noqa: A002
        return getattr(self._F, self.fn)(input, **self._options())


class _InplaceOnly(_Pointwise):
    """An activation whose only option is ``inplace`` (torch's ``SiLU(inplace=False)``...)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def _options(self) -> dict[str, Any]:
        return {"inplace": True} if self.inplace else {}

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceOnly):
    fn = "relu"

    def forward(self, input: Any) -> Any:  # noqa: A002
        if self.inplace:  # F.relu has no in-place form: threshold at 0 is relu's values
            return self._F.threshold(input, 0.0, 0.0, inplace=True)
        return self._F.relu(input)


class SiLU(_InplaceOnly):
    fn = "silu"


class Mish(_InplaceOnly):
    fn = "mish"


class SELU(_InplaceOnly):
    fn = "selu"


class Hardsigmoid(_InplaceOnly):
    fn = "hardsigmoid"


class Hardswish(_InplaceOnly):
    fn = "hardswish"


class Tanh(_Pointwise):
    fn = "tanh"


class Sigmoid(_Pointwise):
    fn = "sigmoid"


class LogSigmoid(_Pointwise):
    fn = "logsigmoid"


class GELU(_Pointwise):
    fn = "gelu"

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def _options(self) -> dict[str, Any]:
        return {"approximate": self.approximate}

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(_Pointwise):
    fn = "leaky_relu"

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def _options(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope, "inplace": self.inplace}

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace(self.inplace)}"


class ELU(_Pointwise):
    fn = "elu"

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def _options(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "inplace": self.inplace}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace(self.inplace)}"


class CELU(ELU):
    fn = "celu"


class Hardtanh(_Pointwise):
    fn = "hardtanh"

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace
        if self.max_val <= self.min_val:
            raise ValueError(f"max_val {max_val} must be greater than min_val {min_val}")

    def _options(self) -> dict[str, Any]:
        return {"min_val": self.min_val, "max_val": self.max_val, "inplace": self.inplace}

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace(self.inplace)}"


class ReLU6(Hardtanh):
    fn = "relu6"

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def _options(self) -> dict[str, Any]:
        return {"inplace": self.inplace}

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Softplus(_Pointwise):
    fn = "softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def _options(self) -> dict[str, Any]:
        return {"beta": self.beta, "threshold": self.threshold}

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Threshold(_Pointwise):
    fn = "threshold"

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input: Any) -> Any:  # noqa: A002
        return self._F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace(self.inplace)}"


def _softmax_dim(ndim: int) -> int:
    """PyTorch's legacy choice when ``dim`` is not given (with its warning)."""
    import warnings

    warnings.warn(
        "Implicit dimension choice for softmax has been deprecated. Change the call to include "
        "dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(_Pointwise):
    fn = "softmax"

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> Any:  # noqa: A002
        dim = _softmax_dim(input.dim()) if self.dim is None else self.dim
        return getattr(self._F, self.fn)(input, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    fn = "log_softmax"


CLASSES = (
    ReLU, SiLU, Mish, SELU, Hardsigmoid, Hardswish, Tanh, Sigmoid, LogSigmoid, GELU, LeakyReLU,
    ELU, CELU, Hardtanh, ReLU6, Softplus, Threshold, Softmax, LogSoftmax,
)  # fmt: skip
