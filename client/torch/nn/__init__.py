"""``gradd.torch.nn``: ``torch.nn`` on the current session (its ``nn``: ``torch.nn.Linear`` is
``session().nn.Linear``, ``torch.nn.init`` its ``nn.init``).

``torch.nn.functional`` is the session's ``functional`` (``import gradd.torch.nn.functional as
F``)."""

from .. import _state
from . import functional

__getattr__ = _state.namespace_getattr(("nn",))


def __dir__() -> list[str]:
    return sorted({"functional"} | _state.session_names(("nn",)))


__all__ = ["functional"]
