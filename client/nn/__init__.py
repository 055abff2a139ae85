"""``s.nn``: PyTorch's ``torch.nn`` on a gradd session.

``namespace(s)`` gives every module class bound to ``s`` (parameters are made on ``s``,
forward calls ``s.functional``, construction draws from ``s``'s random stream), ``Parameter``,
``init`` (run on ``s``'s stream) and ``functional`` (``s.functional``). Classes of different
sessions are one class to ``isinstance``.
"""

from __future__ import annotations

import functools
import types
from typing import Any

from . import activation, container, conv, init, linear, loss, normalization, sparse, transformer
from .module import Module
from .parameter import Parameter

CLASSES: tuple[type, ...] = (
    Module,
    *linear.CLASSES,
    *activation.CLASSES,
    *container.CLASSES,
    *loss.CLASSES,
    *conv.CLASSES,
    *normalization.CLASSES,
    *sparse.CLASSES,
    *transformer.CLASSES,
)


def _bound(cls: type, session: Any) -> type:
    """``cls`` made on ``session``: a subclass that ``isinstance`` treats as ``cls`` itself."""
    attrs = {"_session": session, "_generic": cls, "__module__": "gradd.nn"}
    attrs["__qualname__"] = cls.__qualname__
    attrs["__doc__"] = cls.__doc__
    return type(cls)(cls.__name__, (cls,), attrs)


def _on_stream(fn: Any, session: Any) -> Any:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with session._drawing():
            return fn(*args, **kwargs)

    return call


def namespace(session: Any) -> types.SimpleNamespace:
    """The ``nn`` namespace of ``session``."""
    ns = types.SimpleNamespace(**{cls.__name__: _bound(cls, session) for cls in CLASSES})
    ns.Parameter = Parameter
    ns.functional = session.functional
    ns.init = types.SimpleNamespace(
        **{name: _on_stream(getattr(init, name), session) for name in init.NAMES}
    )
    return ns


__all__ = ["CLASSES", "Module", "Parameter", "init", "namespace"]
