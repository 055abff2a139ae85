"""A session's state as data: captured under its lock, rebuilt into a fresh session on restore.

What is kept: every tensor the table binds, by handle (handles may be any key the table holds),
with the tensors they reach: ``.grad`` (the very tensor: a handle bound to ``w.grad`` is still
``w.grad`` after a restore), the base of a view (a view is rebuilt from its base by its chain of
view ops, so it shares the base's memory and version counter again), ``requires_grad``,
``retain_grad``, version counters and layouts; the random generator's state, the step count and
make_dot labels. Optimizer state is session tensors bound to handles, so it comes with them.

Autograd graphs are not kept. A capture is refused (``LiveGraph``) while a tensor it reaches has
a graph node that a backward has not freed: the client's replay of the commands after the
previous snapshot rebuilds such graphs. A non-leaf whose graph was freed comes back with a
freed stand-in node of the same name, so a second backward through it fails as PyTorch's does.

Other parts of a session (e.g. compiled programs) register a capture and a restore function in
``EXTRA_STATE``; their JSON goes into the manifest under their name.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gradd.engine as ge
import numpy as np
from gradd.engine.device import to_host
from gradd.engine.memory_meter import check_active, metering
from gradd.engine.node import Node
from gradd.engine.op_table import record
from gradd.engine.tensor import wrap

from .session import Session

FORMAT = "gradd-session/1"
# name -> (capture(session) -> JSON value, restore(session, value) -> None), called under the
# session's lock. A seam for state outside the tensor table (compiled programs).
EXTRA_STATE: dict[str, tuple[Callable[[Session], Any], Callable[[Session, Any], None]]] = {}


class LiveGraph(Exception):
    """The session holds a graph a backward could still use: no snapshot at this point."""


@dataclass
class Capture:
    """A session's state at one point between batches: the manifest's body and the arrays."""

    session_id: str
    sequence: int  # the last applied ExecuteRequest.sequence it includes
    body: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


def _graph_is_live(node: Any) -> bool:
    """Whether a backward could still run through any node reachable from `node`."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, ge.Tensor) or getattr(n, "variable", None) is not None:
            continue  # an AccumulateGrad: a leaf's sink, not a graph
        if not getattr(n, "freed", False):
            return True
        stack.extend(getattr(n, "next", ()))
    return False


def _check_no_live_graph(tensors: Any) -> None:
    """LiveGraph if any of `tensors`, their grads or bases has a graph still usable."""
    seen: set[int] = set()
    stack = list(tensors)
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t.grad_fn is not None and _graph_is_live(t.grad_fn):
            raise LiveGraph("a tensor's graph is alive")
        stack.extend(x for x in (t._grad, t._base) if x is not None)


