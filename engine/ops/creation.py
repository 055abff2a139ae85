"""Creation ops that take a tensor: ``zeros_like`` and its kin, the random ``*_like`` ops,
``bernoulli``, ``multinomial``, ``normal`` with tensor mean/std and ``Tensor.new_*``.

They are ops of the table (not factories) so that every side derives them from here: Tensor
methods, session functions, the SDK's metadata rules and the server's allow-list. None is
differentiable; ``requires_grad=`` (where PyTorch has it) makes the result a leaf that
requires grad, by a wrapper around the op (the wire carries ``requires_grad_`` after it).
Random ones draw from the current generator (a session's, inside its commands) with PyTorch's
CPU numbers; on a GPU from the device's stream of that generator.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np

from .. import arg_kinds as arg
from .. import dtypes as dt
from ..errors import NOT_FLOAT_GRAD
from ..op_examples import C, Ex, S
from ..op_table import OpDef, op
from ..random_state import DRAWING_OPS, current_generator
from ..shapes import elementwise

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _with_requires_grad(d: OpDef) -> OpDef:
    """Give the op's public caller PyTorch's keyword-only ``requires_grad=False``."""
    inner = d.call

    def call(*args: Any, requires_grad: bool = False, **kwargs: Any) -> Any:
        if requires_grad:
            out_dtype = _peek_dtype(d, args, kwargs)
            if out_dtype is not None and not out_dtype.is_floating_point:
                raise RuntimeError(NOT_FLOAT_GRAD)
        out = inner(*args, **kwargs)
        return out.requires_grad_() if requires_grad else out

    params = [
        *d.params,
        inspect.Parameter(
            "requires_grad", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=arg.Bool
        ),
    ]
    call.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    call.__name__ = call.__qualname__ = d.name
    call.__doc__ = d.doc
    call._gradd_checked = True  # type: ignore[attr-defined]  # inner checks the arguments
    d.call = call
    return d


def _peek_dtype(d: OpDef, args: tuple, kwargs: dict) -> dt.DType | None:
    given = kwargs.get("dtype")
    if given is not None:
        return dt.as_dtype(given)
    first = args[0] if args else kwargs.get("input", kwargs.get("self"))
    return getattr(first, "dtype", None)


def _like_dtype(input: Any, dtype: Any = None, **_: Any) -> dt.DType:  # noqa: A002
    d = getattr(input, "dtype", None)
    d = dt.as_dtype(d) if dtype is None else dtype
    return d


def _like_norm(input: arg.Tensor, dtype: arg.DTypeArg | None = None) -> dict:  # noqa: A002
    return {"dtype": None if dtype is None else dt.as_dtype(dtype)}


def _out_np(data: Any, dtype: dt.DType | None) -> np.dtype:
    return data.dtype if dtype is None else dtype.np


def _alloc(make: Any, shape: tuple, *args: Any) -> Any:
    """``make(shape, ...)``, with PyTorch's error when the memory is not there."""
    try:
        return make(shape, *args)
    except MemoryError:
        n = math.prod(shape) * np.dtype(args[-1]).itemsize
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory: "
            f"you tried to allocate {n} bytes."
        ) from None


def _same_shape(a: tuple, *_: Any, **__: Any) -> tuple:
    return a


@op(
    layout="pointwise",
    grad_fn=None,
    shape=_same_shape,
    dtype=_like_dtype,
    normalize=_like_norm,
    method=False,
    examples=(Ex(S(2, 3)), Ex(S(3), dtype=dt.int32)),
)
def zeros_like(xp: Any, input: Any, dtype: Any = None) -> Any:  # noqa: A002
    """Zeros with input's shape, dtype (unless ``dtype``) and device."""
    return xp.zeros(input.shape, _out_np(input, dtype))


@op(
    layout="pointwise",
    grad_fn=None,
    shape=_same_shape,
    dtype=_like_dtype,
    normalize=_like_norm,
    method=False,
    examples=(Ex(S(2, 3)), Ex(S(3), dtype=dt.int16)),
)
def ones_like(xp: Any, input: Any, dtype: Any = None) -> Any:  # noqa: A002
    """Ones with input's shape, dtype (unless ``dtype``) and device."""
    return xp.ones(input.shape, _out_np(input, dtype))


