"""Sample arguments declared with each op, from which the gradient checks are generated."""

from __future__ import annotations

from typing import Any

import numpy as np


class S:
    """A float64 tensor argument of this shape that requires grad (values in [low, high])."""

    __slots__ = ("shape", "low", "high", "grad")

    def __init__(self, *shape: int, low: float = -1.0, high: float = 1.0, grad: bool = True):
        self.shape, self.low, self.high, self.grad = shape, low, high, grad

    def make(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, self.shape)

    def __repr__(self) -> str:
        return f"S{self.shape}"


class C:
    """A constant (non-differentiable) tensor argument: indices, masks, targets."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = np.asarray(value)

    def __repr__(self) -> str:
        return f"C({self.value.tolist()})"


class Ex:
    """One example call: positional and keyword arguments, with S/C placeholders."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __repr__(self) -> str:
        items = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"({', '.join(items)})"
