"""The server's log lines: plain text, or one JSON object per line (`--log-format json`).

JSON lines carry the session id as its own field, so a log system can follow one session.
Tokens are never logged by the server; as a second guard, anything that looks like a bearer
token or a `token=` value is masked before a line is written, in either format.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_SECRET = re.compile(r"""(?i)(bearer\s+|\btoken=|["']token["']\s*:\s*["'])[^\s"',;)]+""")
_SESSION_ARG = re.compile(r"\bsession %[sr]")
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def mask_secrets(text: str) -> str:
    """`text` with bearer tokens and `token=...` values replaced by `<redacted>`."""
    return _SECRET.sub(r"\1<redacted>", text)


def session_id_of(record: logging.LogRecord) -> str | None:
    """The session a record is about: `extra={"session_id": ...}`, or the argument that
    fills "session %s" in the message template (how the server's log calls name sessions)."""
    explicit = getattr(record, "session_id", None)
    if explicit:
        return str(explicit)
    if not isinstance(record.msg, str) or not isinstance(record.args, tuple):
        return None
    match = _SESSION_ARG.search(record.msg)
    if match is None:
        return None
    before = record.msg[: match.start()]
    index = before.count("%") - 2 * before.count("%%")
    return str(record.args[index]) if index < len(record.args) else None


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, session_id, exc, and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_secrets(record.getMessage()),
        }
        session_id = session_id_of(record)
        if session_id:
            entry["session_id"] = session_id
        for key, value in vars(record).items():
            if key in _STANDARD or key in entry:
                continue
            entry[key] = "<redacted>" if "token" in key.lower() else _plain(value)
        if record.exc_info:
            entry["exc"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class MaskingFormatter(logging.Formatter):
    """The text format, with the same masking of secrets as the JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return mask_secrets(value) if isinstance(value, str) else value
    return mask_secrets(repr(value))


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send the process's logs to stderr at `level`, as text lines or JSON lines."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else MaskingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
