"""``s.save`` and ``s.load``: checkpoints as safetensors files, which PyTorch reads
(``safetensors.torch.load_file``) and writes (``save_file``); never pickle.

Tensors are stored under their dotted path in the saved object: a module's state_dict keeps
its own keys ("0.weight"), so ``torch_model.load_state_dict(load_file(path))`` works. Anything
that is not a flat ``{str: tensor}`` dict (an optimizer's state: ints, floats, lists, nested
dicts with int keys) is kept as JSON in the file's metadata under ``"gradd.structure"``, with
each tensor replaced by ``{"tensor": key}``; ``s.load`` rebuilds it. A file without that entry
(one torch wrote) loads as a flat ``{key: tensor}`` dict.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

STRUCTURE_KEY = "gradd.structure"


def _is_tensor(obj: Any) -> bool:
    import gradd

    return isinstance(obj, gradd.Tensor)


def _describe(obj: Any, path: str, tensors: dict[str, Any]) -> Any:
    """JSON for ``obj``, its tensors collected into ``tensors`` under their dotted paths."""
    if _is_tensor(obj):
        if path in tensors:
            raise ValueError(f"two tensors would be saved under the key {path!r}")
        tensors[path] = obj
        return {"tensor": path}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"s.save keeps dict keys that are str or int, not {key!r}")
            items.append([key, _describe(value, f"{path}.{key}" if path else str(key), tensors)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        values = [
            _describe(v, f"{path}.{i}" if path else str(i), tensors) for i, v in enumerate(obj)
        ]
        return {"tuple": values} if isinstance(obj, tuple) else {"list": values}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(
        f"s.save stores tensors, numbers, strings, None, lists, tuples and dicts, not "
        f"{type(obj).__name__} (at {path or 'the top'})"
    )


def _rebuild(desc: Any, tensors: dict[str, Any]) -> Any:
    if not isinstance(desc, dict) or len(desc) != 1:
        raise ValueError(f"{STRUCTURE_KEY} holds an entry gradd does not know: {desc!r}")
    ((kind, body),) = desc.items()
    if kind == "tensor":
        if body not in tensors:
            raise ValueError(f"{STRUCTURE_KEY} names a tensor the file lacks: {body!r}")
        return tensors[body]
    if kind == "dict":
        return {key: _rebuild(value, tensors) for key, value in body}
    if kind in ("list", "tuple"):
        values = [_rebuild(v, tensors) for v in body]
        return tuple(values) if kind == "tuple" else values
    if kind == "value":
        return body
    raise ValueError(f"{STRUCTURE_KEY} holds an entry gradd does not know: {desc!r}")


def _flat(obj: Any) -> bool:
    return isinstance(obj, dict) and all(
        isinstance(k, str) and _is_tensor(v) for k, v in obj.items()
    )


def save(session: Any, obj: Any, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``obj`` (a state_dict, or any nesting of dicts, lists, numbers and tensors) to
    ``path`` as safetensors; ``metadata`` (str to str) is stored alongside, as torch's."""
    from safetensors.numpy import save_file

    tensors: dict[str, Any] = {}
    structure = _describe(obj, "", tensors)
    meta = dict(metadata or {})
    if not _flat(obj):
        meta[STRUCTURE_KEY] = json.dumps(structure)
    arrays = session._host_arrays(list(tensors.values()))
    save_file(
        {k: _c_order(a) for k, a in zip(tensors, arrays, strict=True)},
        os.fspath(path),
        metadata=meta or None,
    )


def _c_order(array: np.ndarray) -> np.ndarray:
    """The array in C order, 0-d kept 0-d (``np.ascontiguousarray`` would make it 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def load(session: Any, path: str | os.PathLike) -> Any:
    """Read a safetensors file into this session's tensors (the saved structure, if any)."""
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="np") as f:
        meta = f.metadata() or {}
        tensors = {key: session.tensor(f.get_tensor(key)) for key in f.keys()}  # noqa: SIM118
    structure = meta.get(STRUCTURE_KEY)
    if structure is None:
        return tensors
    return _rebuild(json.loads(structure), tensors)
