"""Failures as gRPC statuses: every error the server reports carries a status code.

Engine errors map by kind: ``AutogradError`` (autograd rule violations) is FAILED_PRECONDITION;
the exceptions a PyTorch user gets for bad arguments are INVALID_ARGUMENT; running out of memory
is RESOURCE_EXHAUSTED. Anything else is a bug of ours: INTERNAL, logged with its traceback.
"""

from __future__ import annotations

import grpc
from gradd.engine import AutogradError
from gradd.engine.memory_meter import SessionMemoryError

SHOWN_CHARACTERS = 100  # a client's string is cut to this many characters in messages and logs


def shown(text: str) -> str:
    """A client's string as quoted in a status message or log line: its repr, cut after
    SHOWN_CHARACTERS characters with its full length, e.g. `'abcd…' (100000 characters)`."""
    if len(text) <= SHOWN_CHARACTERS:
        return repr(text)
    quoted = repr(text[:SHOWN_CHARACTERS])
    return f"{quoted[:-1]}…{quoted[-1]} ({len(text)} characters)"


MAX_MESSAGE_BYTES = 2000  # of a status message's UTF-8: under any client's metadata limit


def bounded(message: str) -> str:
    """A status message cut to MAX_MESSAGE_BYTES of UTF-8, for messages that quote a client's
    values whole (PyTorch's `shape '[1, 1, ...]' is invalid` of a shape with a million dims):
    percent-encoded, it stays under the 8 KiB of metadata gRPC clients accept by default."""
    data = message.encode()
    if len(data) <= MAX_MESSAGE_BYTES:
        return message
    return f"{data[:MAX_MESSAGE_BYTES].decode(errors='ignore')}… ({len(message)} characters)"


class MalformedRequest(ValueError):
    """A request's bytes are not a well-formed message (or pass the parser's bounds)."""


class ServiceError(Exception):
    """A failure to report to the client with a status code and a message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> ServiceError:
    """NOT_FOUND: an unknown session or handle."""
    return ServiceError(grpc.StatusCode.NOT_FOUND, message)


def invalid(message: str) -> ServiceError:
    """INVALID_ARGUMENT: a request that can never succeed as written."""
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message)


def exhausted(message: str) -> ServiceError:
    """RESOURCE_EXHAUSTED: a limit; the message carries the numbers."""
    return ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


def precondition(message: str) -> ServiceError:
    """FAILED_PRECONDITION: the session's state does not allow it (yet)."""
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, message)


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client sees for an exception."""
    code, message = _status(exc)
    return code, bounded(message)


def _status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, ServiceError):
        return exc.code, exc.message
    message = str(exc) or type(exc).__name__
    if isinstance(exc, AutogradError):
        return grpc.StatusCode.FAILED_PRECONDITION, message
    if isinstance(exc, NotImplementedError):  # before RuntimeError: it is one
        return grpc.StatusCode.UNIMPLEMENTED, message
    if isinstance(exc, SessionMemoryError):  # a session's byte limit, with the numbers
        return grpc.StatusCode.RESOURCE_EXHAUSTED, message
    if isinstance(exc, MemoryError):  # numpy's and CuPy's out-of-memory errors are MemoryErrors
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"out of memory: {message}"
    if isinstance(exc, (RuntimeError, TypeError, ValueError, LookupError, ArithmeticError)):
        if isinstance(exc, KeyError) and exc.args:
            message = str(exc.args[0])  # KeyError's str() quotes its argument
        return grpc.StatusCode.INVALID_ARGUMENT, message
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}): {message}"
