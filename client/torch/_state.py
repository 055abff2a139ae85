"""The session behind ``gradd.torch``, and how its names are looked up on it.

One session is current for the whole process (as PyTorch's global state is): made on first use
from ``GRADD_TARGET`` (``host:port``: a session on that server; unset or empty: embedded), or
the one ``use(session)`` installed. Every ``torch.<name>`` is looked up on the current session
when it is read, so ops the session grows later appear without a change here.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gradd.session_base import Session

TARGET_ENV = "GRADD_TARGET"
LABEL = "gradd.torch"

_lock = threading.RLock()  # guards _current: one default session even if threads race to it
_current: Session | None = None


def _default_session() -> Session:
    import gradd

    target = os.environ.get(TARGET_ENV) or None
    if target is None:  # one process-wide stream, as torch's: tensors' methods draw from it
        from gradd.embedded_session import EmbeddedSession
        from gradd.engine.random_state import default_generator

        return EmbeddedSession(generator=default_generator)
    return gradd.connect(target, label=LABEL)


def current() -> Session:
    """The session ``gradd.torch`` works on now (made from ``GRADD_TARGET`` on first use)."""
    global _current
    session = _current
    if session is None:
        with _lock:
            if _current is None:
                _current = _default_session()
            session = _current
    return session


class use:  # noqa: N801 - used as a function: ``gradd.torch.use(s)``
    """Make ``session`` the one ``gradd.torch`` works on, for the whole process, from now on.

    As a context manager (``with gradd.torch.use(s):``) the previous session is current again
    at the end of the block; ``as`` gives ``session``. ``use(None)`` goes back to the default
    session (``GRADD_TARGET``'s, made on next use). The session is not closed by either: it is
    the caller's.
    """

    def __init__(self, session: Session | None) -> None:
        from gradd.session_base import Session

        if session is not None and not isinstance(session, Session):
            raise TypeError(
                "gradd.torch.use() takes a gradd session (gradd.connect(...)) or None, "
                f"not {type(session).__name__}"
            )
        global _current
        self.session = session
        with _lock:
            self._previous, _current = _current, session

    def __enter__(self) -> Session | None:
        return self.session

    def __exit__(self, *exc: object) -> None:
        global _current
        with _lock:
            _current = self._previous


def not_implemented(module: str, torch_name: str, name: str) -> AttributeError:
    return AttributeError(
        f"module {module!r} has no attribute {name!r} (gradd does not implement {torch_name} yet)"
    )


def _walk(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def lookup(torch_path: tuple[str, ...], name: str, *fallbacks: tuple[str, ...]) -> Any:
    """``torch.<torch_path>.<name>``: the current session's attribute at ``torch_path`` (then at
    each fallback path), or an AttributeError saying gradd does not implement it yet."""
    module = ".".join(("gradd.torch", *torch_path))
    if name.startswith("_"):  # introspection (__path__, __wrapped__...): never makes a session
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    session = current()
    for path in (torch_path, *fallbacks):
        try:
            return getattr(_walk(session, path), name)
        except AttributeError:
            continue
    raise not_implemented(module, ".".join(("torch", *torch_path, name)), name)


def namespace_getattr(torch_path: tuple[str, ...], *fallbacks: tuple[str, ...]) -> Any:
    """A module ``__getattr__`` (PEP 562) for ``gradd.torch.<torch_path>``."""

    def __getattr__(name: str) -> Any:
        return lookup(torch_path, name, *fallbacks)

    return __getattr__


def session_names(torch_path: tuple[str, ...], *fallbacks: tuple[str, ...]) -> set[str]:
    """The public names the current session has at ``torch_path`` or a fallback."""
    names: set[str] = set()
    session = current()
    for path in (torch_path, *fallbacks):
        try:
            obj = _walk(session, path)
        except AttributeError:
            continue
        names.update(n for n in dir(obj) if not n.startswith("_"))
        if obj is session:
            names.update(session._functions())
    return names


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import gradd.torch.optim`` (or any ``gradd.torch.X.Y``) once the session has such a
    namespace: a module whose attributes are looked up on the current session when read.

    Only paths without a module of their own come here (this finder is last on the path), and
    only namespaces (modules or plain objects, not functions or classes) become modules."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith("gradd.torch.") or "._" in fullname:
            return None
        torch_path = tuple(fullname.split(".")[2:])
        try:
            obj = _walk(current(), torch_path)
        except AttributeError:
            return None
        if callable(obj) and not isinstance(obj, types.ModuleType):
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=True)

    def create_module(self, spec: Any) -> types.ModuleType:
        module = types.ModuleType(spec.name, f"torch.{spec.name[len('gradd.torch.') :]}")
        module.__getattr__ = namespace_getattr(tuple(spec.name.split(".")[2:]))  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def install_finder() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
