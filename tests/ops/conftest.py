"""Shared by the container tests: their step timings, printed at the end of the run."""

import pytest

_TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def container_timings() -> dict[str, float]:
    """Seconds per slow step (debootstrap, builds, compose up), filled in by the tests."""
    return _TIMINGS


def pytest_terminal_summary(terminalreporter) -> None:
    if _TIMINGS:
        steps = ", ".join(f"{name} {secs:.0f} s" for name, secs in _TIMINGS.items())
        terminalreporter.write_line(f"container tests: {steps}")
