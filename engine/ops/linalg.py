"""Products and matrix reductions: einsum, outer, bmm, baddbmm, dot, mv, trace, diag."""

from __future__ import annotations

from typing import Any

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import _TORCH_NAME, composite, op


def _torch_name(x: Any) -> str:
    """PyTorch's name of a tensor's or an array's dtype ("Double")."""
    d = x.dtype
    return _TORCH_NAME[d.name if isinstance(d, dt.DType) else str(d)]


def _same_dtype(a: Any, b: Any) -> dt.DType:
    """The dtype rule of the products that do not promote: both operands share one dtype."""
    if _torch_name(a) != _torch_name(b):
        raise RuntimeError(f"expected scalar type {_torch_name(a)} but found {_torch_name(b)}")
    return a.dtype


# --- dot, mv -------------------------------------------------------------------------------


def _dot_shape(a: tuple, b: tuple) -> tuple:
    if len(a) != 1 or len(b) != 1:
        raise RuntimeError(f"1D tensors expected, but got {len(a)}D and {len(b)}D tensors")
    if a[0] != b[0]:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{a[0]}] and src [{b[0]}] to have the "
            f"same number of elements, but got {a[0]} and {b[0]} elements respectively"
        )
    return ()


def _dot_dtype(self: Any, tensor: Any) -> dt.DType:
    if _torch_name(self) != _torch_name(tensor):
        raise RuntimeError(
            "dot : expected both vectors to have same dtype, but found "
            f"{_torch_name(self)} and {_torch_name(tensor)}"
        )
    return self.dtype


@op(
    grad_fn="DotBackward0",
    arity=2,
    dtype=_dot_dtype,
    saves=(0, 1),
    shape=_dot_shape,
    examples=(Ex(S(3), S(3)), Ex(S(1), S(1))),
)
def dot(xp: Any, self: arg.Tensor, tensor: arg.Tensor) -> Any:
    """The inner product of two vectors of one dtype."""
    _dot_shape(self.shape, tensor.shape)
    _dot_dtype(self, tensor)
    return xp.asarray(xp.dot(self, tensor))


@dot.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    return (g * b if ctx.needs(0) else None), (g * a if ctx.needs(1) else None)


def _mv_shape(a: tuple, v: tuple) -> tuple:
    if len(a) != 2 or len(v) != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {len(a)}, {len(v)}")
    if a[1] != v[0]:
        raise RuntimeError(f"size mismatch, got input ({a[0]}), mat ({a[0]}x{a[1]}), vec ({v[0]})")
    return (a[0],)


def _mv_dtype(self: Any, vec: Any) -> dt.DType:
    m, v = _torch_name(self), _torch_name(vec)
    if m != v:  # PyTorch's mv is addmv into a result of vec's dtype: it is named first
        raise RuntimeError(
            f"addmv input tensors must have the same dtype, but got {v}, {m}, and {v}"
        )
    return self.dtype


@op(
    grad_fn="MvBackward0",
    arity=2,
    dtype=lambda self, vec: _mv_dtype(self, vec),
    saves=(0, 1),
    shape=_mv_shape,
    examples=(Ex(S(2, 3), S(3)), Ex(S(1, 4), S(4))),
)
def mv(xp: Any, self: arg.Tensor, vec: arg.Tensor) -> Any:
    """Matrix times vector."""
    _mv_shape(self.shape, vec.shape)
    _mv_dtype(self, vec)
    return xp.matmul(self, vec)


@mv.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, v = ctx.saved
    ga = outer.call(g, v) if ctx.needs(0) else None
    gv = a.t().mv(g) if ctx.needs(1) else None
    return ga, gv


# --- outer ---------------------------------------------------------------------------------


def _outer(self: Any, vec2: Any) -> Any:
    if self.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument self, but got {self.ndim}-D")
    if vec2.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    # As PyTorch: a column view of self times vec2 (ViewBackward0 -> MulBackward0).
    return self.reshape(self.shape[0], 1) * vec2


