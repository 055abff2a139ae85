"""``Tensor``: an array on a device plus the autograd state PyTorch gives it."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from . import dtypes as dt
from . import staged_upload
from .device import CPU, Device, get_device, to_host
from .errors import NOT_FLOAT_GRAD
from .grad_mode import _mode
from .memory_meter import _active, check_active
from .memory_meter import used as _metered
from .tensor_conversions import TensorConversions


class Tensor(TensorConversions):
    """A multi-dimensional array that can record the ops applied to it, as ``torch.Tensor``."""

    __slots__ = (
        "_data",
        "_dev",
        "requires_grad",
        "grad_fn",
        "_grad",
        "_vc",
        "_retains_grad",
        "_hooks",
        "_base",
        "_view",
        "_view_version",
        "_acc",
        "_layout",
        "__weakref__",
    )
    __array_priority__ = 1000  # make ``ndarray * tensor`` defer to Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        t = tensor(data, requires_grad=requires_grad)
        for s in (
            "_data",
            "_dev",
            "requires_grad",
            "grad_fn",
            "_grad",
            "_vc",
            "_retains_grad",
            "_hooks",
            "_base",
            "_view",
            "_acc",
            "_layout",
        ):
            setattr(self, s, getattr(t, s))

    # --- metadata --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> dt.DType:
        return dt.from_numpy(self._data.dtype)

    @property
    def device(self) -> Device:
        return self._dev

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        return self._dev.type == "cuda"

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    @property
    def _version(self) -> int:
        return self._vc[0]

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def size(self, dim: int | None = None) -> Any:
        return self._data.shape if dim is None else self._data.shape[dim]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._data.itemsize

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    # --- grad ------------------------------------------------------------------------------
    @property
    def grad(self) -> Tensor | None:
        if self._grad is None and self.grad_fn is not None and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during autograd.backward(). If you indeed "
                "want the .grad field to be populated for a non-leaf Tensor, use .retain_grad() "
                "on the non-leaf Tensor.",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            check_assigned_grad(self, value, Tensor)
        self._grad = value

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        from .op_table import set_requires_grad

        return set_requires_grad(self, requires_grad)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        mark_retains_grad(self)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new one."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            self.grad_fn.register_prehook(hook)
            hooks = self.grad_fn.pre_hooks
        else:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            hooks = self._hooks
        return _HookHandle(hooks, hook)

    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
        from .autograd import backward

        backward([self], [gradient], retain_graph, create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares storage and version counter)."""
        t = wrap(self._data, self._dev)
        t._vc = self._vc
        t._layout = self._layout
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        """``t.data = other``: t now holds other's elements (shared, not copied), whatever
        their shape, dtype, layout or device, and keeps its own autograd state."""
        check_assigned_data(self, value, Tensor)
        self._data = value._data
        self._dev = value._dev
        self._layout = value._layout

    # --- values ----------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad and _mode.enabled:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return to_host(self._data)

    def item(self) -> Any:
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return to_host(self._data).reshape(()).item()

    def tolist(self) -> Any:
        return to_host(self._data).tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __len__(self) -> int:
        if not self._data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Any:
        if not self._data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        from .parameter_marks import repr_prefix
        from .tensor_repr import tensor_repr

        return repr_prefix(self) + tensor_repr(self)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = to_host(self._data)
        return a if dtype is None else a.astype(dtype)

    # --- conversions -----------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(dtype)``, ``to(device)`` or ``to(device, dtype)``."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, dt.DType):
                dtype = a
            elif isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            else:
                device = a
        out = self
        if device is not None and get_device(device) is not self._dev:
            from .op_table import call_op

            out = call_op("to_device", out, str(get_device(device)))
        if dtype is not None and dt.as_dtype(dtype) is not out.dtype:
            out = out.type_as_dtype(dt.as_dtype(dtype))
        return out

    def type_as_dtype(self, dtype: dt.DType) -> Tensor:
        from .op_table import call_op

        return call_op("to_dtype", self, dtype)


def mark_retains_grad(t: Any) -> bool:
    """``retain_grad()``'s rule for either kind of tensor: refused without requires_grad, a
    no-op on a leaf or when already retained; else its grad_fn keeps a weak reference to it.
    True when it was newly marked."""
    if not t.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if t.grad_fn is None or t._retains_grad:
        return False
    t._retains_grad = True
    t.grad_fn.retained = weakref.ref(t)
    return True


def check_assigned_data(tensor: Any, value: Any, kind: type) -> None:
    """PyTorch's checks on ``tensor.data = value``: a tensor of ``kind``, and a floating point
    one when ``tensor`` requires grad."""
    if type(value) is not kind:
        raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
    if tensor.requires_grad and not value.dtype.is_floating_point:
        raise RuntimeError(
            "data set to a tensor that requires gradients must be floating point or complex dtype"
        )


