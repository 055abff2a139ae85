"""All sessions of a server: open, look up by id and token, close, and expire idle ones.

Tokens are never logged, and the store keeps them only as SHA-256 digests (an index from digest
to session, so a call's token is resolved before its body is read). A caller learns whether a
session exists only by holding its token (or the admin token). A background reaper closes
sessions idle past their TTL, and orphans (their client's stream ended without CloseSession)
past the orphan TTL, freeing their tensors.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict
from typing import TYPE_CHECKING, Any

import gradd.engine as ge
import grpc
from gradd.v1 import service_pb2 as spb

from . import (
    programs,  # noqa: F401  (registers the programs a session snapshot keeps)
    state_dir,
)
from .config import ServerConfig
from .errors import ServiceError, exhausted, invalid, not_found, shown
from .session import Session
from .session_snapshot import restore

if TYPE_CHECKING:
    from .checkpoints import Checkpointer

log = logging.getLogger("gradd.server")
_SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_LABEL = 256  # characters: a label is shown in ListSessions and the log
CLOSED_TOKENS_KEPT = 10_000  # closed sessions whose token still answers NOT_FOUND
ADMIN = "admin"  # the owner of the admin token (see `owner`)
WRONG_TOKEN = "missing or wrong token: send metadata 'authorization: Bearer <token>'"


def token_digest(token: str) -> bytes:
    """The digest the store keeps instead of a token."""
    return hashlib.sha256(token.encode()).digest()


class ClosedSession:
    """What the store remembers of a closed session: enough to say so to its token's holder."""

    __slots__ = ("id", "reason")

    def __init__(self, session_id: str, reason: str) -> None:
        self.id = session_id
        self.reason = reason


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
        self._by_token: dict[bytes, Session] = {}
        self._closed: OrderedDict[bytes, ClosedSession] = OrderedDict()
        self._lock = threading.Lock()
        # Set when the grace period of a shutdown is over: running batches stop between commands.
        self.interrupt = threading.Event()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        # Durable sessions (--state-dir): set by the server; restored sessions wait here, by id,
        # until their client's token (checked against the stored hash) claims them.
        self.checkpointer: Checkpointer | None = None
        self._unclaimed: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, request: spb.CreateSessionRequest) -> tuple[Session, str]:
        """Open a session as asked, within the server's limits: the session and its token."""
        cfg = self.config
        device = request.device or cfg.device
        if device not in self.devices:
            raise invalid(
                f"device {shown(device)} is not available; this server has {self.devices}"
            )
        if device == "cuda":
            device = self._roomiest_gpu()
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
        token = secrets.token_urlsafe(32)
        session = Session(
            session_id,
            token_digest(token),
            device=device,
            seed=seed,
            max_bytes=max_bytes,
            max_tensors=max_tensors,
            idle_ttl=request.idle_ttl_seconds or cfg.idle_ttl,
            label=request.label,
            max_watchers=cfg.max_watchers,
            interrupt=self.interrupt,
            max_answer_bytes=cfg.max_message_bytes,
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
            self._by_token[session.token_digest] = session
        if self.checkpointer is not None:
            self._write_created(session, token)
        log.info("session %s opened on %s (label %s)", session_id, device, shown(request.label))
        return session, token

    def _write_created(self, session: Session, token: str) -> None:
        """Put a new session on disk before CreateSession answers (UNAVAILABLE if it fails)."""
        session.manifest = {
            "session_id": session.id,
            "label": session.label,
            "device": session.device,
            "seed": session.seed,
            "limits": {
                "max_bytes": session.table.max_bytes,
                "max_tensors": session.table.max_tensors,
            },
            "idle_ttl": session.idle_ttl,
            "token": state_dir.token_record(token),
            "created_unix": time.time(),
            "durable_sequence": 0,
        }
        try:
            with self.checkpointer.disk:
                self.checkpointer.state.write_created(session.manifest)
        except OSError as exc:
            with self._lock:
                self._sessions.pop(session.id, None)
                self._by_token.pop(session.token_digest, None)
            log.error("session %s: cannot write its state: %s", session.id, exc)
            raise ServiceError(
                grpc.StatusCode.UNAVAILABLE, "the server cannot write the session's state now"
            ) from None

    def restore_all(self) -> int:
        """Reopen every session of the state directory (before serving); how many."""
        state = self.checkpointer.state
        restored = 0
        for folder, manifest, arrays in state.load_all():
            try:
                session = self._restored(manifest, arrays)
            except Exception as exc:  # over a limit, a device gone, an inconsistent snapshot
                state.skip(folder, f"{type(exc).__name__}: {exc}")
                continue
            with self._lock:
                self._sessions[session.id] = session
                self._unclaimed[session.id] = session
            restored += 1
            log.info(
                "session %s restored (sequence %d, %d tensors, %d steps)",
                session.id,
                session.durable_seq,
                len(session.table),
                session.steps,
            )
        return restored

    def _restored(self, manifest: dict[str, Any], arrays: dict) -> Session:
        cfg = self.config
        if len(self._sessions) >= cfg.max_sessions:
            raise exhausted(f"server session limit {cfg.max_sessions} reached")
        device = str(manifest["device"])
        if device not in self.devices:
            raise invalid(f"device {device!r} is not available; this server has {self.devices}")
        limits = manifest["limits"]
        session = Session(
            str(manifest["session_id"]),
            b"",  # its token's digest is known once its client comes back with it
            device=device,
            seed=int(manifest["seed"]),
            max_bytes=min(int(limits["max_bytes"]), cfg.max_session_bytes),
            max_tensors=min(int(limits["max_tensors"]), cfg.max_session_tensors),
            idle_ttl=min(float(manifest["idle_ttl"]), cfg.idle_ttl),
            label=str(manifest["label"]),
            max_watchers=cfg.max_watchers,
            interrupt=self.interrupt,
            max_answer_bytes=cfg.max_message_bytes,
        )
        if "tensors" in manifest:
            with session.lock:
                restore(session, manifest, arrays)
        session.manifest = manifest
        session.applied_seq = session.durable_seq = int(manifest["durable_sequence"])
        session.orphaned_since = time.monotonic()  # closed after --orphan-ttl if nobody returns
        return session

    def _claim(self, session_id: str, token: str, digest: bytes) -> Session | None:
        """A restored session whose stored token hash `token` matches, now indexed by it."""
        session = self._unclaimed.get(session_id)
        if session is None or not state_dir.token_matches(session.manifest["token"], token):
            return None
        with self._lock:
            if self._unclaimed.pop(session_id, None) is not session:
                return self._by_token.get(digest)
            session.token_digest = digest
            self._by_token[digest] = session
        log.info("session %s resumed by its client", session_id)
        return session

    def _roomiest_gpu(self) -> str:
        """The GPU for a new session asking for "cuda": the most free memory, then the fewest
        sessions (sessions made back to back have allocated nothing yet)."""
        gpus = [d for d in self.devices if d.startswith("cuda:")]
        sessions = Counter(s.device for s in self.sessions())
        return max(gpus, key=lambda d: (ge.cuda_free_bytes(int(d[5:])), -sessions[d]))

    def owner(
        self, token: str | None, session_id: str = ""
    ) -> Session | ClosedSession | str | None:
        """Whose token this is: an open session, a recently closed one, ADMIN, or None.

        `session_id` (the call's x-gradd-session header, or its request's id) lets a session
        restored from the state directory be claimed by its token."""
        if not token:
            return None
        if self.is_admin(token):
            return ADMIN
        digest = token_digest(token)
        found = self._by_token.get(digest) or self._closed.get(digest)
        if found is None and session_id and self._unclaimed:
            return self._claim(session_id, token, digest)
        return found

    def get(self, session_id: str, token: str | None) -> Session:
        """The session, if `token` is its token or the admin token.

        Only the holder of a session's token (or of the admin token) learns whether that id is
        open: any other token gets UNAUTHENTICATED, whether or not the id exists.
        """
        owner = self.owner(token, session_id)
        if owner == ADMIN:
            session = self._sessions.get(session_id)
            if session is None:
                raise not_found(f"session {shown(session_id)} not found (closed or expired)")
            return session
        if owner is None or owner.id != session_id:
            raise ServiceError(grpc.StatusCode.UNAUTHENTICATED, WRONG_TOKEN)
        if isinstance(owner, ClosedSession):
            raise not_found(f"session {owner.id!r} not found ({owner.reason})")
        return owner

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
            if self._unclaimed.pop(session.id, None) is None:
                del self._by_token[session.token_digest]
                self._closed[session.token_digest] = ClosedSession(session.id, reason)
            while len(self._closed) > CLOSED_TOKENS_KEPT:
                self._closed.popitem(last=False)
        with session.lock:  # waits for a running batch: it finishes before the tensors go
            session.close(reason)
        if self.checkpointer is not None and reason != "shutdown":
            self.checkpointer.remove(session)  # a shutdown keeps it for the next start
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
            ttls = [s.idle_ttl for s in sessions] + [self.config.orphan_ttl]
            shortest = min(ttls, default=self.config.idle_ttl)
            # Wake often enough that a session outlives its TTL by at most a quarter of it.
            if self._stop.wait(min(1.0, max(0.05, shortest / 4))):
                return
            now = time.monotonic()
            orphan_ttl = self.config.orphan_ttl
            for session in sessions:
                if session.lock.locked():
                    continue
                if session.idle_for(now) > session.idle_ttl:
                    self.close(session, "expired")
                elif session.orphaned_for(now) > orphan_ttl:
                    self.close(session, "orphaned")
