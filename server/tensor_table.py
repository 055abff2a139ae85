"""A session's handles: handle -> tensor, with the counts its limits are checked against.

Bytes are counted once per distinct tensor (two handles bound to one tensor hold it once), as
numel x itemsize. A bind that would pass a limit raises RESOURCE_EXHAUSTED and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .errors import exhausted, not_found, shown


class TensorTable:
    """Handles bound to tensors, and the limits on how many and how large."""

    __slots__ = ("_tensors", "_refs", "nbytes", "max_bytes", "max_tensors")

    def __init__(self, max_bytes: int, max_tensors: int) -> None:
        self._tensors: dict[str, Any] = {}
        self._refs: dict[int, int] = {}  # id(tensor) -> how many handles hold it
        self.nbytes = 0
        self.max_bytes = max_bytes
        self.max_tensors = max_tensors

    def __len__(self) -> int:
        return len(self._tensors)

    def __contains__(self, handle: str) -> bool:
        return handle in self._tensors

    def get(self, handle: str) -> Any:
        """The tensor bound to a handle; NOT_FOUND if none is."""
        try:
            return self._tensors[handle]
        except KeyError:
            raise not_found(f"unknown tensor handle {shown(handle)}") from None

    def check_room(self, new_handles: int, new_bytes: int) -> None:
        """Raise RESOURCE_EXHAUSTED unless this many more handles and bytes fit."""
        if len(self._tensors) + new_handles > self.max_tensors:
            raise exhausted(
                f"session tensor limit: {len(self._tensors)} handles bound, "
                f"{new_handles} more would pass the limit of {self.max_tensors}; release some"
            )
        if self.nbytes + new_bytes > self.max_bytes:
            raise exhausted(
                f"session memory limit: holding {self.nbytes} bytes, {new_bytes} more would "
                f"pass the limit of {self.max_bytes} bytes; release some tensors"
            )

    def check_new(self, handle: str, nbytes: int) -> None:
        """Before making a tensor of `nbytes` for `handle`: raise unless it will fit."""
        old = self._tensors.get(handle)
        if old is None:
            self.check_room(1, nbytes)
        else:  # rebinding frees the old tensor if this handle was its last
            freed = old.nbytes if self._refs[id(old)] == 1 else 0
            self.check_room(0, max(nbytes - freed, 0))

    def bind_one(self, handle: str, tensor: Any) -> None:
        """Bind one handle (the hot path of ops); same rules as `bind`."""
        old = self._tensors.get(handle)
        if old is tensor:
            return
        refs = self._refs
        key = id(tensor)
        grow = 0 if key in refs else tensor.nbytes
        if old is None:
            if len(self._tensors) >= self.max_tensors or self.nbytes + grow > self.max_bytes:
                self.check_room(1, grow)
        elif grow:
            freed = old.nbytes if refs[id(old)] == 1 else 0
            if self.nbytes + grow - freed > self.max_bytes:
                self.check_room(0, grow - freed)
        if old is not None:
            self._unref(old)
        self._tensors[handle] = tensor
        refs[key] = refs.get(key, 0) + 1
        self.nbytes += grow

    def bind(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """Bind each handle to its tensor (rebinding replaces), all or nothing."""
        new_handles, delta = 0, 0
        refs: dict[int, int] = {}  # simulated refcount changes, so rebinding frees exactly
        for handle, tensor in pairs:
            old = self._tensors.get(handle)
            if old is None:
                new_handles += 1
            else:
                delta -= self._change(refs, old, -1)
            delta += self._change(refs, tensor, +1)
        if new_handles or delta > 0:
            self.check_room(new_handles, max(delta, 0))
        for handle, tensor in pairs:
            old = self._tensors.get(handle)
            if old is not None:
                self._unref(old)
            self._tensors[handle] = tensor
            key = id(tensor)
            count = self._refs.get(key, 0)
            if not count:
                self.nbytes += tensor.nbytes
            self._refs[key] = count + 1

    def release(self, handles: Iterable[str]) -> None:
        """Unbind handles; unknown ones are ignored (idempotent)."""
        for handle in handles:
            tensor = self._tensors.pop(handle, None)
            if tensor is not None:
                self._unref(tensor)

    def clear(self) -> None:
        """Unbind everything, so the tensors and their graphs can be freed."""
        self._tensors.clear()
        self._refs.clear()
        self.nbytes = 0

    def _change(self, refs: dict[int, int], tensor: Any, step: int) -> int:
        # Bytes that appear (step +1 on a tensor not held) or go (step -1 on its last handle).
        key = id(tensor)
        before = self._refs.get(key, 0) + refs.get(key, 0)
        refs[key] = refs.get(key, 0) + step
        after = before + step
        return tensor.nbytes if (before == 0) != (after == 0) else 0

    def _unref(self, tensor: Any) -> None:
        key = id(tensor)
        count = self._refs[key] - 1
        if count:
            self._refs[key] = count
        else:
            del self._refs[key]
            self.nbytes -= tensor.nbytes
