"""SDK errors: each is a ``GraddError`` carrying a gRPC status code, and also the builtin
exception a PyTorch user catches (``RuntimeError`` for autograd rules, ``ConnectionError`` for a
lost server, ...), so ``except RuntimeError`` code written for PyTorch keeps working.

Argument errors that the SDK detects before anything is sent (a shape mismatch, a bad dim) are
raised by the engine's own shape and dtype rules, as the same builtin exceptions the engine
raises in-process. Autograd rule violations are ``AutogradRuleError``: a ``GraddError`` and the
engine's ``AutogradError``, so one ``except`` clause serves embedded and remote sessions alike.
"""

from __future__ import annotations

from typing import Any

from gradd.engine.errors import AutogradError


class GraddError(Exception):
    """Base of the SDK's errors; ``code`` is the gRPC status (a ``grpc.StatusCode``)."""

    code_name = "UNKNOWN"

    def __init__(self, message: str, *, code_name: str | None = None, site: Any = None) -> None:
        super().__init__(message)
        if code_name is not None:
            self.code_name = code_name
        self.message = message
        self.site = site  # (op, filename, line) of the queued call that failed, if known

    @property
    def code(self) -> Any:
        """The gRPC status code (``grpc.StatusCode``), as the server reported or would report it."""
        import grpc  # imported here: embedded users of gradd never load grpc

        return grpc.StatusCode[self.code_name]


class InvalidArgumentError(GraddError, RuntimeError, ValueError, TypeError, IndexError):
    """INVALID_ARGUMENT from the server: bad shapes, dtypes or arguments. The server reports
    only the message, so this is each builtin the engine may have raised for it."""

    code_name = "INVALID_ARGUMENT"


class AutogradRuleError(GraddError, AutogradError):
    """FAILED_PRECONDITION: an autograd rule was broken (a RuntimeError, as in PyTorch)."""

    code_name = "FAILED_PRECONDITION"


class NotFoundError(GraddError, LookupError):
    """NOT_FOUND: an unknown session or tensor handle (closed, expired, released)."""

    code_name = "NOT_FOUND"


class ResourceExhaustedError(GraddError, MemoryError):
    """RESOURCE_EXHAUSTED: a session limit (bytes, tensors, sessions) or memory."""

    code_name = "RESOURCE_EXHAUSTED"


class UnavailableError(GraddError, ConnectionError):
    """UNAVAILABLE: the server cannot be reached or the connection was lost."""

    code_name = "UNAVAILABLE"


class DeadlineExceededError(GraddError, TimeoutError):
    """DEADLINE_EXCEEDED: the server did not answer within the session's timeout."""

    code_name = "DEADLINE_EXCEEDED"


class AuthError(GraddError, PermissionError):
    """UNAUTHENTICATED or PERMISSION_DENIED: a missing or wrong token."""

    code_name = "UNAUTHENTICATED"


class UnimplementedError(GraddError, NotImplementedError):
    """UNIMPLEMENTED: not available in this mode or on this server."""

    code_name = "UNIMPLEMENTED"


class InternalError(GraddError, RuntimeError):
    """INTERNAL and anything unexpected: a bug to report."""

    code_name = "INTERNAL"


_BY_CODE: dict[str, type[GraddError]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "FAILED_PRECONDITION": AutogradRuleError,
    "NOT_FOUND": NotFoundError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "UNAVAILABLE": UnavailableError,
    "CANCELLED": UnavailableError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "UNAUTHENTICATED": AuthError,
    "PERMISSION_DENIED": AuthError,
    "UNIMPLEMENTED": UnimplementedError,
}


def error_for(code_name: str, message: str, site: Any = None) -> GraddError:
    """The SDK exception for a status code name and message (``site`` names the failed call)."""
    cls = _BY_CODE.get(code_name, InternalError)
    if site is not None:
        op, filename, line = site
        message = f"{message}\n  (the server ran {op} queued at {filename}:{line})"
    return cls(message, code_name=code_name, site=site)


def connection_lost(err: Any) -> bool:
    """Whether a failed call lost its connection (the server or the way to it is gone) rather
    than being answered with an error: UNAVAILABLE, CANCELLED, or gRPC's own INTERNAL "Stream
    removed" for a stream reset under it (what a proxy such as nginx does when a replica dies)."""
    code = err.code() if hasattr(err, "code") else None
    name = getattr(code, "name", None)  # grpc.StatusCode, without importing gRPC here
    if name == "INTERNAL":
        details = err.details() if hasattr(err, "details") else ""
        return (details or "").startswith("Stream removed")
    return name in ("UNAVAILABLE", "CANCELLED")


def from_rpc_error(err: Any, what: str, endpoint: Any = None) -> GraddError:
    """A ``grpc.RpcError`` of a call as an SDK exception; ``what`` says what was being done,
    and the ``Endpoint`` called (if given) explains a failed TLS handshake."""
    code = err.code() if hasattr(err, "code") else None
    name = code.name if code is not None else "UNKNOWN"
    details = err.details() if hasattr(err, "details") else str(err)
    if connection_lost(err):
        hint = endpoint.failure_hint(details or "") if endpoint is not None else ""
        details = f"{what}: the gradd server is unreachable or the connection was lost ({details})"
        details = f"{details}\n  {hint}" if hint else details
        name = "UNAVAILABLE"
    return error_for(name, details)


def rule_error(exc: AutogradError) -> AutogradRuleError:
    """An engine autograd-rule error, detected client-side, as the SDK's error."""
    return AutogradRuleError(str(exc))


__all__ = [
    "AuthError",
    "AutogradRuleError",
    "DeadlineExceededError",
    "GraddError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "ResourceExhaustedError",
    "UnavailableError",
    "UnimplementedError",
    "error_for",
    "from_rpc_error",
]
