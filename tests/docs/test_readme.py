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
