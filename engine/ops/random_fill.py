"""In-place random fills, ``Tensor.uniform_`` and ``Tensor.normal_``: what ``nn.init`` draws.

They consume the session's stream exactly as torch's CPU kernels do (``uniform_kernel`` and
``normal_kernel``: one draw per element, in order), so a layer initialised after
``manual_seed(0)`` holds PyTorch's numbers bit for bit. A GPU fills from its own stream.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import op
from ..random_state import DRAWING_OPS, current_generator


def _floating(self: Any, kernel: str) -> None:
    d = dt.as_dtype(self.dtype)
    if not d.is_floating_point:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{d.torch_name}'")


def _number(x: float) -> str:
    """A double as c10 prints it in torch's messages (1, 0.5, -2.5)."""
    return f"{x:g}"


# ScalarType names of the float types, as uniform_'s range message prints them
_SCALAR_TYPE = {"float16": "Half", "float32": "Float", "float64": "Double"}


def _uniform_norm(
    self: arg.Tensor, from_: arg.Number = 0.0, to: arg.Number = 1.0, *, generator: arg.NONE = None
) -> dict:
    _floating(self, "check_uniform_bounds")
    d = dt.as_dtype(self.dtype)
    info = np.finfo(d.np)
    lowest, highest = float(info.min), float(info.max)
    for label, x in (("from", from_), ("to", to)):
        if not lowest <= x <= highest:  # NaN and infinities too
            raise RuntimeError(f"{label} is out of bounds for {d.c_name}")
    if not from_ <= to:
        raise RuntimeError(
            f"uniform_ expects to return a [from, to) range, but found from={_number(from_)} "
            f"> to={_number(to)}"
        )
    if not to - from_ <= highest:
        raise RuntimeError(
            f"uniform_ expects to-from <= std::numeric_limits<{_SCALAR_TYPE[d.name]}>::max(), "
            f"but found to={_number(to)} and from={_number(from_)} which result in to-from to "
            "exceed the limit"
        )
    return {"from_": float(from_), "to": float(to)}


def _zero_grad(ctx: Any, g: Any) -> tuple:
    return (g * 0,)


@op(
    "uniform_",
    grad_fn="UniformBackward0",
    shape=shapes.same,
    dtype="same",
    inplace=True,
    function=False,
    normalize=_uniform_norm,
    examples=(Ex(S(3, 4)), Ex(S(20), -0.5, 0.5)),
)
def uniform_(xp: Any, self: Any, from_: float = 0.0, to: float = 1.0) -> Any:
    """Fill with uniform samples from [from, to) (the session's stream, as torch's kernel)."""
    gen = current_generator()
    if xp is np:
        return gen.uniform(self.shape, self.dtype, from_, to)
    u = gen.device_stream(xp).random_sample(self.shape, dtype=self.dtype)
    return (u * (to - from_) + from_).astype(self.dtype)


def _normal_norm(
    self: arg.Tensor, mean: arg.Number = 0.0, std: arg.Number = 1.0, *, generator: arg.NONE = None
) -> dict:
    _floating(self, "normal_kernel_cpu")
    if not std >= 0.0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {_number(std)}")
    return {"mean": float(mean), "std": float(std)}


@op(
    "normal_",
    grad_fn="NormalBackward0",
    shape=shapes.same,
    dtype="same",
    inplace=True,
    function=False,
    normalize=_normal_norm,
    examples=(Ex(S(3, 4)), Ex(S(20), 1.0, 0.5)),
)
def normal_(xp: Any, self: Any, mean: float = 0.0, std: float = 1.0) -> Any:
    """Fill with normal samples N(mean, std^2) (the session's stream, as torch's kernel)."""
    gen = current_generator()
    if xp is np:
        if math.isfinite(mean) and math.isfinite(std):
            return gen.normal(self.shape, self.dtype, mean, std)
        # the same draws; infinities scale outside the fused multiply-add's emulation
        z = gen.normal(self.shape, self.dtype)
        with np.errstate(invalid="ignore"):
            return (z * std + mean).astype(self.dtype)
    z = gen.device_stream(xp).standard_normal(self.shape, dtype=self.dtype)
    return (z * std + mean).astype(self.dtype)


uniform_.backward = _zero_grad
normal_.backward = _zero_grad
DRAWING_OPS.update({uniform_.name, normal_.name})
