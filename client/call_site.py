"""Where the user's code called the SDK: the (file, line) named when the server reports that a
queued op failed. Found by walking out of gradd's own frames, in well under a microsecond."""

from __future__ import annotations

import os
import sys
from typing import Any

_ROOTS = tuple(
    os.path.dirname(os.path.abspath(p)) + os.sep
    for p in (__file__, sys.modules["gradd.engine"].__file__ or "")
)
_internal_files: dict[str, bool] = {}
_internal_codes: set[Any] = set()  # code objects of generated functions (their file is "<string>")
_getframe = sys._getframe


def mark_internal(fn: Any) -> None:
    """Treat frames of ``fn`` (e.g. the op table's generated callers) as gradd's own."""
    code = getattr(fn, "__code__", None)
    if code is not None:
        _internal_codes.add(code)


def _is_internal(code: Any) -> bool:
    if code in _internal_codes:
        return True
    name = code.co_filename
    known = _internal_files.get(name)
    if known is None:
        known = _internal_files[name] = os.path.abspath(name).startswith(_ROOTS)
    return known


def user_site(depth: int = 2) -> tuple[str, int]:
    """(filename, line) of the nearest caller outside gradd, ``depth`` frames up at least."""
    f = _getframe(depth)
    code = f.f_code
    if code in _internal_codes or _internal_files.get(code.co_filename, True):
        last = f
        while f is not None and _is_internal(f.f_code):
            last = f
            f = f.f_back
        if f is None:
            f = last
    return f.f_code.co_filename, f.f_lineno
