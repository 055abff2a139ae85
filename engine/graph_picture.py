"""``make_dot``: a tensor's graph drawn as torchviz draws it.

The root op is green (``darkolivegreen1``), other ops gray (``lightgray``), leaves that require
grad light blue (``lightblue``) and labelled with their name from ``params`` and their shape like
``(80, 1)``; tensors that need no grad never appear. The structured form (``nodes``, ``edges``)
is what the server sends; ``source`` is Graphviz DOT text and ``render`` draws it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .function_node import OutputEdge
from .node import AccumulateGrad

ROOT_COLOR, OP_COLOR, LEAF_COLOR = "darkolivegreen1", "lightgray", "lightblue"
NODE_ATTR = (
    "style=filled shape=box align=left fontsize=12 ranksep=0.1 height=0.2 fontname=monospace"
)


@dataclass(frozen=True)
class GraphNode:
    """One box: ``kind`` is "root", "op" or "leaf"."""

    id: str
    label: str
    fillcolor: str
    kind: str


@dataclass
class GraphPicture:
    """A drawn graph: nodes, edges (from input to consumer, as torchviz) and DOT text."""

    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)

    @property
    def source(self) -> str:
        lines = ["digraph {", f"\tnode [{NODE_ATTR}]", '\tgraph [size="12,12"]']
        for n in self.nodes:
            lines.append(f"\t{n.id} [label={_quote(n.label)} fillcolor={n.fillcolor}]")
        for a, b in self.edges:
            lines.append(f"\t{a} -> {b}")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def signature(self) -> str:
        """A digest of the graph's structure (labels and wiring), to notice when it changes."""
        text = (
            "|".join(f"{n.id}:{n.label}" for n in self.nodes)
            + "#"
            + "|".join(f"{a}>{b}" for a, b in self.edges)
        )
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def render(self, path: str | Path, format: str = "svg") -> Path:  # noqa: A002
        """Write the picture to ``path`` (suffix added if missing) with Graphviz's ``dot``."""
        out = Path(path)
        if out.suffix != f".{format}":
            out = out.with_name(out.name + f".{format}")
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(
                "rendering needs Graphviz's `dot` program (apt-get install graphviz); "
                "the DOT text is in .source"
            )
        subprocess.run(
            [dot, f"-T{format}", "-o", str(out)],
            input=self.source.encode(),
            check=True,
            capture_output=True,
        )
        return out

    def _repr_svg_(self) -> str:  # Jupyter shows the picture inline
        dot = shutil.which("dot")
        if dot is None:
            return f"<pre>{self.source}</pre>"
        return subprocess.run(
            [dot, "-Tsvg"], input=self.source.encode(), check=True, capture_output=True
        ).stdout.decode()


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def size_to_str(shape: tuple) -> str:
    """torchviz's shape label: ``(80, 1)``."""
    return "(" + ", ".join(str(int(v)) for v in shape) + ")"


def _node(fn: Any) -> Any:
    # One output of a several-output custom Function is drawn as the function's one node.
    return fn.fn if type(fn) is OutputEdge else fn


def make_dot(var: Any, params: dict[str, Any] | None = None) -> GraphPicture:
    """Draw the graph that produced ``var`` (or several outputs, given a tuple)."""
    names = {id(v): k for k, v in (params or {}).items()}
    pic = GraphPicture()
    ids: dict[int, str] = {}
    roots = var if isinstance(var, (tuple, list)) else (var,)
    root_fns = {id(_node(v.grad_fn)) for v in roots if v.grad_fn is not None}

    def node_id(fn: Any) -> tuple[str, bool]:
        key = id(fn)
        if key in ids:
            return ids[key], False
        ids[key] = f"n{len(ids)}"
        return ids[key], True

    stack = [_node(v.grad_fn) for v in roots if v.grad_fn is not None]
    # Leaves passed directly (a leaf that requires grad is its own graph).
    for v in roots:
        if v.grad_fn is None and v.requires_grad:
            nid, _ = node_id(v)
            pic.nodes.append(
                GraphNode(
                    nid, f"{names.get(id(v), '')}\n {size_to_str(v.shape)}", LEAF_COLOR, "leaf"
                )
            )
    visited: set[int] = set()
    while stack:
        fn = stack.pop()
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        nid, _ = node_id(fn)
        if type(fn) is AccumulateGrad:
            leaf = fn.variable
            label = f"{names.get(id(leaf), '')}\n {size_to_str(leaf.shape)}"
            pic.nodes.append(GraphNode(nid, label, LEAF_COLOR, "leaf"))
            continue
        root = id(fn) in root_fns
        pic.nodes.append(
            GraphNode(nid, fn.name(), ROOT_COLOR if root else OP_COLOR, "root" if root else "op")
        )
        for nxt in fn.next:
            if nxt is None:
                continue
            nxt = _node(nxt)
            src, _ = node_id(nxt)
            pic.edges.append((src, nid))
            stack.append(nxt)
    return pic
