"""Large uploads to a GPU through pinned host buffers, several chunks at once.

A copy from ordinary (pageable) host memory runs at the speed of the driver's own staging,
about a sixth of what the bus carries from pinned memory (an H200: 8 GB/s against 55 GB/s).
Here threads copy chunks of the source into a ring of pinned buffers (NumPy releases the GIL
while it copies) while the GPU's copy engine moves the chunks already staged, on a stream of its
own; the upload returns once the last chunk has landed, so the result is ready on any stream.

Each GPU gets its ring on first use (``THREADS`` x 2 buffers of ``CHUNK`` bytes: 128 MiB pinned),
used by one upload at a time. On an H200, 1 GiB took 22.8-26.7 ms this way (8 threads, 8 MiB
chunks; 4 threads: 34-39 ms, 16: 33-37 ms), 110-133 ms from pageable memory, 19.4 ms from pinned.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

STAGED_FROM = 32 << 20  # smaller uploads take the driver's path: too short to pipeline
CHUNK = 8 << 20
THREADS = 8


class Stager:
    """A ring of pinned buffers, a copy stream and the threads that fill the buffers, for the
    GPU that is current when it is made."""

    def __init__(self, xp: Any, threads: int | None = None, chunk: int | None = None) -> None:
        threads, chunk = threads or THREADS, chunk or CHUNK
        self.xp = xp
        self.chunk = chunk
        count = 2 * threads  # while one half is being filled, the other is on the bus
        self._memory = [xp.cuda.alloc_pinned_memory(chunk) for _ in range(count)]
        self.buffers = [np.frombuffer(m, np.uint8, chunk) for m in self._memory]
        self.stream = xp.cuda.Stream(non_blocking=True)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="gradd-upload")
        self.lock = threading.Lock()

    def upload(self, host: np.ndarray) -> Any:
        """A device copy of the C-contiguous ``host`` array."""
        xp = self.xp
        out = xp.empty(host.shape, host.dtype)
        src = host.reshape(-1).view(np.uint8)
        dst = out.reshape(-1).view(np.uint8)
        starts = range(0, src.size, self.chunk)
        ring = len(self.buffers)
        landed: list[Any] = [None] * ring  # the event after the last copy out of each buffer

        def fill(i: int) -> int:
            k = i % ring
            if landed[k] is not None:
                landed[k].synchronize()  # the bus has finished with this buffer
            a = starts[i]
            n = min(self.chunk, src.size - a)
            np.copyto(self.buffers[k][:n], src[a : a + n])
            return n

        with self.lock:
            pending = [self.pool.submit(fill, i) for i in range(min(ring, len(starts)))]
            for i, a in enumerate(starts):
                n = pending[i].result()
                k = i % ring
                dst[a : a + n].set(self.buffers[k][:n], stream=self.stream)
                landed[k] = self.stream.record()
                if i + ring < len(starts):
                    pending.append(self.pool.submit(fill, i + ring))
            self.stream.synchronize()
        return out


_stagers: dict[int, Stager] = {}
_made = threading.Lock()


def upload(xp: Any, index: int, host: np.ndarray) -> Any:
    """``host`` (C-contiguous, at least STAGED_FROM bytes) on GPU ``index``, which is current."""
    stager = _stagers.get(index)
    if stager is None:
        with _made:
            stager = _stagers.get(index) or _stagers.setdefault(index, Stager(xp))
    return stager.upload(host)


def can_stage(xp: Any, host: np.ndarray) -> bool:
    """Whether ``host`` is worth staging and ``xp`` has pinned memory to stage it with."""
    return host.nbytes >= STAGED_FROM and hasattr(xp.cuda, "alloc_pinned_memory")
