"""``nn.Module`` as PyTorch's: attribute registration, calling, modes, bulk changes, repr
(traversal and state_dicts: ``module_state``).

A module class is bound to a session (``s.nn.Linear`` is ``Linear`` with ``_session = s``):
its parameters are made there, its forward calls that session's functional ops, and its
constructor draws from that session's random stream. ``isinstance`` treats every session's
bound class as the one class, so ``isinstance(s.nn.Linear(2, 2), t.nn.Module)`` holds.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from .module_state import ModuleState
from .parameter import Parameter, is_tensor, typename


class _ModuleMeta(type):
    """Construction draws from the class's session; a bound class checks as its generic one."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        session = cls._session
        with session._drawing() if session is not None else contextlib.nullcontext():
            return super().__call__(*args, **kwargs)

    def __instancecheck__(cls, obj: Any) -> bool:
        return type.__instancecheck__(cls.__dict__.get("_generic", cls), obj)

    def __subclasscheck__(cls, sub: type) -> bool:
        return type.__subclasscheck__(cls.__dict__.get("_generic", cls), sub)


def _addindent(text: str, spaces: int) -> str:
    first, *rest = text.split("\n")
    return "\n".join([first, *(" " * spaces + line for line in rest)]) if rest else text


class Module(ModuleState, metaclass=_ModuleMeta):
    """Base class for all neural network modules (``torch.nn.Module``)."""

    _session: Any = None  # set on the classes a session's ``nn`` hands out
    _version: int = 1
    training: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                f"'{next(iter(kwargs))}'"
                if kwargs
                else f"{type(self).__name__}.__init__() takes 1 positional argument but "
                f"{len(args) + 1} were given"
            )
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})

    # --- the session this module works on ---------------------------------------------------
    @property
    def _s(self) -> Any:
        if self._session is None:  # a generic class: gradd.torch's current session
            import gradd.torch

            return gradd.torch.session()
        return self._session

    @property
    def _F(self) -> Any:
        """The session's ``nn.functional`` (ops are found by name when called)."""
        return self._s.functional

    # --- calling --------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_pre_hook(self, hook: Callable) -> Any:
        """``hook(module, args)`` before each forward; may return new args."""
        return _HookHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook: Callable) -> Any:
        """``hook(module, args, output)`` after each forward; may return a new output."""
        return _HookHandle(self._forward_hooks, hook)

    # --- registration ---------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            _remove(name, d, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{typename(value)}' as parameter '{name}' "
                    "(torch.nn.Parameter or None expected)"
                )
            self.register_parameter(name, value)
        else:
            modules = d.get("_modules")
            if isinstance(value, Module):
                if modules is None:
                    raise AttributeError("cannot assign module before Module.__init__() call")
                _remove(name, d, params, self._buffers, self._non_persistent_buffers_set)
                modules[name] = value
            elif modules is not None and name in modules:
                if value is not None:
                    raise TypeError(
                        f"cannot assign '{typename(value)}' as child module '{name}' "
                        "(torch.nn.Module or None expected)"
                    )
                modules[name] = value
            elif d.get("_buffers") is not None and name in d["_buffers"]:
                if value is not None and not is_tensor(value):
                    raise TypeError(
                        f"cannot assign '{typename(value)}' as buffer '{name}' "
                        "(torch.nn.Buffer, torch.Tensor or None expected)"
                    )
                d["_buffers"][name] = value
            else:
                object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def _check_name(self, kind: str, name: Any, table: dict) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {typename(name)}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain "."')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if hasattr(self, name) and name not in table:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Any) -> None:
        """Add a parameter (or None) to the module."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name("parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{typename(param)}' object to parameter '{name}' "
                "(torch.nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                f"created explicitly. To express '{name}' as a function of another Tensor, "
                "compute the value in the forward() method."
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add a buffer: state that is not a parameter (in the state_dict when persistent)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name("buffer", name, self._buffers)
        if tensor is not None and not is_tensor(tensor):
            raise TypeError(
                f"cannot assign '{typename(tensor)}' object to buffer '{name}' "
                "(torch Tensor or None required)"
            )
        self._buffers[name] = tensor
        (self._non_persistent_buffers_set.discard if persistent else
         self._non_persistent_buffers_set.add)(name)  # fmt: skip

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as the attribute ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{typename(module)} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {typename(name)}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('module name can\'t be empty string ""')
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted path ("layer1.0.conv")."""
        mod: Module = self
        for item in target.split(".") if target else ():
            if not hasattr(mod, item):
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return mod

    # --- modes and bulk changes -----------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the parameters' gradients: to None (the default) or to zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                g = p.grad
                if g.grad_fn is not None:
                    g.detach_()
                else:
                    g.requires_grad_(False)
                g.zero_()

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _apply(self, fn: Callable[[Any], Any]) -> Module:
        for module in self.children():
            module._apply(fn)
        for name, p in self._parameters.items():
            if p is not None:
                with self._s.no_grad():
                    new = fn(p)
                if new is not p:
                    self._parameters[name] = Parameter(new, p.requires_grad)
        for name, b in self._buffers.items():
            if b is not None:
                self._buffers[name] = fn(b)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move and/or cast parameters and buffers (floating ones only get a new dtype)."""
        device, dtype = _to_args(args, kwargs)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(
                "nn.Module.to only accepts floating point or complex dtypes, but got desired "
                f"dtype={dtype!r}"
            )

        def convert(t: Any) -> Any:
            want = dtype if dtype is not None and t.is_floating_point() else None
            if device is None and (want is None or t.dtype == want):
                return t
            return t.to(*(x for x in (device, want) if x is not None))

        return self._apply(convert)

    def float(self) -> Module:
        return self.to(self._s.float32)

    def double(self) -> Module:
        return self.to(self._s.float64)

    def cpu(self) -> Module:
        return self.to("cpu")

    # --- copies ---------------------------------------------------------------------------
    def __deepcopy__(self, memo: dict) -> Module:
        """A module with its own copies of parameters and buffers (tied ones stay tied), as
        ``copy.deepcopy`` of a torch module; tensors are cloned on their session."""
        import copy

        new = object.__new__(type(self))
        memo[id(self)] = new
        with self._s.no_grad():
            for key, value in self.__dict__.items():
                if key in ("_parameters", "_buffers"):
                    value = {n: _copy_tensor(t, memo) for n, t in value.items()}
                else:
                    value = copy.deepcopy(value, memo)
                object.__setattr__(new, key, value)
        return new

    # --- repr -----------------------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({key}): " + _addindent(repr(module), 2) for key, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"

    def __dir__(self) -> list[str]:
        names = {*dir(type(self)), *self.__dict__}
        names |= {*self._parameters, *self._buffers, *self._modules}
        return sorted(n for n in names if not n[:1].isdigit())


def _copy_tensor(t: Any, memo: dict) -> Any:
    """A clone of ``t`` (a parameter stays one, with its requires_grad), once per tensor."""
    if t is None:
        return None
    if id(t) not in memo:
        clone = t.detach().clone()
        memo[id(t)] = Parameter(clone, t.requires_grad) if isinstance(t, Parameter) else clone
    return memo[id(t)]


def _remove(name: str, *tables: Any) -> None:
    for table in tables:
        if table is not None and name in table:
            if isinstance(table, set):
                table.discard(name)
            else:
                del table[name]


def _to_args(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, or keywords."""
    from gradd.engine import DType

    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
    for a in args:
        if isinstance(a, DType):
            dtype = a
        elif is_tensor(a):
            device, dtype = a.device, a.dtype
        elif a is not None:
            device = a
    return device, dtype


class _HookHandle:
    """What ``register_forward_hook`` returns: ``remove()`` takes the hook away."""

    _ids = itertools.count()

    def __init__(self, table: dict, hook: Callable) -> None:
        self.table, self.id = table, next(self._ids)
        table[self.id] = hook

    def remove(self) -> None:
        self.table.pop(self.id, None)
