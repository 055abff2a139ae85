"""All sessions of a server: open, look up by id and token, close, and expire idle ones.

Tokens are compared in constant time and never logged. A background reaper closes sessions
idle past their TTL, freeing their tensors.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time

import grpc
from gradd.v1 import service_pb2 as spb

from .config import ServerConfig
from .errors import ServiceError, exhausted, invalid, not_found, shown
from .session import Session

log = logging.getLogger("gradd.server")
_SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_LABEL = 256  # characters: a label is shown in ListSessions and the log


def _limit(asked: int, maximum: int, name: str) -> int:
    if asked < 0 or asked > maximum:
        raise invalid(f"{name} {asked} is outside 0..{maximum} (0: the server's maximum)")
    return asked or maximum


class SessionStore:
    """The server's sessions, by id."""

    def __init__(self, config: ServerConfig, devices: list[str]) -> None:
        self.config = config
        self.devices = devices
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, request: spb.CreateSessionRequest) -> Session:
        """Open a session as asked, within the server's limits."""
        cfg = self.config
        device = request.device or cfg.device
        if device not in self.devices:
            raise invalid(
                f"device {shown(device)} is not available; this server has {self.devices}"
            )
        limits = request.limits
        max_bytes = _limit(limits.max_bytes, cfg.max_session_bytes, "limits.max_bytes")
        max_tensors = _limit(limits.max_tensors, cfg.max_session_tensors, "limits.max_tensors")
        if not 0 <= request.idle_ttl_seconds <= cfg.idle_ttl:
            ttl = request.idle_ttl_seconds
            raise invalid(f"idle_ttl_seconds {ttl} is outside 0..{cfg.idle_ttl}")
        if len(request.label) > MAX_LABEL:
            raise invalid(f"label has at most {MAX_LABEL} characters, got {shown(request.label)}")
        session_id = request.session_id or secrets.token_hex(8)
        if not _SESSION_ID.fullmatch(session_id):
            raise invalid(
                f"session_id must be 1 to 64 of A-Z a-z 0-9 . _ -, got {shown(session_id)}"
            )
        seed = request.seed if request.HasField("seed") else secrets.randbits(63)
        session = Session(
            session_id,
            secrets.token_urlsafe(32),
            device=device,
            seed=seed,
            max_bytes=max_bytes,
            max_tensors=max_tensors,
            idle_ttl=request.idle_ttl_seconds or cfg.idle_ttl,
            label=request.label,
            max_watchers=cfg.max_watchers,
        )
        with self._lock:
            if len(self._sessions) >= cfg.max_sessions:
                raise exhausted(
                    f"server session limit: {len(self._sessions)} sessions open, the limit is "
                    f"{cfg.max_sessions}; close one or try later"
                )
            if session_id in self._sessions:
                raise ServiceError(
                    grpc.StatusCode.ALREADY_EXISTS, f"session {session_id!r} already exists"
                )
            self._sessions[session_id] = session
        log.info("session %s opened on %s (label %s)", session_id, device, shown(request.label))
        return session

    def get(self, session_id: str, token: str | None) -> Session:
        """The session, if `token` is its token or the admin token."""
        session = self._sessions.get(session_id)
        if session is None:
            raise not_found(
                f"session {shown(session_id)} not found (never opened, closed or expired)"
            )
        if not token or not (
            hmac.compare_digest(token.encode(), session.token.encode()) or self.is_admin(token)
        ):
            raise ServiceError(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong token: send metadata 'authorization: Bearer <token>'",
            )
        return session

    def is_admin(self, token: str | None) -> bool:
        """Whether `token` is the server's admin token (never true when none is set)."""
        admin = self.config.admin_token
        return bool(admin and token) and hmac.compare_digest(token.encode(), admin.encode())

    def sessions(self) -> list[Session]:
        """Every open session."""
        return list(self._sessions.values())

    def close(self, session: Session, reason: str) -> bool:
        """Close a session and free its tensors; False if it was already gone."""
        with self._lock:
            if self._sessions.get(session.id) is not session:
                return False
            del self._sessions[session.id]
        with session.lock:  # waits for a running batch: it finishes before the tensors go
            session.close(reason)
        log.info("session %s closed (%s, %d steps)", session.id, reason, session.steps)
        return True

    def close_all(self, reason: str) -> None:
        """Close every session (on shutdown)."""
        for session in self.sessions():
            self.close(session, reason)

    def end_watchers(self, reason: str) -> None:
        """End every Watch stream now, leaving the sessions open (shutdown starts)."""
        for session in self.sessions():
            session.hub.end(reason)

    def start_reaper(self) -> None:
        """Start the background thread that closes idle sessions."""
        self._reaper = threading.Thread(target=self._reap_loop, name="gradd-reaper", daemon=True)
        self._reaper.start()

    def stop_reaper(self) -> None:
        """Stop the reaper thread."""
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=5)

    def _reap_loop(self) -> None:
        while True:
            sessions = self.sessions()
            shortest = min((s.idle_ttl for s in sessions), default=self.config.idle_ttl)
            # Wake often enough that a session outlives its TTL by at most a quarter of it.
            if self._stop.wait(min(1.0, max(0.05, shortest / 4))):
                return
            now = time.monotonic()
            for session in sessions:
                if session.idle_for(now) > session.idle_ttl and not session.lock.locked():
                    self.close(session, "expired")
