"""``RemoteTensor``: a tensor that lives in a gradd server session, known here by its handle.

The client keeps each tensor's metadata (shape, dtype, requires_grad, grad_fn, version, whether
``.grad`` exists) by the engine's own rules (see ``op_recording``), so nothing waits for the
server except reading values: ``item()``, ``numpy()``, ``tolist()``, ``bool()``, ``repr()``.
Values are read by building an engine tensor around the fetched array and asking it, so the
answers and errors are the engine's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradd.engine import dtypes as dt
from gradd.engine.autograd import accumulates_in_place
from gradd.engine.errors import NON_LEAF_REQUIRES_GRAD, NOT_FLOAT_GRAD
from gradd.engine.layout import grad_layout
from gradd.engine.op_table import set_requires_grad
from gradd.engine.tensor import Tensor as EngineTensor
from gradd.engine.tensor import (
    check_assigned_data,
    check_assigned_grad,
    mark_retains_grad,
    wrap,
)
from gradd.engine.tensor_conversions import TensorConversions

from . import command_encoding as enc
from .call_site import user_site
from .errors import UnimplementedError
from .mirror_graph import MAYBE_GRAD, run_backward

_new = object.__new__
_SMALL = enc._SMALL
_ARG, _VAL = enc.OP_ARG, enc.V_TENSOR


class RemoteTensor(TensorConversions):
    """A tensor held by a gradd server: ``torch.Tensor``'s API, values fetched on demand."""

    __slots__ = (
        "_s",
        "_h",
        "_slot",
        "_arg",
        "shape",
        "dtype",
        "_rg",
        "grad_fn",
        "_vc",
        "_has_grad",
        "_grad_obj",
        "_retains_grad",
        "_acc",
        "_bound",
        "_base",
        "_layout",
        "_view_version",
        "__weakref__",
    )
    __array_priority__ = 1000  # ndarray (op) tensor defers to the tensor
    __array_ufunc__ = None

    def __del__(self) -> None:
        # Released on the server in bulk, with the next batch (list.append is thread-safe); its
        # slot is reused once that Release is queued. A tensor the server never bound (made
        # while a composite op was traced) gives its slot back at once.
        if self._bound:
            self._s._stream.released.append(self._h)
        elif hasattr(self, "_slot"):
            self._s._stream.free_slots.append(self._slot)

    # --- metadata --------------------------------------------------------------------------
    @property
    def handle(self) -> str:
        """This tensor's handle in its server session: what `gradd graph` and the protocol's
        requests (Fetch, GetGraph) name it by. It stays valid while the tensor is alive."""
        return self._h.decode()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def device(self) -> Any:
        return self._s.device

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        flag = bool(flag)
        if self.grad_fn is not None and not flag:
            raise RuntimeError(NON_LEAF_REQUIRES_GRAD)
        if flag and not self.dtype.is_floating_point:
            raise RuntimeError(NOT_FLOAT_GRAD)
        self._s._push(enc.set_requires_grad(self._h, flag), ("requires_grad_", *user_site()))
        self._rg = flag
        if flag and self.grad_fn is None:
            self._s._leaves.add(self)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        return self._s.device.type == "cuda"

    @property
    def nbytes(self) -> int:
        return self.numel() * self.dtype.itemsize

    @property
    def _version(self) -> int:
        return self._vc[0]

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    # --- grad ------------------------------------------------------------------------------
    @property
    def _grad(self) -> RemoteTensor | None:
        """``.grad`` bound to a handle of its own on first use (no wait: the mirror graph knows
        it exists); the same object is returned until the server makes a new grad tensor."""
        has = self._has_grad
        if has == MAYBE_GRAD:  # after a backward through a graph the client does not mirror
            site = ("grad", *user_site())
            info = self._s._stream.request(enc.fetch(self._h, metadata_only=True), site)
            self._has_grad = has = 2 if info.tensor.info.has_grad else 0
        if not has:
            return None
        g = self._grad_obj
        if g is None or has == 2:
            s = self._s
            g = new_tensor(s, self.shape, self.dtype, False, None)
            if has == 1 and self.grad_fn is None:
                g._layout = grad_layout(self.shape, self._layout)  # as the server's leaf grad
            s._push(enc.grad_of(g._h, self._h), ("grad", *user_site()))
            if has == 2:
                # Made with create_graph: its graph, and later backwards through it, are known
                # to the server only, so each read binds the current grad and asks for its
                # metadata (a wait).
                s._adopt_metadata(g)
            self._grad_obj = g
        return g

    def _set_grad(self, value: Any) -> None:
        if value is None:
            self._s._push(enc.zero_grad((self._h,), True), ("grad = None", *user_site()))
            self._has_grad = 0
            self._grad_obj = None
            return
        check_assigned_grad(self, value, RemoteTensor)
        if value._s is not self._s:
            raise RuntimeError("assigned grad is a tensor of another gradd session")
        self._s._push(enc.set_grad(self._h, value._h), ("grad =", *user_site()))
        self._has_grad = 1
        self._grad_obj = value  # PyTorch's `p.grad is g` after `p.grad = g`

    grad = property(EngineTensor.grad.fget, _set_grad)  # the engine's getter: same warning

    def requires_grad_(self, requires_grad: bool = True) -> RemoteTensor:
        return set_requires_grad(self, requires_grad)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (the engine's rule)."""
        if mark_retains_grad(self):
            self._s._push(enc.retain_grad(self._h), ("retain_grad", *user_site()))

    def register_hook(self, hook: Any) -> Any:
        raise UnimplementedError(
            "register_hook runs Python code on gradients, which live in the server; hooks are "
            "available in embedded sessions (gradd.connect() without a target)"
        )

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``, or only into those of
        ``inputs`` (queued: no wait)."""
        s = self._s
        if gradient is not None and type(gradient) is not RemoteTensor:
            gradient = s.tensor(gradient)
        only = None
        if inputs is not None:
            only = [inputs] if type(inputs) is RemoteTensor else list(inputs)
            if not only:
                raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
            if any(type(t) is not RemoteTensor or t._s is not s for t in only):
                raise TypeError("backward(inputs=...) takes tensors of this gradd session")
        written = run_backward(self, gradient, retain_graph, create_graph, only)
        g = gradient._h if gradient is not None else b""
        handles = [t._h for t in only] if only else ()
        command = enc.backward(self._h, g, retain_graph, create_graph, handles)
        s._push(command, ("backward", *user_site()))
        for t in written:
            old = t._grad_obj
            if old is not None:
                if not accumulates_in_place(create_graph, t.grad_fn is not None):
                    t._grad_obj = None  # the engine makes a new grad tensor: bind it afresh
                else:
                    old._vc[0] += 1  # accumulated in place: holders of .grad see it
            if create_graph:
                t._has_grad = 2
            elif not t._has_grad:
                t._has_grad = 1

    def detach(self) -> RemoteTensor:
        """The same data, cut from the graph (shares the version counter)."""
        t = new_tensor(self._s, self.shape, self.dtype, False, None)
        t._vc = self._vc
        t._layout = self._layout
        self._s._push(enc.detach(t._h, self._h), ("detach", *user_site()))
        return t

    def detach_(self) -> RemoteTensor:
        """Cut this tensor from the graph in place (its handle is rebound to the detached one)."""
        self._s._push(enc.detach(self._h, self._h), ("detach_", *user_site()))
        self.grad_fn = None
        self._rg = False
        return self

    @property
    def data(self) -> RemoteTensor:
        return self.detach()

    @data.setter
    def data(self, value: RemoteTensor) -> None:
        """``t.data = other``: the engine's checks and metadata rule; the server shares the
        elements (queued: no wait)."""
        check_assigned_data(self, value, RemoteTensor)
        if value._s is not self._s:
            raise RuntimeError("assigned data is a tensor of another gradd session")
        self._s._push(enc.set_data(self._h, value._h), ("data =", *user_site()))
        self.shape, self.dtype, self._layout = value.shape, value.dtype, value._layout

    # --- values (these wait for the server) -----------------------------------------------
    def _local(self) -> EngineTensor:
        """An engine tensor holding this tensor's fetched values and its autograd flags."""
        array = self._s._fetch_array(self)
        return wrap(array, self._s._host_device, self._rg, self.grad_fn)

    def numpy(self) -> np.ndarray:
        return self._local().numpy()

    def item(self) -> Any:
        return self._local().item()

    def tolist(self) -> Any:
        return self._local().tolist()

    def __float__(self) -> float:
        return self._local().__float__()

    def __int__(self) -> int:
        return self._local().__int__()

    def __bool__(self) -> bool:
        return self._local().__bool__()

    def __index__(self) -> int:
        return self._local().__index__()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._local().__array__(dtype)

    def __repr__(self) -> str:
        from gradd.engine.parameter_marks import repr_prefix

        return repr_prefix(self) + self._local().__repr__()

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Any:
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self) -> int:
        return id(self)

    # --- conversions -----------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> RemoteTensor:
        """``to(dtype)``; a device other than the session's is refused (tensors stay put)."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, dt.DType):
                dtype = a
            elif type(a) is RemoteTensor:
                dtype = a.dtype
            else:
                device = a
        self._s._check_device(device)
        if dtype is not None and dt.as_dtype(dtype) is not self.dtype:
            return self.type_as_dtype(dt.as_dtype(dtype))
        return self

    def type_as_dtype(self, dtype: dt.DType) -> RemoteTensor:
        from .op_recording import to_dtype

        return to_dtype(self, dtype)


def new_tensor(
    s: Any, shape: tuple, dtype: dt.DType, rg: bool, grad_fn: Any, bound: bool = True
) -> RemoteTensor:
    """A RemoteTensor with a free slot of session ``s``, its handle "#<slot>" (the hot
    constructor). Freed slots are reused first, so slot numbers stay below the number of
    tensors alive (the server's slot list stays dense)."""
    t = _new(RemoteTensor)
    free = s._stream.free_slots
    slot = free.pop() if free else next(s._slots)
    h = b"#%d" % slot
    n = len(h)
    t._s = s
    t._h = h
    t._slot = slot
    if s._compile_trace is not None:  # a temporary of the program being traced
        s._compile_trace.created.add(h)
    t._arg = _ARG + _SMALL[n + 2] + _VAL + _SMALL[n] + h  # handles are far shorter than 126
    t.shape = shape
    t.dtype = dtype
    t._rg = rg
    t.grad_fn = grad_fn
    t._vc = [0]
    t._has_grad = 0
    t._grad_obj = None
    t._retains_grad = False
    t._acc = None
    t._bound = bound
    t._base = None
    t._layout = None
    if rg and grad_fn is None:
        s._leaves.add(t)  # a leaf that requires grad (see mirror_graph.MAYBE_GRAD)
    return t


def is_remote(x: Any) -> bool:
    """True for a RemoteTensor."""
    return type(x) is RemoteTensor
