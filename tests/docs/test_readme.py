"""The README stays true: its op table is the one the op table generates."""

from __future__ import annotations

from pathlib import Path

from gradd.engine.op_docs import BEGIN, END, ops_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_op_table_matches_the_op_table() -> None:
    text = README.read_text()
    assert BEGIN in text and END in text, "README lost its generated op table markers"
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == ops_markdown().strip(), (
        "README's op table is stale: run `python -m gradd.engine.op_docs` and paste it"
    )


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_readme_gradd_torch_example_runs_as_pasted() -> None:
    """The `import gradd.torch as torch` section's program prints what its comment says."""
    import os
    import subprocess
    import sys

    section = README.read_text().split("## `import gradd.torch as torch`", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    env = {k: v for k, v in os.environ.items() if k != "GRADD_TARGET"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tensor(0.0058, grad_fn=<MseLossBackward0>) <gradd embedded")
