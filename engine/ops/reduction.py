"""Reductions: sum, mean, max/min, and sum_to_size (the adjoint of broadcasting)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from .. import arg_kinds as arg
from .. import dtypes as dt
from .. import shapes
from ..op_examples import Ex, S
from ..op_table import composite, op


def _dim_norm(self: arg.Tensor, dim: arg.Dims = None, keepdim: arg.Bool = False) -> dict:
    if type(dim) in (tuple, list) and not dim:
        dim = tuple(range(self.ndim))  # as PyTorch: an empty dim list reduces over every dim
    return {"dim": shapes.dims_arg(dim, self.ndim), "keepdim": bool(keepdim)}


def _reduce_shape(a: Any, dim: Any = None, keepdim: bool = False) -> tuple:
    return shapes.reduce(a, dim, keepdim)


def _sum_dtype(self: Any, **_: Any) -> dt.DType:
    return self.dtype if self.dtype.is_floating_point else dt.int64


def _sum_name(a: Any, dim: Any = None, keepdim: bool = False) -> str:
    return "SumBackward0" if dim is None else "SumBackward1"


_sum_name.common = "SumBackward0"  # type: ignore[attr-defined]


def _grad_to_input(g: Any, shape: tuple, dim: Any, keepdim: bool) -> Any:
    """Broadcast a reduction's gradient back over the reduced dims."""
    if dim is not None and not keepdim:
        for d in dim:
            g = g.unsqueeze(d)
    return g.expand(*shape)


@op(
    grad_fn=_sum_name,
    dtype=_sum_dtype,
    shape=_reduce_shape,
    normalize=_dim_norm,
    examples=(
        Ex(S(2, 3)),
        Ex(S(2, 3, 4), dim=1),
        Ex(S(2, 3, 4), dim=(0, 2), keepdim=True),
        Ex(S(3, 2), dim=-1),
        Ex(S(), 0),
        Ex(S(2, 3), dim=()),
    ),
)
def sum(xp: Any, self: Any, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """Sum over ``dim`` (int, tuple or None for all)."""
    return self.sum(axis=dim, keepdims=keepdim)


@sum.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (_grad_to_input(g, ctx.meta[0][0], ctx.attrs["dim"], ctx.attrs["keepdim"]),)


def _mean_dtype(self: Any, **_: Any) -> dt.DType:
    d = dt.as_dtype(self.dtype)  # a Tensor's DType, or the forward's array's NumPy dtype
    if not d.is_floating_point:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {_TORCH[d.name]}"
        )
    return d


_TORCH = {"int64": "Long", "bool": "Bool", "float32": "Float", "float64": "Double"}


def _mean_name(a: Any, dim: Any = None, keepdim: bool = False) -> str:
    return "MeanBackward0" if dim is None else "MeanBackward1"


_mean_name.common = "MeanBackward0"  # type: ignore[attr-defined]


@op(
    grad_fn=_mean_name,
    dtype=_mean_dtype,
    shape=_reduce_shape,
    normalize=_dim_norm,
    examples=(
        Ex(S(2, 3)),
        Ex(S(2, 3, 4), dim=1),
        Ex(S(2, 3), dim=(0, 1), keepdim=True),
        Ex(S(), -1, keepdim=True),
    ),
)
def mean(xp: Any, self: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """Mean over ``dim`` (int, tuple or None for all); floating point only."""
    if self.dtype.kind != "f":
        _mean_dtype(self)
    n = 1
    for i, k in enumerate(self.shape):
        if dim is None or i in dim:
            n *= k
    # sum / count in the input dtype: PyTorch's values, without ndarray.mean's Python overhead
    return self.sum(axis=dim, keepdims=keepdim) / n


@mean.derivative
def _(ctx: Any, g: Any) -> tuple:
    shape = ctx.meta[0][0]
    dim = ctx.attrs["dim"]
    n = 1
    for i, s in enumerate(shape):
        if dim is None or i in dim:
            n *= s
    return (_grad_to_input(g / n, shape, dim, ctx.attrs["keepdim"]),)


def _sum_to_norm(self: arg.Tensor, *size: arg.Sizes) -> dict:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return {"size": tuple(int(s) for s in size)}


def _reduced_dims(shape: tuple, size: tuple) -> tuple[int, ...]:
    lead = len(shape) - len(size)
    if lead < 0:
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(shape)}}}.")
    dims = list(range(lead))
    for i, s in enumerate(size):
        if s == 1 and shape[lead + i] != 1:
            dims.append(lead + i)
        elif s != shape[lead + i]:
            raise RuntimeError(
                f"size {{{list(size)}}} is not expandable to size {{{list(shape)}}}."
            )
    return tuple(dims)


@op(
    grad_fn="SumBackward1",
    shape=lambda a, size: (_reduced_dims(a, size), size)[1],
    normalize=_sum_to_norm,
    examples=(Ex(S(2, 3, 4), 3, 1), Ex(S(2, 3), (1, 3))),
)
def sum_to_size(xp: Any, self: Any, size: Any) -> Any:
    """Sum broadcast dimensions away so the result has shape ``size``."""
    if self.shape == size:
        return self
    dims = _reduced_dims(self.shape, size)
    return self.sum(axis=dims).reshape(size)


@sum_to_size.derivative
def _(ctx: Any, g: Any) -> tuple:
    return (g.expand(*ctx.meta[0][0]),)


