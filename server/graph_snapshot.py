"""Graph snapshots: `gradd.engine.make_dot` as a gradd.v1 GraphSnapshot, with a signature of its
structure so that watchers can be told when the graph's shape changes."""

from __future__ import annotations

import hashlib
from typing import Any

import gradd.engine as ge
from gradd.v1 import graph_pb2 as gpb


def snapshot(tensor: Any, params: dict[str, Any] | None = None) -> gpb.GraphSnapshot:
    """The picture of the graph behind `tensor` (leaves labelled from `params`)."""
    picture = ge.make_dot(tensor, params=params or None)
    graph = gpb.GraphSnapshot(dot=picture.source)
    order: dict[str, int] = {}
    for node in picture.nodes:
        node_id = str(node.id)
        order[node_id] = len(order)
        graph.nodes.add(
            id=node_id,
            label=str(node.label),
            fillcolor=str(node.fillcolor or ""),
            kind=str(getattr(node, "kind", "") or ""),
        )
    for src, dst in picture.edges:
        graph.edges.add(src=str(src), dst=str(dst))
    graph.signature = _signature(graph, order)
    return graph


def _signature(graph: gpb.GraphSnapshot, order: dict[str, int]) -> str:
    # Ids differ from step to step (they name live objects); positions in make_dot's
    # deterministic walk do not, so the structure is the labels, colours and edges by position.
    digest = hashlib.sha256()
    for node in graph.nodes:
        digest.update(f"{node.label}\x1f{node.fillcolor}\x1e".encode())
    for edge in graph.edges:
        digest.update(f"{order.get(edge.src, -1)}>{order.get(edge.dst, -1)};".encode())
    return digest.hexdigest()[:16]
