"""docs/sdk.md's table of ops is the op table's: regenerate it with
``python tests/sdk/test_sdk_doc.py --write`` after adding an op."""

from __future__ import annotations

import sys
from pathlib import Path

import gradd.engine as ge
from gradd.engine import functional, linalg
from gradd.engine.methods import OPERATORS

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
START, END = "<!-- ops-table:start -->", "<!-- ops-table:end -->"
SYMBOLS = {
    "__add__": "a + b", "__radd__": "2 + a", "__iadd__": "a += b", "__sub__": "a - b",
    "__rsub__": "2 - a", "__isub__": "a -= b", "__mul__": "a * b", "__rmul__": "2 * a",
    "__imul__": "a *= b", "__truediv__": "a / b", "__rtruediv__": "2 / a",
    "__itruediv__": "a /= b", "__pow__": "a ** b", "__rpow__": "2 ** a", "__matmul__": "a @ b",
    "__rmatmul__": "x @ a", "__neg__": "-a", "__abs__": "abs(a)", "__lt__": "a < b",
    "__le__": "a <= b", "__gt__": "a > b", "__ge__": "a >= b", "__eq__": "a == b",
    "__ne__": "a != b", "__and__": "a & b", "__or__": "a | b", "__getitem__": "a[key]",
    "__setitem__": "a[key] = v",
}  # fmt: skip


def kind(d: ge.OpDef) -> str:
    tags = []
    if d.shape is None:
        tags.append("composite")
    elif d.inplace:
        tags.append("in-place")
    elif d.backward is None:
        tags.append("no gradient")
    if d.internal:
        tags.append("internal")
    return ", ".join(tags)


def ops_table() -> str:
    """The markdown table of every op in ``gradd.engine.OP_TABLE``, internal ones included."""
    operators: dict[str, list[str]] = {}
    for dunder, (name, _) in OPERATORS.items():
        operators.setdefault(name, []).append(f"`{SYMBOLS[dunder]}`")
    rows = [
        "| op | Tensor method / operator | function | grad_fn | kind | what it does |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, d in sorted(ge.OP_TABLE.items()):
        calls = [f"`a.{d.method}()`"] if d.method and not d.method.startswith("__") else []
        calls += operators.get(name, [])
        if d.function:
            prefix = "F" if d.function in functional.NAMES else "s"
            function = f"`{prefix}.{d.function}`"
        elif name.startswith(linalg.PREFIX):
            function = f"`s.linalg.{name.removeprefix(linalg.PREFIX)}`"
        else:
            function = ""
        grad_fn = f"`{d.grad_fn_name}`" if d.grad_fn_name else ""
        doc = d.doc.replace("|", "\\|") if d.doc else "(used by other ops)"
        rows.append(
            f"| `{name}` | {', '.join(calls)} | {function} | {grad_fn} | {kind(d)} | {doc} |"
        )
    return "\n".join(rows)


def documented_table() -> str:
    text = DOC.read_text()
    return text[text.index(START) + len(START) : text.index(END)].strip()


def test_doc_lists_every_op_as_the_table_declares_it() -> None:
    assert documented_table() == ops_table(), (
        "docs/sdk.md's ops table is stale: run python tests/sdk/test_sdk_doc.py --write"
    )


if __name__ == "__main__" and "--write" in sys.argv:
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{ops_table()}\n{END}{tail}")
    print(f"wrote the ops table into {DOC}")
