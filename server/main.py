"""`gradd-server`: serve gradd.v1 with health checking and reflection until SIGTERM.

On SIGTERM (or Ctrl-C) the server stops accepting calls, ends Watch streams, lets running calls
finish within the grace period, writes a last snapshot of each changed session (with
--state-dir), closes every session and exits 0. With --state-dir it restores the sessions it
finds there before it serves.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Sequence
from importlib import metadata

import gradd.engine as ge
import grpc
from gradd.v1 import service_pb2 as spb
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .admission import Admission
from .checkpoints import Checkpointer
from .command_runner import FACTORIES
from .config import ServerConfig, parse_config
from .documented_reflection import DocumentedPool
from .grpc_handlers import add_autograd_service
from .log_format import configure_logging
from .metrics import serve_metrics
from .service import AutogradService
from .session_store import SessionStore
from .state_dir import StateDir
from .tls_credentials import TlsConfigError, describe, server_credentials

log = logging.getLogger("gradd.server")
SERVICE = spb.DESCRIPTOR.services_by_name["AutogradService"].full_name


def available_devices() -> list[str]:
    """ "cpu", plus "cuda" and "cuda:0".."cuda:N-1" when the engine can reach GPUs."""
    try:
        return ge.available_devices()
    except Exception:  # no CuPy, no driver: a CPU server
        return ["cpu"]


def server_info(config: ServerConfig, devices: list[str]) -> spb.ServerInfoResponse:
    """The static part of ServerInfo."""
    info = spb.ServerInfoResponse(
        version=metadata.version("gradd"),
        devices=devices,
        default_device=config.device,
        ops=sorted(ge.OPS),
        factories=FACTORIES,
    )
    limits = info.limits
    limits.max_sessions = config.max_sessions
    limits.max_session_bytes = config.max_session_bytes
    limits.max_session_tensors = config.max_session_tensors
    limits.idle_ttl_seconds = config.idle_ttl
    limits.max_message_bytes = config.max_message_bytes
    limits.max_watchers_per_session = config.max_watchers
    limits.watch_queue_size = config.watch_queue
    return info


def _in_use(host: str, port: int) -> bool:
    """Whether binding host:port fails now (port 0 is never in use)."""
    if not port:
        return False
    try:
        addresses = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return True
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(address)
            except OSError:
                return True
    return False


class StartupError(Exception):
    """The server cannot start as configured (one line for the operator, exit status 2)."""


class GraddServer:
    """A started gRPC server with its sessions, health and reflection services."""

    def __init__(self, config: ServerConfig) -> None:
        devices = available_devices()
        if config.device not in devices:
            raise StartupError(f"device {config.device!r} unavailable; have {devices}")
        self.config = config
        try:
            credentials = server_credentials(config)
        except TlsConfigError as exc:
            raise StartupError(str(exc)) from None
        self.store = SessionStore(config, devices)
        if config.state_dir:
            try:
                state = StateDir(config.state_dir)
            except OSError as exc:
                raise StartupError(f"cannot use --state-dir {config.state_dir}: {exc}") from None
            self.store.checkpointer = Checkpointer(state, self.store, config.checkpoint_every)
        self.service = AutogradService(self.store, server_info(config, devices))
        self.health = health.HealthServicer()
        metrics = serve_metrics(config.metrics_port, config.host, self.store)
        # Admission is outermost: it decides before anything reads the request (see admission).
        self.admission = Admission(self.store, config, metrics.refused if metrics else None)
        size = config.max_message_bytes
        self.server = grpc.server(
            self.admission.pools["refusal"],  # every admitted call names its own pool
            interceptors=[self.admission, *([metrics.interceptor] if metrics else [])],
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                ("grpc.so_reuseport", 0),
            ],
        )
        add_autograd_service(self.service, self.server, AutogradService.DESERIALIZERS)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, self.server, pool=DocumentedPool())
        address = f"{config.host}:{config.port}"
        if _in_use(config.host, config.port):  # gRPC would log its own multi-line error first
            raise StartupError(f"cannot listen on {address} (in use, or not an address here)")
        try:
            if credentials is None:
                self.port = self.server.add_insecure_port(address)
            else:  # health and reflection are on this port too: they speak TLS as well
                self.port = self.server.add_secure_port(address, credentials)
        except RuntimeError:  # grpcio raises on a busy or unusable address
            self.port = 0
        if not self.port:
            raise StartupError(f"cannot listen on {address} (in use, or not an address here)")
        self._stopped = threading.Event()

    def start(self) -> None:
        """Restore the state directory's sessions, start serving, and mark the service
        SERVING."""
        checkpointer = self.store.checkpointer
        if checkpointer is not None:
            restored = self.store.restore_all()
            log.info("restored %d sessions from %s", restored, checkpointer.state.root)
            checkpointer.start()
        self.server.start()
        self.store.start_reaper()
        for name in ("", SERVICE):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "gradd-server %s listening on %s:%d (%s, device %s, %d workers)",
            self.service.info.version,
            self.config.host,
            self.port,
            describe(self.config),
            self.config.device,
            self.admission.session_threads,
        )

    def stop(self) -> None:
        """Graceful stop: refuse new calls, let running ones finish within the grace period,
        then stop running batches between commands and close every session."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        done = self.server.stop(self.config.grace)
        # Logged once new calls are refused: the line means what it says.
        log.info("shutting down: finishing running calls (grace %.1fs)", self.config.grace)
        self.service.begin_shutdown()
        self.store.end_watchers("shutdown")
        done.wait(self.config.grace)
        self.store.interrupt.set()  # batches still running stop before their next command
        self.store.stop_reaper()
        if self.store.checkpointer is not None:  # the sessions as they are now, kept on disk
            self.store.checkpointer.final()
        self.store.close_all("shutdown")
        self.admission.shutdown()
        log.info("stopped")

    def wait(self) -> None:
        """Block until the server has stopped."""
        self.server.wait_for_termination()


def main(argv: Sequence[str] | None = None) -> int:
    """Run gradd-server until SIGTERM or SIGINT; exit status 0 after a clean stop."""
    config = parse_config(argv)
    configure_logging(config.log_level, config.log_format)
    # Engine warnings (e.g. reading .grad of a non-leaf) concern the client's code, which the
    # SDK reproduces on its side; in the server they would only flood the log.
    warnings.filterwarnings("ignore", module=r"gradd\.engine")
    try:
        server = GraddServer(config)
    except StartupError as exc:
        print(f"gradd-server: {exc}", file=sys.stderr)
        return 2
    stopper = threading.Thread(target=server.stop, name="gradd-stop", daemon=True)

    def on_signal(signum: int, frame: object) -> None:
        if not stopper.is_alive() and not server._stopped.is_set():
            stopper.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    server.wait()
    stopper.join()
    # Sessions are closed: exit now rather than join worker threads that may still be inside
    # one long op of an interrupted batch (the exit must come within the grace period).
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