@op(
    layout="pointwise",
    grad_fn=None,
    shape=_same_shape,
    dtype=_like_dtype,
    normalize=_like_norm,
    method=False,
    examples=(Ex(S(2, 3)),),
)
def empty_like(xp: Any, input: Any, dtype: Any = None) -> Any:  # noqa: A002
    """An uninitialised tensor like input in PyTorch; here zero-filled."""
    return xp.zeros(input.shape, _out_np(input, dtype))


def _full_like_norm(
    input: arg.Tensor,  # noqa: A002
    fill_value: arg.Number | arg.Bool,
    dtype: arg.DTypeArg | None = None,
) -> dict:
    return {"fill_value": fill_value, "dtype": None if dtype is None else dt.as_dtype(dtype)}


@op(
    layout="pointwise",
    grad_fn=None,
    shape=_same_shape,
    dtype=_like_dtype,
    normalize=_full_like_norm,
    method=False,
    examples=(Ex(S(2, 3), 2.5), Ex(S(3), 7, dtype=dt.uint8)),
)
def full_like(xp: Any, input: Any, fill_value: Any, dtype: Any = None) -> Any:  # noqa: A002
    """``fill_value`` everywhere, with input's shape, dtype (unless ``dtype``) and device."""
    return xp.full(input.shape, fill_value, _out_np(input, dtype))


# --- random *_like ---------------------------------------------------------------------------


def _float_like_norm(kernel: str) -> Any:
    def norm(input: arg.Tensor, dtype: arg.DTypeArg | None = None) -> dict:  # noqa: A002
        d = dt.as_dtype(input.dtype) if dtype is None else dt.as_dtype(dtype)
        if not d.is_floating_point:
            raise NotImplementedError(f"\"{kernel}\" not implemented for '{d.torch_name}'")
        return {"dtype": None if dtype is None else d}

    return norm


def _draw(xp: Any, cpu: str, gpu: str, shape: tuple, np_dtype: np.dtype) -> Any:
    gen = current_generator()
    if xp is np:
        return getattr(gen, cpu)(shape, np_dtype)
    return getattr(gen.device_stream(xp), gpu)(shape, dtype=np_dtype)


@op(
    layout="pointwise",
    grad_fn=None,
    shape=_same_shape,
    dtype=_like_dtype,
    normalize=_float_like_norm("check_uniform_bounds"),
    method=False,
    examples=(Ex(S(2, 3)), Ex(S(20), dtype=dt.float32)),
)
def rand_like(xp: Any, input: Any, dtype: Any = None) -> Any:  # noqa: A002
    """Uniform samples in [0, 1) shaped like input (the session's stream, as torch.rand)."""
    return _draw(xp, "uniform", "random_sample", input.shape, _out_np(input, dtype))


@op(
    layout="pointwise",
    grad_fn=None,
    shape=_same_shape,
    dtype=_like_dtype,
    normalize=_float_like_norm("normal_kernel_cpu"),
    method=False,
    examples=(Ex(S(2, 3)), Ex(S(20), dtype=dt.float32)),
)
def randn_like(xp: Any, input: Any, dtype: Any = None) -> Any:  # noqa: A002
    """Standard normal samples shaped like input (as torch.randn)."""
    return _draw(xp, "normal", "standard_normal", input.shape, _out_np(input, dtype))


def _randint_like_norm(
    input: arg.Tensor,  # noqa: A002
    low: arg.Int,
    high: arg.Int | None = None,
    dtype: arg.DTypeArg | None = None,
) -> dict:
    from ..factories import _randint_check

    if high is None:
        low, high = 0, low
    d = dt.as_dtype(input.dtype) if dtype is None else dt.as_dtype(dtype)
    _randint_check(int(low), int(high), d)
    return {"low": int(low), "high": int(high), "dtype": None if dtype is None else d}


