"""Durable sessions on disk (`gradd-server --state-dir DIR`): one directory per session.

    DIR/sessions/s-<id>/manifest.json              everything but the tensors (JSON)
    DIR/sessions/s-<id>/tensors-<N>.safetensors    the tensors of snapshot N
    DIR/skipped/                                   snapshots that could not be restored

Every file is written atomically: a temporary file, fsync, rename over the old one, fsync of
the directory. A snapshot's tensors file is written first under a new name, then the manifest
that names it (with its size and SHA-256), then the old tensors file is removed: whatever the
moment of a crash, the manifest names a complete file. Tokens are stored only as salted
PBKDF2-SHA256 hashes. A manifest that does not parse, or a tensors file that is missing or does
not match the manifest, is reported in the log, moved to DIR/skipped and never half-loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .session_snapshot import Capture

log = logging.getLogger("gradd.server")
MANIFEST = "manifest.json"
TOKEN_ITERATIONS = 50_000  # tokens are 256 random bits; the salt and rounds stop lookup tables
_HASH_CHUNK = 1 << 24


def hash_token(token: str, salt: bytes, iterations: int = TOKEN_ITERATIONS) -> bytes:
    """The salted hash a state directory keeps instead of a token."""
    return hashlib.pbkdf2_hmac("sha256", token.encode(), salt, iterations)


def token_record(token: str) -> dict[str, Any]:
    """A manifest's token entry: salt, rounds and hash (never the token)."""
    salt = secrets.token_bytes(16)
    return {
        "salt": salt.hex(),
        "iterations": TOKEN_ITERATIONS,
        "pbkdf2_sha256": hash_token(token, salt).hex(),
    }


def token_matches(record: dict[str, Any], token: str) -> bool:
    """Whether `token` is the one a token entry was made from."""
    digest = hash_token(token, bytes.fromhex(record["salt"]), int(record["iterations"]))
    return hmac.compare_digest(digest, bytes.fromhex(record["pbkdf2_sha256"]))


def _fsync(path: Path) -> None:
    """Flush a file, or a directory's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync(path.parent)


class StateDir:
    """The sessions of one state directory (one writer: the server that owns it)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.sessions = self.root / "sessions"
        self.skipped = self.root / "skipped"
        self.sessions.mkdir(parents=True, exist_ok=True)
        # Leftovers of a crash mid-write: temporary files are never read.
        for tmp in self.sessions.glob("*/.*.tmp"):
            tmp.unlink(missing_ok=True)

    def _dir(self, session_id: str) -> Path:
        return self.sessions / f"s-{session_id}"  # ids may be "." or "..": never a bare name

    def write_created(self, manifest: dict[str, Any]) -> None:
        """A new session's first manifest (no tensors), on disk before CreateSession answers."""
        folder = self._dir(manifest["session_id"])
        folder.mkdir(exist_ok=True)
        _fsync(self.sessions)
        write_atomic(folder / MANIFEST, json.dumps(manifest).encode())

    def write_snapshot(self, manifest: dict[str, Any], snap: Capture) -> int:
        """Write one snapshot (tensors, then the manifest naming them); bytes written. The
        manifest's own fields (id, token, limits) come from `manifest`, updated in place."""
        from safetensors.numpy import save_file

        folder = self._dir(snap.session_id)
        if not (folder / MANIFEST).exists():
            return 0  # closed meanwhile: nothing to keep
        old = manifest.get("tensors_file")
        generation = int(manifest.get("generation", 0)) + 1
        name = f"tensors-{generation}.safetensors"
        tmp = folder / f".{name}.tmp"
        save_file(snap.arrays, str(tmp), metadata={"format": "gradd-session-tensors/1"})
        _fsync(tmp)
        os.replace(tmp, folder / name)
        size = (folder / name).stat().st_size
        manifest.update(snap.body)
        manifest.update(
            generation=generation,
            tensors_file=name,
            tensors_bytes=size,
            tensors_sha256=_sha256(folder / name),
            durable_sequence=snap.sequence,
            written_unix=time.time(),
        )
        write_atomic(folder / MANIFEST, json.dumps(manifest).encode())
        if old and old != name:
            (folder / old).unlink(missing_ok=True)
        return size

    def remove(self, session_id: str) -> None:
        """Forget a closed session: its directory goes (renamed first, so never half-there)."""
        folder = self._dir(session_id)
        if not folder.exists():
            return
        gone = self.root / f".removed-{secrets.token_hex(4)}"
        os.replace(folder, gone)
        _fsync(self.sessions)
        shutil.rmtree(gone, ignore_errors=True)

    def skip(self, folder: Path, why: str) -> None:
        """Move a session that cannot be restored out of the way, saying why in the log."""
        log.error("state dir: %s not restored: %s; moved to %s", folder.name, why, self.skipped)
        self.skipped.mkdir(exist_ok=True)
        os.replace(folder, self.skipped / f"{folder.name}-{int(time.time())}")

    def load_all(self) -> list[tuple[Path, dict[str, Any], dict[str, np.ndarray]]]:
        """Every session found: (folder, manifest, arrays). Corrupt ones are skipped."""
        found = []
        for folder in sorted(self.sessions.iterdir()):
            if not folder.is_dir() or not folder.name.startswith("s-"):
                continue
            try:
                manifest, arrays = self._load(folder)
            except Exception as exc:  # any damage: reported and skipped, never half-loaded
                self.skip(folder, f"corrupt or partial snapshot ({type(exc).__name__}: {exc})")
                continue
            found.append((folder, manifest, arrays))
        # Remnants of removals interrupted by a crash.
        for gone in self.root.glob(".removed-*"):
            shutil.rmtree(gone, ignore_errors=True)
        return found

    def _load(self, folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from safetensors.numpy import load_file

        manifest = json.loads((folder / MANIFEST).read_bytes())
        if not isinstance(manifest, dict) or folder.name != f"s-{manifest['session_id']}":
            raise ValueError("the manifest is not this session's")
        name = manifest.get("tensors_file")
        if not name:
            return manifest, {}
        path = folder / name
        if path.parent != folder or path.stat().st_size != manifest["tensors_bytes"]:
            raise ValueError(f"{name} is not the size the manifest says")
        if _sha256(path) != manifest["tensors_sha256"]:
            raise ValueError(f"{name} does not match the manifest's SHA-256")
        return manifest, load_file(str(path))