@composite("outer", method=True, examples=(Ex(S(3), S(4)), Ex(S(1), S(2))))
def outer(self: arg.Tensor, vec2: arg.Tensor) -> Any:
    """The outer product of two vectors: out[i][j] = self[i] * vec2[j]."""
    return _outer(self, vec2)


@composite("ger", method=True, examples=(Ex(S(2), S(3)),))
def ger(self: arg.Tensor, vec2: arg.Tensor) -> Any:
    """outer's older name."""
    return _outer(self, vec2)


# --- bmm, baddbmm --------------------------------------------------------------------------


def _bmm_shape(a: tuple, b: tuple) -> tuple:
    if len(a) != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if len(b) != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if b[0] != a[0] or b[1] != a[2]:
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{a[0]}, {a[2]}] "
            f"but got: [{b[0]}, {b[1]}]."
        )
    return (a[0], a[1], b[2])


@op(
    grad_fn="BmmBackward0",
    arity=2,
    dtype=lambda self, mat2: _same_dtype(self, mat2),
    saves=(0, 1),
    shape=_bmm_shape,
    examples=(Ex(S(2, 3, 4), S(2, 4, 5)), Ex(S(1, 2, 1), S(1, 1, 3))),
)
def bmm(xp: Any, self: arg.Tensor, mat2: arg.Tensor) -> Any:
    """Batched matrix product of two 3-D tensors with one batch size."""
    _bmm_shape(self.shape, mat2.shape)
    _same_dtype(self, mat2)
    return xp.matmul(self, mat2)


@bmm.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    ga = g.bmm(b.transpose(1, 2)) if ctx.needs(0) else None
    gb = a.transpose(1, 2).bmm(g) if ctx.needs(1) else None
    return ga, gb


def _baddbmm_shape(s: tuple, a: tuple, b: tuple, beta: Any = 1, alpha: Any = 1) -> tuple:
    out = _bmm_shape(a, b)
    shapes.expand(s, out)  # self broadcasts to the product's shape, with expand's error
    return out


def _baddbmm_dtype(self: Any, batch1: Any, batch2: Any, beta: Any = 1, alpha: Any = 1) -> Any:
    names = [_torch_name(x) for x in (self, batch1, batch2)]
    if len(set(names)) > 1:
        raise RuntimeError(
            f"Input dtypes must be the same, got: input {names[0].lower()}, batch1: "
            f"{names[1].lower()}, batch2: {names[2].lower()}"
        )
    return self.dtype


@op(
    grad_fn="BaddbmmBackward0",
    arity=3,
    dtype=_baddbmm_dtype,
    saves=(1, 2),
    shape=_baddbmm_shape,
    examples=(
        Ex(S(2, 3, 5), S(2, 3, 4), S(2, 4, 5)),
        Ex(S(5), S(2, 3, 4), S(2, 4, 5), beta=0.5, alpha=2),
        Ex(S(3, 1), S(2, 3, 2), S(2, 2, 4), beta=0, alpha=-1.5),
    ),
)
def baddbmm(
    xp: Any,
    self: arg.Tensor,
    batch1: arg.Tensor,
    batch2: arg.Tensor,
    beta: arg.Number = 1,
    alpha: arg.Number = 1,
) -> Any:
    """beta * self + alpha * (batch1 @ batch2), batched (self broadcasts)."""
    _baddbmm_shape(self.shape, batch1.shape, batch2.shape)
    _baddbmm_dtype(self, batch1, batch2)
    prod = xp.matmul(batch1, batch2)
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:  # as PyTorch: self is ignored (its NaNs and infinities too)
        return prod
    return prod + self if beta == 1 else prod + beta * self


@baddbmm.derivative
def _(ctx: Any, g: Any) -> tuple:
    a, b = ctx.saved
    beta, alpha = ctx.attrs["beta"], ctx.attrs["alpha"]
    gs = None
    if ctx.needs(0):
        gs = g if beta == 1 else g * beta
    ga = g.bmm(b.transpose(1, 2)) if ctx.needs(1) else None
    gb = a.transpose(1, 2).bmm(g) if ctx.needs(2) else None
    if alpha != 1:
        ga = ga * alpha if ga is not None else None
        gb = gb * alpha if gb is not None else None
    return gs, ga, gb
