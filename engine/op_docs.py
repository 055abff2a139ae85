"""The README's op table, generated from the op table: ``python -m gradd.engine.op_docs``."""

from __future__ import annotations

from .functional import is_functional
from .linalg import PREFIX as LINALG_PREFIX
from .methods import OPERATORS
from .op_table import OPS

BEGIN, END = "<!-- ops-table:begin -->", "<!-- ops-table:end -->"


def ops_markdown() -> str:
    """One row per public op: name, how to call it, PyTorch's grad_fn, what it does."""
    operators: dict[str, list[str]] = {}
    for dunder, (name, _) in OPERATORS.items():
        operators.setdefault(name, []).append(f"`{dunder}`")
    rows = ["| op | Tensor method / operators | grad_fn | what it does |", "|---|---|---|---|"]
    for name in sorted(OPS):  # public ops only: internal ones (index, max_dim...) are not in OPS
        d = OPS[name]
        calls = []
        if d.method and not d.method.startswith("__"):
            calls.append(f"`t.{d.method}()`")
        calls += operators.get(name, [])
        if is_functional(name):
            calls.append(f"`F.{name}()`")
        elif name.startswith(LINALG_PREFIX):
            calls.append(f"`linalg.{name.removeprefix(LINALG_PREFIX)}()`")
        elif d.function and not d.method:
            calls.append(f"`{name}()`")
        grad = d.grad_fn_name or ("(composite)" if d.shape is None else "no gradient")
        doc = d.doc.replace("|", "\\|")
        rows.append(f"| `{name}` | {', '.join(calls) or '—'} | {grad} | {doc} |")
    return "\n".join(rows)


def main() -> None:
    print(BEGIN)
    print(ops_markdown())
    print(END)


if __name__ == "__main__":
    main()
