"""The server's TLS credentials from --tls-cert, --tls-key and --tls-client-ca (mutual TLS).

The files are read and checked once at start (a key that does not match its certificate, or a
file that is not PEM, stops the server with one line) so that a mistake is never found first by
a client's failed handshake.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from .config import ServerConfig


class TlsConfigError(Exception):
    """The TLS files cannot be used (one line for the operator)."""


def _read(flag: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{flag} {path}: cannot read it ({exc.strerror})") from None


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials for the listening port, or None to serve plaintext (no --tls-cert)."""
    if not config.tls_cert:
        return None
    cert = _read("--tls-cert", config.tls_cert)
    key = _read("--tls-key", config.tls_key)
    check = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        check.load_cert_chain(config.tls_cert, config.tls_key)
    except ssl.SSLError as exc:
        raise TlsConfigError(
            f"--tls-cert {config.tls_cert} with --tls-key {config.tls_key}: not a PEM "
            f"certificate and its private key ({exc.reason or exc})"
        ) from None
    client_ca = None
    if config.tls_client_ca:
        client_ca = _read("--tls-client-ca", config.tls_client_ca)
        try:
            check.load_verify_locations(cadata=client_ca.decode("ascii", errors="replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise TlsConfigError(
                f"--tls-client-ca {config.tls_client_ca}: no PEM CA certificate in it ({exc})"
            ) from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def describe(config: ServerConfig) -> str:
    """How the port is protected, for the start-up log line."""
    if not config.tls_cert:
        return "plaintext"
    return "TLS, client certificates required" if config.tls_client_ca else "TLS"
