"""``gradd.torch.nn.functional``: ``torch.nn.functional`` on the current session (``s.functional``;
``s.nn.functional`` first, should sessions grow an ``nn``)."""

from .. import _state

_PATHS = (("nn", "functional"), ("functional",))

__getattr__ = _state.namespace_getattr(*_PATHS)


def __dir__() -> list[str]:
    return sorted(_state.session_names(*_PATHS))
