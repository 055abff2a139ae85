"""``gradd.make_dot``: the graph behind a tensor, drawn as torchviz draws it.

Engine tensors are drawn by the engine; a remote tensor's picture is the server's snapshot,
turned into the engine's ``GraphPicture`` so that ``.source``, ``.render()`` and Jupyter display
work the same for both.
"""

from __future__ import annotations

from typing import Any

from gradd.engine.graph_picture import (
    LEAF_COLOR,
    OP_COLOR,
    ROOT_COLOR,
    GraphNode,
    GraphPicture,
)
from gradd.engine.graph_picture import make_dot as engine_make_dot

from .remote_tensor import RemoteTensor

_KINDS = {ROOT_COLOR: "root", OP_COLOR: "op", LEAF_COLOR: "leaf"}


def picture_of(snapshot: Any) -> GraphPicture:
    """A gradd.v1 GraphSnapshot as the engine's GraphPicture."""
    picture = GraphPicture()
    for n in snapshot.nodes:
        picture.nodes.append(GraphNode(n.id, n.label, n.fillcolor, _KINDS.get(n.fillcolor, "op")))
    picture.edges.extend((e.src, e.dst) for e in snapshot.edges)
    return picture


def make_dot(var: Any, params: dict[str, Any] | None = None) -> GraphPicture:
    """Draw the graph that produced ``var``: the root op green, other ops gray, leaves that
    require grad light blue with their ``params`` name and shape; ``.render(path)`` needs dot."""
    if type(var) is RemoteTensor:
        return var._s._graph(var, params or {})
    if isinstance(var, (tuple, list)) and any(type(v) is RemoteTensor for v in var):
        raise TypeError("make_dot of a remote tensor takes one tensor, not a tuple")
    return engine_make_dot(var, params)
