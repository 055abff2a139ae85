"""Fixtures of the engine suite."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Garbage collection off: memory is freed by reference counting alone, as it is counted."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
