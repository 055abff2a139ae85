"""gradd, the autograd daemon: PyTorch's autograd, served.

``gradd.connect("host:port")`` opens a session on a gradd server; ``gradd.connect()`` runs the
engine in this process. Either way the session makes tensors (``s.randn``, ``s.tensor``) that
train as PyTorch's do; ``import gradd.torch as torch`` is PyTorch's ``torch`` namespace on a
default session. ``import gradd`` loads nothing heavy: the engine, gRPC and the protocol
are imported when first used.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .errors import (  # noqa: F401
        AuthError,
        AutogradRuleError,
        DeadlineExceededError,
        GraddError,
        InternalError,
        InvalidArgumentError,
        NotFoundError,
        ResourceExhaustedError,
        UnavailableError,
        UnimplementedError,
    )
    from .graph_pictures import make_dot  # noqa: F401
    from .session_base import Session  # noqa: F401
    from .tensor_base import Tensor  # noqa: F401


def connect(
    target: str | None = None,
    *,
    token: str | None = None,
    timeout: float | None = None,
    device: str | None = None,
    seed: int | None = None,
    label: str = "",
    tls: bool | None = None,
    root_certificates: str | os.PathLike | bytes | None = None,
    client_certificate: str | os.PathLike | bytes | None = None,
    client_key: str | os.PathLike | bytes | None = None,
    reconnect_timeout: float = 60.0,
) -> Session:
    """Open a session: on the gradd server at ``target`` ("host:port"), or in-process when
    ``target`` is None. ``timeout`` bounds every wait for the server (seconds).

    TLS: ``tls=True`` or a ``grpcs://host:port`` target (a certificate option implies it).
    ``root_certificates`` are the PEM CA certificates that sign the server's (default: the
    system's); ``client_certificate`` and ``client_key`` answer a server that requires mutual
    TLS. Each is a path or the PEM bytes.

    On a server that keeps sessions across restarts (``--state-dir``), a lost connection is
    retried for up to ``reconnect_timeout`` seconds and the session resumed where it was."""
    if target is None:
        if tls or root_certificates or client_certificate or client_key:
            raise ValueError("TLS options need a server target (gradd.connect('host:port', ...))")
        from .embedded_session import EmbeddedSession

        return EmbeddedSession(device=device, seed=seed)
    from .remote_session import RemoteSession

    return RemoteSession(
        target,
        token=token,
        timeout=timeout,
        device=device,
        seed=seed,
        label=label,
        tls=tls,
        root_certificates=root_certificates,
        client_certificate=client_certificate,
        client_key=client_key,
        reconnect_timeout=reconnect_timeout,
    )


# Lazily loaded names: attribute -> module (relative to this package, or absolute).
_LAZY = {
    "Tensor": ".tensor_base",
    "Session": ".session_base",
    "make_dot": ".graph_pictures",
    "RemoteTensor": ".remote_tensor",
    "no_grad": "gradd.engine",
    "enable_grad": "gradd.engine",
    "set_grad_enabled": "gradd.engine",
    "is_grad_enabled": "gradd.engine",
    "AutogradError": "gradd.engine",
    "float32": "gradd.engine",
    "float64": "gradd.engine",
    "int64": "gradd.engine",
    "bool_": "gradd.engine",
    "float": "gradd.engine",
    "double": "gradd.engine",
    "long": "gradd.engine",
    "bool": "gradd.engine",
    "WatchStarted": ".watch_events",
    "StepEvent": ".watch_events",
    "GraphEvent": ".watch_events",
    "SessionEnded": ".watch_events",
}
_ERRORS = (
    "GraddError",
    "AuthError",
    "AutogradRuleError",
    "DeadlineExceededError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "ResourceExhaustedError",
    "UnavailableError",
    "UnimplementedError",
)
_LAZY.update(dict.fromkeys(_ERRORS, ".errors"))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gradd' has no attribute {name!r}")
    if name == "RemoteTensor" or name == "Tensor":
        importlib.import_module(".op_recording", __name__)  # binds the ops onto RemoteTensor
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["Session", "Tensor", "connect", "make_dot", *_ERRORS]