@op(
    layout="pointwise",
    grad_fn=None,
    shape=_same_shape,
    dtype=_like_dtype,
    normalize=_randint_like_norm,
    method=False,
    examples=(Ex(S(2, 3), 10), Ex(S(4), 3, 9, dtype=dt.int32)),
)
def randint_like(xp: Any, input: Any, low: int, high: int, dtype: Any = None) -> Any:  # noqa: A002
    """Random integers in [low, high) shaped like input, in its dtype unless ``dtype``."""
    gen = current_generator()
    out = _out_np(input, dtype)
    if xp is np:
        return gen.randint(low, high, input.shape).astype(out)
    return gen.device_stream(xp).randint(low, high, input.shape, dtype=np.int64).astype(out)


# --- bernoulli, normal with tensors, multinomial -------------------------------------------


def _bernoulli_norm(
    input: arg.Tensor,  # noqa: A002
    p: arg.Number | None = None,
    generator: arg.NONE = None,
) -> dict:
    if p is not None and not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    return {"p": None if p is None else float(p)}


@op(
    layout=None,
    grad_fn=None,
    shape=_same_shape,
    dtype="same",
    normalize=_bernoulli_norm,
    examples=(Ex(S(2, 2), 1.0), Ex(C([0.0, 1.0, 1.0, 0.0])), Ex(C([[1.0, 0.0]]), 0.0)),
)
def bernoulli(xp: Any, input: Any, p: float | None = None) -> Any:  # noqa: A002
    """0/1 samples: 1 with probability ``input`` (elementwise), or ``p`` when given."""
    gen = current_generator()
    if xp is not np:
        u = gen.device_stream(xp).random_sample(input.shape, dtype=_F64)
        return (u < (input if p is None else p)).astype(input.dtype)
    if p is not None:
        return gen.bernoulli(input.shape, p).astype(input.dtype)
    if not ((input >= 0) & (input <= 1)).all():  # on the CPU only: a GPU would have to sync
        raise RuntimeError(
            "Expected p_in >= 0 && p_in <= 1 to be true, but got false.  (Could this error "
            "message be improved?  If so, please report an enhancement request to PyTorch.)"
        )
    return gen.bernoulli_tensor(input).astype(input.dtype)


def _normal_shape(mean: Any, std: Any, **_: Any) -> tuple:
    if mean is None:
        return std
    if std is None:
        return mean
    return elementwise(mean, std)


def _normal_dtype(mean: Any, std: Any, **_: Any) -> dt.DType:
    tensors = [x for x in (mean, std) if hasattr(x, "dtype")]
    return dt.as_dtype(tensors[0].dtype)


def _normal_norm(
    mean: arg.TensorOrNumber, std: arg.TensorOrNumber = 1.0, generator: arg.NONE = None
) -> dict:
    if not hasattr(std, "dtype") and std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")
    for x in (mean, std):
        if hasattr(x, "dtype") and not dt.as_dtype(x.dtype).is_floating_point:
            name = dt.as_dtype(x.dtype).torch_name
            raise NotImplementedError(f"\"normal_kernel_cpu\" not implemented for '{name}'")
    return {}


@op(
    name="normal",
    grad_fn=None,
    shape=_normal_shape,
    dtype=_normal_dtype,
    arity=2,
    normalize=_normal_norm,
    method=False,
    examples=(Ex(S(20), 0.5), Ex(0.5, C([1.0, 2.0, 0.0])), Ex(S(2, 3), C([[1.0, 2.0, 0.5]]))),
)
def normal_tensor(xp: Any, mean: Any, std: Any = 1.0) -> Any:
    """torch.normal with a tensor mean and/or std: standard normals * std + mean."""
    t = mean if hasattr(mean, "dtype") else std
    shape = tuple(np.broadcast_shapes(np.shape(mean), np.shape(std)))
    if xp is np and hasattr(std, "dtype") and (std < 0).any():
        raise RuntimeError("normal expects all elements of std >= 0.0")
    gen = current_generator()
    if xp is not np:
        z = gen.device_stream(xp).standard_normal(shape, dtype=t.dtype)
        return (z * std + mean).astype(t.dtype)
    if hasattr(std, "dtype"):  # normal_(0, 1), then mul_(std) and add_(mean), in the dtype
        z = gen.normal(shape, t.dtype)
        return ((z * std).astype(t.dtype) + mean).astype(t.dtype)
    z = gen.normal(shape, t.dtype, 0.0, std)  # normal_(0, std), then add_(mean)
    return (z + mean).astype(t.dtype)


