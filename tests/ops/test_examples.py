"""Every script in examples/ runs and exits 0: on a real gradd-server when it takes `--target`,
and embedded too where that is quick. The digits MLP must reach 95% test accuracy both ways."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python examples/SCRIPT ARGS`, with a bounded time; its output is shown on failure."""
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env={**os.environ, "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{script.name} exited {result.returncode}:\n{result.stderr}"
    return result


def takes_target(script: Path) -> bool:
    """Whether the script can train on a given server (`--target HOST:PORT`)."""
    return "--target" in script.read_text()


def test_there_are_examples():
    assert {"demo.py", "digits_mlp.py", "linear_regression.py"} <= {s.name for s in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_example_runs_on_a_server(script, ops_server, tmp_path):
    args = ("--target", ops_server.addr) if takes_target(script) else ()
    result = run(script, *args, cwd=tmp_path)
    if script.name == "digits_mlp.py":
        check_digits(result.stdout)
    elif script.name == "linear_regression.py":  # PyTorch's b and w after 200 epochs
        assert "OK: b = 1.0523, w = 1.9127" in result.stdout, result.stdout
    elif script.name == "demo.py":  # its own server, the article's numbers, a clean stop
        assert "final b = 1.0523, w = 1.9127" in result.stdout, result.stdout
        assert "gradd-server stopped (exit 0)" in result.stdout, result.stdout


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_linear_regression_with_an_optimizer(where, ops_server, tmp_path):
    """Step 4 by s.optim.SGD gives PyTorch's b and w (torch.optim.SGD's, the same here)."""
    args = ("--target", ops_server.addr) if where == "server" else ()
    result = run(EXAMPLES / "linear_regression.py", "--optimizer", *args, cwd=tmp_path)
    assert "OK: b = 1.0523, w = 1.9127" in result.stdout, result.stdout


def test_digits_embedded_and_its_loss_curve(tmp_path):
    result = run(EXAMPLES / "digits_mlp.py", "--png", str(tmp_path / "loss.png"), cwd=tmp_path)
    check_digits(result.stdout)
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG")


def check_digits(stdout: str) -> None:
    """At least 95% test accuracy, and the loss was watched while it trained."""
    accuracy = re.search(r"test accuracy: ([\d.]+)% \((\d+)/(\d+)\)", stdout)
    assert accuracy, stdout
    assert float(accuracy.group(1)) >= 95.0, stdout
    watch_lines = re.findall(r"^\[watch\] step +(\d+)  loss ([\d.]+)", stdout, re.MULTILINE)
    assert len(watch_lines) >= 3, stdout
    assert float(watch_lines[-1][1]) < float(watch_lines[0][1])
    trained = int(re.search(r"trained (\d+) steps", stdout).group(1))
    watched = int(re.search(r"watched (\d+) steps", stdout).group(1))
    # A watcher that falls behind is told what it missed rather than slowing training.
    assert trained // 2 <= watched <= trained
