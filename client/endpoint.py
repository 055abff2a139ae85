"""Where a gradd server is and how to reach it: plaintext, TLS or mutual TLS.

``gradd.connect`` and the ``gradd`` command take the same target and TLS options and build
their channels here. A ``grpcs://host:port`` target means TLS; ``grpc://host:port`` or a bare
``host:port`` plaintext unless ``tls=True`` or a certificate option is given. Certificates are
PEM, given as a path or as the bytes themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

Pem = str | os.PathLike | bytes | None


def _pem(name: str, value: Pem) -> bytes | None:
    """PEM bytes from bytes or a path (read now, so a wrong path fails at connect)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str | os.PathLike):
        return Path(value).read_bytes()
    raise TypeError(f"{name} must be a path or PEM bytes, not {type(value).__name__}")


@dataclass(frozen=True)
class Endpoint:
    """A gRPC address and, for TLS, the channel credentials."""

    address: str
    credentials: grpc.ChannelCredentials | None = None

    @classmethod
    def of(
        cls,
        target: str,
        *,
        tls: bool | None = None,
        root_certificates: Pem = None,
        client_certificate: Pem = None,
        client_key: Pem = None,
    ) -> Endpoint:
        """The endpoint of ``target`` ("host:port", "grpcs://host:port" or "grpc://host:port").

        ``tls`` None: TLS for grpcs:// or when a certificate is given. ``root_certificates``
        defaults to the system's (gRPC's bundled roots); ``client_certificate`` and
        ``client_key`` (both or neither) answer a server that requires mutual TLS."""
        scheme, sep, rest = target.partition("://")
        address = target
        if sep and scheme in ("grpc", "grpcs"):
            address = rest
            if tls is None:
                tls = scheme == "grpcs"
            elif tls != (scheme == "grpcs"):
                raise ValueError(f"tls={tls} contradicts the target {target!r}")
        if not address:
            raise ValueError(f"no host:port in the target {target!r}")
        given = any(v is not None for v in (root_certificates, client_certificate, client_key))
        if tls is None:
            tls = given
        if not tls:
            if given:
                raise ValueError("certificates given with tls=False (or a grpc:// target)")
            return cls(address)
        if (client_certificate is None) != (client_key is None):
            raise ValueError("client_certificate and client_key go together (mutual TLS)")
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_pem("root_certificates", root_certificates),
            private_key=_pem("client_key", client_key),
            certificate_chain=_pem("client_certificate", client_certificate),
        )
        return cls(address, credentials)

    @property
    def tls(self) -> bool:
        return self.credentials is not None

    def channel(self, options: list[tuple[str, int]]) -> grpc.Channel:
        """A new channel to this endpoint."""
        if self.credentials is None:
            return grpc.insecure_channel(self.address, options=options)
        return grpc.secure_channel(self.address, self.credentials, options=options)

    def failure_hint(self, details: str) -> str:
        """What a failed connection's details say about TLS, in words ("" when nothing)."""
        if "CERTIFICATE_VERIFY_FAILED" in details:
            return (
                "TLS: the server's certificate is not signed by a CA in root_certificates (or "
                "the system's roots)"
            )
        if "Hostname Verification" in details:
            return "TLS: the server's certificate does not name the host of the target"
        if "WRONG_VERSION_NUMBER" in details:
            return "TLS: the server does not speak TLS at this address (connect without TLS)"
        if "Socket closed" in details and self.tls:
            return (
                "TLS: the server closed the connection in the handshake; it may require a client "
                "certificate and key signed by its --tls-client-ca"
            )
        if "Socket closed" in details:
            return "the server may require TLS (tls=True, --tls or a grpcs:// target)"
        return ""
