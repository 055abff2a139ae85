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


def _first_python_block() -> str:
    return README.read_text().split("```python\n", 1)[1].split("```", 1)[0]


ARTICLE_PRINTS = "tensor([1.0523], requires_grad=True) tensor([1.9127], requires_grad=True)\n"


def _run_as_pasted(code: str, cwd: Path):
    import os
    import shutil
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADD_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    if shutil.which("dot"):
        assert done.returncode == 0, done.stderr
        assert (cwd / "yhat.png").read_bytes().startswith(b"\x89PNG")
    else:  # the last line draws with Graphviz: without it, its message and nothing else fails
        assert "rendering needs Graphviz's `dot` program" in done.stderr, done.stderr
    assert done.stdout == ARTICLE_PRINTS
    return done


def test_readme_first_block_runs_as_pasted(tmp_path: Path) -> None:
    """The first thing a reader tries: its own data, the article's numbers, the picture."""
    code = _first_python_block()
    assert "with gradd.connect() as s:" in code and "np.random.seed(42)" in code
    _run_as_pasted(code, tmp_path)


def test_readme_first_block_runs_on_a_server(ops_server, tmp_path: Path) -> None:
    """...and, as the README says, the same lines through a gradd-server."""
    code = _first_python_block().replace(
        "with gradd.connect() as s:", f'with gradd.connect("{ops_server.addr}") as s:'
    )
    _run_as_pasted(code, tmp_path)


def test_readme_names_the_article_and_no_file_outside_the_repository() -> None:
    text = README.read_text()
    assert '"Automatic Differentiation in PyTorch"' in text
    assert "Deep Learning with PyTorch Step-by-Step" in text
    root = README.parent
    for path in [README, root / "examples" / "README.md", *root.glob("examples/*.py")]:
        assert "shared/seed" not in path.read_text(), path


def test_readme_shell_blocks_stop_the_servers_they_start() -> None:
    """A server left on 50051 by an example breaks `docker compose up` (which publishes it)."""
    import re

    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
    started = [b for b in blocks if re.search(r"^gradd-server .*&", b, flags=re.M)]
    assert started
    for block in started:
        assert "--port 50051" not in block and "kill $SERVER" in block, block