def check_assigned_grad(tensor: Any, value: Any, kind: type) -> None:
    """PyTorch's checks on ``tensor.grad = value``: a tensor of ``kind``, same shape and dtype."""
    if type(value) is not kind:
        raise TypeError(
            "assigned grad expected to be a Tensor or None but got grad of type "
            f"{type(value).__name__}"
        )
    if value.shape != tensor.shape:
        raise RuntimeError(
            f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor of size "
            f"'{list(tensor.shape)}'. Please ensure that the gradient and the tensor are the "
            "same size"
        )
    if value.dtype is not tensor.dtype:
        raise RuntimeError(
            f"attempting to assign a gradient with dtype '{value.dtype.c_name}' to a "
            f"tensor with grad_dtype '{tensor.dtype.torch_name}'. The gradient "
            "must match the tensor's grad_dtype (defaults to the tensor's dtype)."
        )


class _HookHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    __slots__ = ("hooks", "hook")

    def __init__(self, hooks: list, hook: Callable) -> None:
        self.hooks, self.hook = hooks, hook

    def remove(self) -> None:
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)


_new = object.__new__


def wrap(data: Any, dev: Device = CPU, requires_grad: bool = False, grad_fn: Any = None) -> Tensor:
    """Make a Tensor around an existing array (no copy): the engine's hot constructor.

    Every array that becomes a tensor passes here (or through ``record``, which charges it
    itself), so here it is charged to the active memory meter.
    """
    meter = _active.meter if _metered.ever else None
    if meter is not None:
        meter.charge(data)
    t = _new(Tensor)  # wrap_charged's body, inlined: this is the hot constructor
    t._data = data
    t._dev = dev
    t.requires_grad = requires_grad
    t.grad_fn = grad_fn
    t._grad = None
    t._vc = [0]
    t._retains_grad = False
    t._hooks = None
    t._base = None
    t._view = None
    t._acc = None
    t._layout = None
    return t


def wrap_charged(
    data: Any, dev: Device = CPU, requires_grad: bool = False, grad_fn: Any = None
) -> Tensor:
    """``wrap`` for an array its caller already charged to the active meter (if any)."""
    t = _new(Tensor)
    t._data = data
    t._dev = dev
    t.requires_grad = requires_grad
    t.grad_fn = grad_fn
    t._grad = None
    t._vc = [0]
    t._retains_grad = False
    t._hooks = None
    t._base = None
    t._view = None
    t._acc = None
    t._layout = None
    return t


def tensor(
    data: Any,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A new leaf tensor copied from ``data`` (nested lists, scalars, arrays or tensors).

    Python floats become float32 (PyTorch's default); float64 NumPy input stays float64.
    """
    dev = get_device(device)
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):  # a NumPy scalar keeps its dtype, as in PyTorch
        arr = np.asarray(data)
    elif hasattr(data, "__cuda_array_interface__"):
        # A GPU array: copied on the GPU when it stays there, else brought to the host.
        arr = data if dev is not CPU else to_host(data)
    else:
        # Python floats are parsed as doubles; only without a dtype do they become the default
        # float (with dtype=float64 they stay exact, as PyTorch's).
        arr = _from_python(data, default_float=dtype is None)
    want = dt.from_numpy(arr.dtype) if dtype is None else dt.as_dtype(dtype)
    check_active(arr.size * want.itemsize)
    if requires_grad and not want.is_floating_point:
        raise RuntimeError(NOT_FLOAT_GRAD)
    if dev is CPU:
        arr = np.array(arr, dtype=want.np, copy=True)
    else:
        with dev.scope():  # one copy, straight into device memory
            if arr.dtype == want.np and staged_upload.can_stage(dev.xp, arr):
                arr = staged_upload.upload(dev.xp, dev.index, np.ascontiguousarray(arr))
            else:
                arr = dev.xp.array(arr, dtype=want.np)
    return wrap(arr, dev, bool(requires_grad))


def _from_python(data: Any, default_float: bool = True) -> np.ndarray:
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = _tensors_to_lists(data)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        # Python floats: the default float, as PyTorch (unless a dtype was asked for)
        return arr.astype(dt.default_float.np) if default_float else arr
    if arr.dtype.kind in "iub":
        return arr
    raise TypeError(f"Could not infer dtype of {type(data).__name__}")


def _flat(x: Any) -> Any:
    for v in x:
        if isinstance(v, (list, tuple)):
            yield from _flat(v)
        else:
            yield v


def _tensors_to_lists(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [_tensors_to_lists(v) for v in x]
    return x
