"""What every session offers, embedded or remote: the PyTorch names an article's ``torch.``
becomes (dtypes, grad modes, top-level op functions) and the context-manager protocol."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import gradd.engine as ge
from gradd.engine import dtypes as dt

from . import optim as _optim


class Session:
    """A gradd session: make tensors with it (``s.randn``, ``s.tensor``) and train as with
    ``torch``. Use ``gradd.connect()`` to get one; close it (or use ``with``) when done."""

    id: str
    device: Any

    # Grad modes are the engine's: thread-local, and read by the SDK as each op is queued.
    no_grad = ge.no_grad
    enable_grad = ge.enable_grad
    set_grad_enabled = ge.set_grad_enabled
    is_grad_enabled = staticmethod(ge.is_grad_enabled)
    # Type promotion needs only dtypes and ranks, which every tensor kind knows here.
    promote_types = staticmethod(dt.promote_types)
    result_type = staticmethod(dt.result_type)
    # torch.optim: the same classes for every session (an optimizer finds its session from its
    # parameters; on a server, step() and zero_grad() are one command each).
    optim = _optim

    def _functions(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        # s.cat, s.stack, s.where, s.exp, s.matmul, ...: the op table's top-level functions.
        if name.startswith("_"):
            raise AttributeError(name)
        fn = self._functions().get(name)
        if fn is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return fn

    @functools.cached_property
    def nn(self) -> Any:
        """``torch.nn`` on this session: modules, ``Parameter``, ``init``, ``functional``
        (made on first use)."""
        from .nn import namespace

        return namespace(self)

    def _drawing(self) -> Any:
        """A context in which in-place draws (``uniform_``, ``normal_``) use this session's
        stream; a server draws from it anyway."""
        return contextlib.nullcontext()

    def save(self, obj: Any, f: Any, metadata: dict | None = None) -> None:
        """Write a state_dict (or nested dicts/lists of tensors and numbers) to a safetensors
        file that PyTorch's ``safetensors.torch.load_file`` reads (see safetensors_files)."""
        from . import safetensors_files

        safetensors_files.save(self, obj, f, metadata)

    def load(self, f: Any) -> Any:
        """Read a safetensors file (gradd's or PyTorch's ``save_file``) into this session."""
        from . import safetensors_files

        return safetensors_files.load(self, f)

    def _host_arrays(self, tensors: list) -> list:
        """The tensors' values as NumPy arrays (a remote session fetches them in one batch)."""
        return [t.detach().numpy() for t in tensors]

    def from_numpy(self, array: Any) -> Any:
        """A tensor with the array's values and dtype (a copy: the tensor may live elsewhere)."""
        return self.tensor(array)

    def available_devices(self) -> list[str]:
        """The devices the session's server has ("cpu", "cuda", "cuda:0", ...); embedded, this
        process's (what ``torch.cuda.is_available()`` asks)."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait until everything queued has been applied (raises the server's first error)."""

    def close(self) -> None:
        """Free the session's tensors."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        try:
            if exc_type is None:
                self.synchronize()
        finally:
            self.close()


# PyTorch's dtype names, so that ``torch.float`` becomes ``s.float``.
for _name, _dtype in dt.ALIASES.items():
    setattr(Session, _name, _dtype)
Session.bool_ = dt.bool_  # type: ignore[attr-defined]
del _name, _dtype