def _multinomial_shape(a: tuple, num_samples: int, replacement: bool = False) -> tuple:
    return (*a[:-1], num_samples)


def _multinomial_norm(
    input: arg.Tensor,  # noqa: A002
    num_samples: arg.Int,
    replacement: arg.Bool = False,
    generator: arg.NONE = None,
) -> dict:
    shape = tuple(input.shape)
    if len(shape) not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not dt.as_dtype(input.dtype).is_floating_point:
        raise RuntimeError(
            f"multinomial only supports floating-point dtypes for input, got: "
            f"{dt.as_dtype(input.dtype).torch_name}"
        )
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > shape[-1]:
        raise RuntimeError(
            "cannot sample n_sample > prob_dist.size(-1) samples without replacement"
        )
    return {"num_samples": int(num_samples), "replacement": bool(replacement)}


@op(
    grad_fn=None,
    shape=_multinomial_shape,
    dtype=lambda *a, **k: dt.int64,
    normalize=_multinomial_norm,
    examples=(
        Ex(S(2, 1, low=0.5), 3, True),  # one category: the same draws embedded and remote
        Ex(C([0.0, 1.0, 0.0]), 1),
        Ex(C([[0.0, 0.0, 2.0], [0.0, 3.0, 0.0]]), 3, True),
    ),
)
def multinomial(xp: Any, input: Any, num_samples: int, replacement: bool = False) -> Any:  # noqa: A002
    """Indices sampled from the rows of ``input`` (unnormalised probabilities)."""
    gen = current_generator()
    p = input.astype(_F64) if input.dtype != _F64 else input
    if xp is np and ((p < 0).any() or not np.isfinite(p).all()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if xp is np and (p.sum(-1) == 0).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement or num_samples == 1:
        # PyTorch's path: q ~ Exp(1) in input's dtype, then argmax / topk of input / q
        if xp is np:
            q = gen.exponential(input.shape, input.dtype)
        else:
            u = gen.device_stream(xp).random_sample(input.shape, dtype=_F64)
            q = (-xp.log1p(-u)).astype(input.dtype)
        r = input / q
        # ties (equal ratios) go to the lower index, as topk's; CuPy's sort is stable itself
        order = xp.argsort(-r, axis=-1, kind="stable") if xp is np else xp.argsort(-r, axis=-1)
        return order[..., :num_samples].astype(np.int64)
    rows = p.reshape(-1, p.shape[-1])
    cdf = xp.cumsum(rows, axis=-1)
    cdf = cdf / cdf[:, -1:]
    draws = (rows.shape[0], num_samples)
    if xp is np:
        u = _alloc(lambda s, d: gen.uniform_f64(math.prod(s)).reshape(s), draws, np.float64)
    else:
        u = _alloc(gen.device_stream(xp).random_sample, draws, np.float64)
    idx = xp.stack([xp.searchsorted(cdf[i], u[i], side="right") for i in range(rows.shape[0])])
    idx = xp.minimum(idx, p.shape[-1] - 1)
    return idx.reshape(*p.shape[:-1], num_samples).astype(np.int64)


# --- Tensor.new_* -----------------------------------------------------------------------------


def _new_dtype(self: Any, *_: Any, dtype: Any = None, **__: Any) -> dt.DType:
    return dt.as_dtype(self.dtype) if dtype is None else dtype


def _sizes(size: tuple) -> tuple[int, ...]:
    from ..factories import _size

    return _size(size)


def _new_norm(self: arg.Tensor, *size: arg.Sizes, dtype: arg.DTypeArg | None = None) -> dict:
    return {"size": _sizes(size), "dtype": None if dtype is None else dt.as_dtype(dtype)}


def _new_shape(a: tuple, size: tuple, dtype: Any = None, **_: Any) -> tuple:
    return size


@op(
    grad_fn=None,
    shape=_new_shape,
    dtype=_new_dtype,
    normalize=_new_norm,
    function=False,
    examples=(Ex(S(2), 3, 2), Ex(S(2), (4,), dtype=dt.int8)),
)
def new_zeros(xp: Any, self: Any, size: tuple, dtype: Any = None) -> Any:
    """Zeros of ``size``, in self's dtype (unless ``dtype``) and on its device."""
    return _alloc(xp.zeros, size, _out_np(self, dtype))


@op(
    grad_fn=None,
    shape=_new_shape,
    dtype=_new_dtype,
    normalize=_new_norm,
    function=False,
    examples=(Ex(S(2), 3, 2), Ex(S(2), (4,), dtype=dt.bool_)),
)
def new_ones(xp: Any, self: Any, size: tuple, dtype: Any = None) -> Any:
    """Ones of ``size``, in self's dtype (unless ``dtype``) and on its device."""
    return _alloc(xp.ones, size, _out_np(self, dtype))


@op(
    grad_fn=None,
    shape=_new_shape,
    dtype=_new_dtype,
    normalize=_new_norm,
    function=False,
    examples=(Ex(S(2), 3, 2),),
)
def new_empty(xp: Any, self: Any, size: tuple, dtype: Any = None) -> Any:
    """An uninitialised tensor of ``size`` in PyTorch; here zero-filled."""
    return _alloc(xp.zeros, size, _out_np(self, dtype))


def _new_full_norm(
    self: arg.Tensor,
    size: arg.Sizes,
    fill_value: arg.Number | arg.Bool,
    dtype: arg.DTypeArg | None = None,
) -> dict:
    return {
        "size": _sizes((size,)),
        "fill_value": fill_value,
        "dtype": None if dtype is None else dt.as_dtype(dtype),
    }


def _new_full_shape(a: tuple, size: tuple, fill_value: Any, dtype: Any = None) -> tuple:
    return size


@op(
    grad_fn=None,
    shape=_new_full_shape,
    dtype=_new_dtype,
    normalize=_new_full_norm,
    function=False,
    examples=(Ex(S(2), (2, 3), 1.5), Ex(S(2), (3,), 4, dtype=dt.int32)),
)
def new_full(xp: Any, self: Any, size: tuple, fill_value: Any, dtype: Any = None) -> Any:
    """``fill_value`` in a tensor of ``size``, self's dtype (unless ``dtype``) and device."""
    return _alloc(lambda s, v, d: xp.full(s, v, d), size, fill_value, _out_np(self, dtype))


def _nested(data: Any) -> Any:
    if hasattr(data, "tolist"):  # NumPy arrays and scalars, engine tensors
        return data.tolist()
    return data


def _new_tensor_norm(
    self: arg.Tensor, data: arg.Anything, dtype: arg.DTypeArg | None = None
) -> dict:
    data = _nested(data)
    if np.asarray(data).dtype.kind not in "biuf":
        raise TypeError(f"new_tensor(): could not infer dtype of {type(data).__name__}")
    return {"data": data, "dtype": None if dtype is None else dt.as_dtype(dtype)}


def _new_tensor_shape(a: tuple, data: Any, dtype: Any = None) -> tuple:
    return tuple(int(s) for s in np.shape(data))


@op(
    grad_fn=None,
    shape=_new_tensor_shape,
    dtype=_new_dtype,
    normalize=_new_tensor_norm,
    function=False,
    examples=(Ex(S(2), [[1, 2], [3, 4]]), Ex(S(2), 2.5, dtype=dt.int64)),
)
def new_tensor(xp: Any, self: Any, data: Any, dtype: Any = None) -> Any:
    """A new tensor of ``data``, in self's dtype (unless ``dtype``) and on its device."""
    return xp.asarray(np.asarray(data).astype(_out_np(self, dtype)))


for _d in (
    zeros_like,
    ones_like,
    empty_like,
    full_like,
    rand_like,
    randn_like,
    randint_like,
    new_zeros,
    new_ones,
    new_empty,
    new_full,
    new_tensor,
):
    _with_requires_grad(_d)
for _d in (rand_like, randn_like, randint_like, bernoulli, normal_tensor, multinomial):
    DRAWING_OPS.add(_d.name)
del _d
