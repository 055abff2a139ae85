"""``gradd.torch.autograd``: ``torch.autograd`` on the current session: its ``autograd``
namespace if it has one, else the session's own ``grad``, ``backward`` and grad modes where it
has them."""

import typing as _typing

from . import _state

# torch.autograd's names that a session may carry at its top level (not op names).
_TOP_LEVEL = frozenset({"grad", "backward", "no_grad", "enable_grad", "set_grad_enabled"})


def __getattr__(name: str) -> _typing.Any:
    if name in _TOP_LEVEL:
        return _state.lookup(("autograd",), name, ())
    return _state.lookup(("autograd",), name)


def __dir__() -> list[str]:
    top = _state.session_names(()) & _TOP_LEVEL
    return sorted(top | _state.session_names(("autograd",)))
