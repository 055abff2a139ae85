"""PyTorch's beginner autograd tutorials under ``import gradd.torch as torch``, with only the
import changed, embedded and on a server: they print PyTorch's output (recorded in
tests/sdk/tutorials/*.out from torch 2.13; a test re-runs them with torch where installed).

Float32 sums over thousands of elements are added in another order than PyTorch's, so printed
losses are compared to a relative tolerance per tutorial; everything else must be equal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .test_torch_module import check_session_line, gradd_variant, run_script, target_for

HERE = Path(__file__).resolve().parent / "tutorials"
# Tutorial -> relative tolerance of its printed numbers (0: equal).
TUTORIALS = {
    "polynomial_autograd": 1e-5,  # 2000 points, 2000 steps
    "two_layer_net_autograd": 2e-2,  # losses of 3e-5 after 500 steps of 64x1000 products
    "autogradqs": 0,
    "blitz_autograd": 0,
}
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]\d+)?")


def same_output(got: str, want: str, rtol: float) -> None:
    """Equal text, object addresses aside; numbers within ``rtol``."""
    got, want = (re.sub(r"0x[0-9a-f]+", "0x...", s) for s in (got, want))
    if rtol == 0:
        assert got == want
        return
    assert NUMBER.sub("#", got) == NUMBER.sub("#", want)
    values = [float(v) for v in NUMBER.findall(got)]
    expected = [float(v) for v in NUMBER.findall(want)]
    np.testing.assert_allclose(values, expected, rtol=rtol, atol=1e-6)


@pytest.mark.cpu_only("PyTorch's CPU random numbers")
@pytest.mark.parametrize("mode", ["embedded", "remote"])
@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_runs_with_only_the_import_changed(
    name: str, mode: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source = (HERE / f"{name}.py").read_text()
    script = tmp_path / f"{name}.py"
    script.write_text(gradd_variant(source))
    assert "import gradd.torch as torch" in script.read_text()
    target = target_for(mode, request)
    out = check_session_line(run_script(script, target=target), mode, target)
    same_output(out, (HERE / f"{name}.out").read_text(), TUTORIALS[name])


@pytest.mark.parametrize("name", TUTORIALS)
def test_recorded_outputs_are_pytorchs(name: str) -> None:
    pytest.importorskip("torch")
    done = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py")], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    same_output(done.stdout, (HERE / f"{name}.out").read_text(), 0)
