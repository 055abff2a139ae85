"""Every package folder ships: pyproject's explicit package list misses none."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = set()
    for name, folder in cfg["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert found <= listed, f"missing from pyproject's packages: {sorted(found - listed)}"


def test_make_demo_installs_gradd_alone(tmp_path: Path) -> None:
    """`make demo` in a fresh clone: gradd and its dependencies, not the dev extra or torch."""
    import subprocess

    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "-n", "demo", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    installs = [line for line in done.stdout.splitlines() if " install " in line]
    assert any(line.rstrip().endswith("install -q -e .") for line in installs), installs
    assert not any("[dev]" in line or "torch" in line for line in installs), installs
    assert "examples/demo.py" in done.stdout


def test_the_dashboard_page_ships_with_the_package() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "dashboard_static/*" in cfg["package-data"]["gradd"]
    static = ROOT / "client" / "dashboard_static"
    names = {p.name for p in static.iterdir()}
    assert {"index.html", "dashboard.js", "uPlot.iife.min.js", "uPlot.LICENSE"} <= names
    assert "MIT License" in (static / "uPlot.LICENSE").read_text()
