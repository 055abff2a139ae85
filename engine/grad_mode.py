"""Thread-local grad mode: ``no_grad``, ``enable_grad`` and ``set_grad_enabled``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _Mode(threading.local):
    enabled = True
    # Whether results track their layout (strides): not inside a backward pass that records no
    # graph, whose gradients reach only ``.grad`` fields (which take their leaf's layout) and
    # hooks, so the pass skips the work (most of its cost over the arrays' own).
    layouts = True


_mode = _Mode()


def is_grad_enabled() -> bool:
    """True when ops on this thread record a graph."""
    return _mode.enabled


class set_grad_enabled:
    """Set grad mode on this thread: a plain call, a context manager or a decorator."""

    __slots__ = ("prev", "mode")

    def __init__(self, mode: bool) -> None:
        self.prev = _mode.enabled
        self.mode = bool(mode)
        _mode.enabled = self.mode

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self.prev

    def __call__(self, fn: F) -> F:
        _mode.enabled = self.prev  # used as a decorator: the constructor call must not stick
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _ScopedMode:
    """Base of no_grad/enable_grad: nestable, reusable, usable bare or called as decorators."""

    __slots__ = ("_prev",)
    mode = True

    def __init__(self) -> None:
        self._prev: list[bool] = []

    def __enter__(self) -> None:
        self._prev.append(_mode.enabled)
        _mode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self._prev.pop()

    def __call__(self, fn: F) -> F:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = _mode.enabled
            _mode.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _mode.enabled = prev

        return wrapper  # type: ignore[return-value]


class no_grad(_ScopedMode):
    """Disable graph recording inside the block (or the decorated function)."""

    __slots__ = ()
    mode = False


class enable_grad(_ScopedMode):
    """Enable graph recording inside the block, even within ``no_grad``."""

    __slots__ = ()
    mode = True
