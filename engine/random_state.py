"""Which generator random ops draw from: a default one, or a session's, per thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .generator import Generator

default_generator = Generator()
# Ops whose forward draws from the current generator (a server restores the stream when such
# an op fails after drawing).
DRAWING_OPS: set[str] = set()


class _Current(threading.local):
    gen: Generator | None = None


_current = _Current()


def current_generator() -> Generator:
    """The generator of the session running on this thread, else the process default."""
    return _current.gen or default_generator


@contextmanager
def use_generator(gen: Generator) -> Iterator[Generator]:
    """Draw randoms from ``gen`` on this thread inside the block (a server runs each session's
    commands inside one, so sessions never share a random stream)."""
    prev = _current.gen
    _current.gen = gen
    try:
        yield gen
    finally:
        _current.gen = prev


def manual_seed(seed: int) -> Generator:
    """Seed the current generator, as ``torch.manual_seed``."""
    return current_generator().manual_seed(seed)
