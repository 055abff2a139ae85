"""The server's settings: command-line flags, each with a GRADD_* environment variable.

A flag given on the command line wins over its environment variable, which wins over the
default. Sizes take suffixes (512M, 2G, 1GiB); durations are seconds.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from "1048576", "512M", "2G", "1GiB" or "64MB" (binary units)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1048576, 512M, 2G)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


# Calls one session (or the admin token) may have running at once, by kind; a session may also
# have up to --max-watchers Watch streams. Beyond these: RESOURCE_EXHAUSTED, at once.
UNARY_CALLS_PER_SESSION = 2
EXECUTE_STREAMS_PER_SESSION = 2


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server is configured with."""

    host: str = "127.0.0.1"
    port: int = 50051
    device: str = "cpu"
    max_sessions: int = 64
    max_session_bytes: int = 2 << 30
    max_session_tensors: int = 100_000
    idle_ttl: float = 900.0
    orphan_ttl: float = 120.0
    grace: float = 10.0
    admin_token: str = ""
    workers: int = 0
    max_message_bytes: int = 256 << 20
    max_watchers: int = 8
    watch_queue: int = 256
    log_level: str = "info"
    log_format: str = "text"
    metrics_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    state_dir: str = ""
    checkpoint_every: float = 30.0


# flag name, type, help. Each flag FOO_BAR also reads GRADD_FOO_BAR.
_FLAGS: list[tuple[str, object, str]] = [
    ("host", str, "address to listen on (0.0.0.0 or [::] for every interface)"),
    ("port", int, "port to listen on (0 picks a free one; the log says which)"),
    (
        "device",
        str,
        "default device of new sessions: cpu, cuda:N, or cuda (each new session on the GPU with "
        "the most free memory)",
    ),
    ("max_sessions", int, "sessions held at once"),
    ("max_session_bytes", parse_size, "bytes of tensors one session may hold (e.g. 2G)"),
    ("max_session_tensors", int, "handles one session may hold"),
    ("idle_ttl", float, "seconds without a call before a session is closed"),
    (
        "orphan_ttl",
        float,
        "seconds a session outlives its client's last ExecuteStream ended without a close",
    ),
    ("grace", float, "seconds running calls get to finish on SIGTERM"),
    ("admin_token", str, "token for ListSessions (prefer GRADD_ADMIN_TOKEN: flags show in ps)"),
    (
        "workers",
        int,
        "threads for session calls (each open stream holds one); 0: enough for every session's "
        "allowance (max-sessions x (4 + max-watchers))",
    ),
    ("max_message_bytes", parse_size, "largest request or response message (at most 2G-1)"),
    ("max_watchers", int, "Watch streams one session may have open"),
    ("watch_queue", int, "events a watcher's queue holds before dropping the oldest"),
    ("log_level", str, "debug, info, warning or error"),
    ("log_format", str, "text, or json: one JSON object per line, with session ids"),
    ("metrics_port", int, "port of the Prometheus /metrics endpoint on --host (0: off)"),
    ("tls_cert", str, "PEM certificate chain of the server: serve TLS only (with --tls-key)"),
    ("tls_key", str, "PEM private key of --tls-cert"),
    (
        "tls_client_ca",
        str,
        "PEM CA certificates that sign client certificates: mutual TLS, every client must "
        "present one (needs --tls-cert)",
    ),
    (
        "state_dir",
        str,
        "directory where sessions are kept across restarts (empty: off; docs/operations.md)",
    ),
    ("checkpoint_every", float, "seconds between snapshots of a changed session (--state-dir)"),
]


def parse_config(argv: Sequence[str] | None = None, env: dict | None = None) -> ServerConfig:
    """The configuration from flags, then GRADD_* environment variables, then defaults."""
    env = os.environ if env is None else env
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(
        prog="gradd-server", description="gradd, the autograd daemon: serve gradd.v1 over gRPC."
    )
    for name, kind, text in _FLAGS:
        var = f"GRADD_{name.upper()}"
        default = getattr(defaults, name)
        if var in env:
            try:
                default = kind(env[var])  # type: ignore[operator]
            except (ValueError, argparse.ArgumentTypeError) as exc:
                parser.error(f"{var}={env[var]!r}: {exc}")
        shown = "(set)" if name == "admin_token" and default else repr(default)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=default,
            help=f"{text} [env {var}; now {shown}]",
        )
    config = ServerConfig(**vars(parser.parse_args(argv)))
    if config.log_format not in ("text", "json"):
        parser.error(f"--log-format must be text or json, not {config.log_format!r}")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", config.device):
        parser.error(f"--device must be cpu, cuda or cuda:N, not {config.device!r}")
    if not 0 < config.max_message_bytes < 1 << 31:
        parser.error("--max-message-bytes must be between 1 and 2G-1 (gRPC's limit)")
    if min(config.max_sessions, config.watch_queue, config.max_watchers) < 1:
        parser.error("--max-sessions, --watch-queue and --max-watchers must be >= 1")
    if config.checkpoint_every <= 0:
        parser.error("--checkpoint-every must be > 0 seconds")
    if config.workers < 0 or config.orphan_ttl <= 0 or config.grace < 0:
        parser.error("--workers must be >= 0 (0: automatic), --orphan-ttl > 0, --grace >= 0")
    if bool(config.tls_cert) != bool(config.tls_key):
        parser.error("--tls-cert and --tls-key go together (the certificate and its key)")
    if config.tls_client_ca and not config.tls_cert:
        parser.error("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
    return config


def session_threads(config: ServerConfig) -> int:
    """Threads for session calls: --workers, or (0) every session's whole allowance at once."""
    per_session = UNARY_CALLS_PER_SESSION + EXECUTE_STREAMS_PER_SESSION + config.max_watchers
    return config.workers or config.max_sessions * per_session