# --- values of view attributes and layouts, as JSON --------------------------------------------
def encode(value: Any) -> Any:
    """A view op's attribute (ints, tuples, slices, strings, None, Ellipsis) as JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return {"list": [encode(v) for v in value]}
    if isinstance(value, slice):
        return {"slice": [encode(value.start), encode(value.stop), encode(value.step)]}
    if value is Ellipsis:
        return {"ellipsis": True}
    if isinstance(value, Mapping):  # a dict, or the engine's shared empty attributes
        return {"dict": [[k, encode(v)] for k, v in value.items()]}
    raise LiveGraph(f"a view attribute of type {type(value).__name__} has no stored form")


def decode(value: Any) -> Any:
    """The inverse of `encode`."""
    if not isinstance(value, dict):
        return value
    ((kind, body),) = value.items()
    if kind == "tuple":
        return tuple(decode(v) for v in body)
    if kind == "list":
        return [decode(v) for v in body]
    if kind == "slice":
        return slice(*(decode(v) for v in body))
    if kind == "ellipsis":
        return Ellipsis
    if kind == "dict":
        return {k: decode(v) for k, v in body}
    raise ValueError(f"unknown stored value kind {kind!r}")


# --- capture -----------------------------------------------------------------------------------
def capture(s: Session) -> Capture:
    """The session's state now (call with its lock held, between batches). Arrays are copied
    here, so the caller may write them out after releasing the lock. LiveGraph if a graph that
    a backward could still use is alive, or the state cannot be stored as it is."""
    if s.torn:
        raise LiveGraph("a batch was stopped half-way (shutdown): the state is mid-batch")
    bound = s.table.items()
    _check_no_live_graph(t for _, t in bound)  # before copying anything
    records: list[dict[str, Any] | None] = []
    index: dict[int, int] = {}
    arrays: dict[str, np.ndarray] = {}
    storage = _Storage(arrays)
    counters: dict[int, int] = {}  # id(version counter) -> the first tensor with it

    def visit(t: Any) -> int:
        found = index.get(id(t))
        if found is not None:
            return found
        fn = t.grad_fn
        base = visit(t._base) if t._base is not None else None
        i = index[id(t)] = len(records)
        records.append(None)  # reserved: a .grad may lead back here
        rec: dict[str, Any] = {
            "requires_grad": bool(t.requires_grad),
            "version": int(t._vc[0]),
            "layout": encode(t._layout),
            "retains_grad": bool(t._retains_grad),
        }
        if fn is not None:
            rec["grad_fn"] = fn.name()
        if base is not None:
            rec["base"] = base
            rec["view_version"] = int(t._view_version)
            rec["view"] = [[step[0].name, encode(step[1])] for step in t._view]
        else:
            rec.update(storage.place(t._data, i))
            vc_owner = counters.setdefault(id(t._vc), i)
            if vc_owner != i:
                rec["vc_of"] = vc_owner  # detach() shares its source's version counter
        if t._grad is not None:
            rec["grad"] = visit(t._grad)
        records[i] = rec
        return i

    handles = [[h, visit(t)] for h, t in bound]
    body = {
        "format": FORMAT,
        "steps": s.steps,
        "seed": s.seed,
        "generator": base64.b64encode(s.generator.get_state()).decode(),
        "graph_params": s.graph_params,
        "last_root": s.last_root if s.last_root in s.table else "",
        "tensors": records,
        "handles": handles,
        "extras": {name: grab(s) for name, (grab, _) in EXTRA_STATE.items()},
    }
    return Capture(s.id, s.applied_seq, body, arrays)


class _Storage:
    """The memory behind tensors that are not views: NumPy arrays are placed in copies of
    their root buffers, kept once each as raw bytes, so tensors that share memory (detach(),
    `.data =`) share it again after a restore, with the same offsets and strides. Other arrays
    (a GPU's) are copied to the host one by one; the same array object is kept once."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.blocks: dict[int, str] = {}  # id(root buffer or array) -> its key in `arrays`

    def place(self, data: Any, i: int) -> dict[str, Any]:
        if isinstance(data, np.ndarray) and data.size:
            root = data
            while isinstance(root.base, np.ndarray):
                root = root.base
            if root.flags.c_contiguous or root.flags.f_contiguous:
                key = self.blocks.get(id(root))
                if key is None:
                    key = self.blocks[id(root)] = f"b{len(self.blocks)}"
                    # A copy now (under the lock): the session goes on changing its arrays.
                    self.arrays[key] = np.array(root.ravel(order="K").view(np.uint8), copy=True)
                start = root.__array_interface__["data"][0]
                return {
                    "block": key,
                    "offset": data.__array_interface__["data"][0] - start,
                    "shape": list(data.shape),
                    "strides": list(data.strides),
                    "dtype": data.dtype.str,
                }
        key = self.blocks.get(id(data))
        if key is None:
            key = self.blocks[id(data)] = f"a{i}"
            self.arrays[key] = np.array(to_host(data), order="C", copy=True)
        return {"array": key}


def _restored_data(rec: dict[str, Any], arrays: dict, blocks: dict, dev: Any) -> Any:
    """The array of a tensor that is not a view: placed in its restored block, or uploaded."""
    if "block" in rec:
        key = rec["block"]
        block = blocks.get(key)
        if block is None:
            raw = arrays[key]
            check_active(raw.nbytes)
            block = blocks[key] = np.array(raw, copy=True)  # its own buffer, metered once
        dtype = np.dtype(rec["dtype"])
        return np.ndarray(
            tuple(rec["shape"]), dtype, buffer=block, offset=int(rec["offset"]),
            strides=tuple(rec["strides"]),
        )  # fmt: skip
    key = rec["array"]
    data = blocks.get(key)
    if data is None:  # uploaded (and metered) once; the tensors that share it wrap it again
        data = blocks[key] = ge.tensor(arrays[key], device=dev)._data
    return data


# --- restore -----------------------------------------------------------------------------------
class _Released:
    """The op of a restored non-leaf's stand-in node: its graph was freed before the snapshot,
    so a backward through it fails as a second backward through a freed graph does."""

    name = "released"
    saves = (0,)

    @staticmethod
    def backward(node: Any, grad: Any) -> Any:  # never reached: node.saved raises first
        raise RuntimeError("backward through a released graph")


def _released_node(label: str) -> Node:
    node = Node(_Released, label, (), {}, None)  # type: ignore[arg-type]
    node.freed = True
    return node


def restore(s: Session, body: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Rebuild a captured state into a new, empty session (call under its lock). Raises on
    anything inconsistent, and SessionMemoryError past the session's byte limit; the caller
    then discards the session, so nothing is ever half-loaded."""
    if body.get("format") != FORMAT:
        raise ValueError(f"unknown snapshot format {body.get('format')!r}")
    records = body["tensors"]
    tensors: list[Any] = [None] * len(records)
    blocks: dict[str, Any] = {}
    dev = ge.get_device(s.device)
    with ge.use_generator(s.generator), ge.no_grad(), metering(s.meter):
        for i, rec in enumerate(records):  # a view's base comes before it
            if "base" in rec:
                base = rec["base"]
                if not 0 <= base < i or tensors[base] is None:
                    raise ValueError(f"tensor {i}: its base {base} is not restored before it")
                t = tensors[base]
                for name, attrs in rec["view"]:
                    t = record(ge.OP_TABLE[name], (t,), decode(attrs))
                t._view_version = int(rec["view_version"])
            else:
                t = wrap(_restored_data(rec, arrays, blocks, dev), dev)
                if "vc_of" in rec:
                    t._vc = tensors[int(rec["vc_of"])]._vc
                else:
                    t._vc[0] = int(rec["version"])
            t._layout = decode(rec["layout"])
            t.requires_grad = bool(rec["requires_grad"])
            t._retains_grad = bool(rec["retains_grad"])
            if "grad_fn" in rec:
                t.grad_fn = _released_node(str(rec["grad_fn"]))
            tensors[i] = t
        for i, rec in enumerate(records):
            if "grad" in rec:
                tensors[i]._grad = tensors[int(rec["grad"])]
    pairs = [(h if isinstance(h, str) else int(h), tensors[int(i)]) for h, i in body["handles"]]
    s.table.bind(pairs)
    s.meter.end_batch()
    s.steps = int(body["steps"])
    s.seed = int(body["seed"])
    s.generator.set_state(base64.b64decode(body["generator"]))
    s.graph_params = {str(k): str(v) for k, v in body["graph_params"].items()}
    s.last_root = str(body["last_root"])
    for name, value in body.get("extras", {}).items():
        if name not in EXTRA_STATE:
            raise ValueError(f"the snapshot holds {name!r}, which this server does not know")
        EXTRA_STATE[name][1](s, value)