def _extreme(kind: str) -> tuple:
    reduce_name = "amax" if kind == "max" else "amin"
    arg_name = "argmax" if kind == "max" else "argmin"
    title = kind.capitalize()

    @op(
        f"{kind}_all",
        internal=True,
        grad_fn=f"{title}Backward1",
        shape=lambda a: (),
        saves=(0,),
        saves_output=True,
        method=False,
        function=False,
        examples=(Ex(S(2, 3)),),
    )
    def extreme_all(xp: Any, self: Any) -> Any:
        if self.size == 0:
            raise RuntimeError(
                f"{kind}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument."
            )
        return getattr(xp, reduce_name)(self)

    @extreme_all.derivative
    def _(ctx: Any, g: Any) -> tuple:
        (a,) = ctx.saved
        mask = a.eq(ctx.output.detach())
        return (g * mask / mask.sum(),)  # ties share the gradient evenly, as PyTorch

    @op(
        f"{kind}_dim",
        internal=True,
        grad_fn=f"{title}Backward0",
        shape=_reduce_shape,
        normalize=_one_dim,
        saves=(0,),
        method=False,
        function=False,
        examples=(Ex(S(3, 4), 1), Ex(S(3, 4), 0, True), Ex(S(), 0)),
    )
    def extreme_dim(xp: Any, self: Any, dim: Any, keepdim: bool = False) -> Any:
        return getattr(xp, reduce_name)(self, axis=dim, keepdims=keepdim)

    @extreme_dim.derivative
    def _(ctx: Any, g: Any) -> tuple:
        (a,) = ctx.saved
        if not ctx.attrs["dim"]:  # a 0-d input: its one element is the extreme
            return (g,)
        (d,) = ctx.attrs["dim"]
        with a._dev.scope():
            idx = getattr(a._dev.xp, arg_name)(a._data, axis=d, keepdims=True)
        return (_scatter_along(g, idx, d, ctx.meta[0][0], ctx.attrs["keepdim"]),)

    @op(
        arg_name,
        grad_fn=None,
        dtype=lambda self, **k: dt.int64,
        shape=_reduce_shape,
        normalize=_arg_norm,
        examples=(),
    )
    def arg_extreme(xp: Any, self: Any, dim: Any = None, keepdim: bool = False) -> Any:
        if dim is None:
            return xp.asarray(getattr(xp, arg_name)(self))
        if not dim:  # a 0-d input
            return xp.zeros((), dtype=xp.int64)
        return getattr(xp, arg_name)(self, axis=dim[0], keepdims=keepdim)

    arg_extreme.doc = f"Index of the {kind}imum (of the flattened tensor when dim is None)."

    def public(self: Any, dim: Any = None, keepdim: bool = False) -> Any:
        # Data-free on purpose: the SDK runs composites on remote tensors for their metadata.
        if dim is None:
            return extreme_all.call(self)
        return MinMax(extreme_dim.call(self, dim, keepdim), arg_extreme.call(self, dim, keepdim))

    return extreme_all, extreme_dim, public


MinMax = namedtuple("MinMax", ["values", "indices"])


def _arg_norm(
    self: arg.Tensor, dim: arg.Int | arg.IntTuple | None = None, keepdim: arg.Bool = False
) -> dict:
    # One dim; a 1-tuple is the canonical form the SDK sends (normalising is idempotent).
    if type(dim) in (tuple, list) and len(dim) != (1 if self.ndim else 0):
        # ``()`` is the canonical dim of a 0-d tensor (``shapes.dims_arg``)
        raise TypeError(f"argmax(): argument 'dim' must be int, not {type(dim).__name__}")
    return _dim_norm(self, dim, keepdim)


def _one_dim(self: Any, dim: Any, keepdim: bool = False) -> dict:
    return {"dim": shapes.dims_arg(dim, self.ndim), "keepdim": bool(keepdim)}


def _scatter_along(g: Any, indices: Any, dim: int, shape: tuple, keepdim: bool) -> Any:
    """Gradient of picking ``indices`` along ``dim``: g at those positions, zero elsewhere."""
    from ..tensor import wrap

    xp = g._dev.xp
    if not keepdim:
        g = g.unsqueeze(dim)
    with g._dev.scope():
        pos = xp.arange(shape[dim]).reshape((-1,) + (1,) * (len(shape) - dim - 1))
        mask = wrap(pos == indices, g._dev)
    return g * mask


_max_all_op, _max_dim_op, _max_public = _extreme("max")
_min_all_op, _min_dim_op, _min_public = _extreme("min")


@composite(
    "max",
    method=True,
    examples=(Ex(S(2, 3)), Ex(S(3, 4), 1), Ex(S(3, 4), dim=0, keepdim=True), Ex(S(), -1)),
)
def max(  # noqa: A001
    self: arg.Tensor, dim: arg.Int | None = None, keepdim: arg.Bool = False
) -> Any:
    """The maximum of all elements, or (values, indices) along ``dim``."""
    return _max_public(self, dim, keepdim)


@composite(
    "min",
    method=True,
    examples=(Ex(S(2, 3)), Ex(S(3, 4), 1), Ex(S(3, 4), dim=0, keepdim=True), Ex(S(), 0, True)),
)
def min(  # noqa: A001
    self: arg.Tensor, dim: arg.Int | None = None, keepdim: arg.Bool = False
) -> Any:
    """The minimum of all elements, or (values, indices) along ``dim``."""
    return _min_public(self, dim, keepdim)
