"""Loaded by every Python process whose PYTHONPATH holds this folder (``make
test-cuda-standin`` sets it, so test servers started as subprocesses get it too): with
GRADD_CUDA_STANDIN=1, gradd's ``cuda`` device computes on the CuPy stand-in.

The stand-in is registered when ``gradd.engine.device`` is first imported, not before: a
process that never imports the engine (``import gradd`` alone is light) does not get it.

GRADD_CUDA_STANDIN_PROBE=PATH lets a test read a server's transfer counts: when PATH.ask
appears, the counts so far are written to PATH (JSON) and PATH.ask is removed.
"""

import os
import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import PathFinder

DEVICE_MODULE = "gradd.engine.device"


class _RegisterOnImport(MetaPathFinder):
    """Finds gradd.engine.device as usual, and registers the stand-in once it has run."""

    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201
        if name != DEVICE_MODULE:
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):  # noqa: ANN001, ANN202
            run(module)
            sys.meta_path.remove(self)
            import cupy_standin

            module.register_cuda(cupy_standin)

        spec.loader.exec_module = exec_module
        return spec


def _answer_probes(path: str) -> None:
    import json
    import time

    import cupy_standin

    while True:
        if os.path.exists(path + ".ask"):
            with open(path + ".tmp", "w") as f:
                json.dump(cupy_standin.TRANSFERS.snapshot(), f)
            os.replace(path + ".tmp", path)
            os.remove(path + ".ask")
        time.sleep(0.01)


if os.environ.get("GRADD_CUDA_STANDIN") == "1":
    sys.meta_path.insert(0, _RegisterOnImport())
    if os.environ.get("GRADD_CUDA_STANDIN_PROBE"):
        import threading

        probe = os.environ["GRADD_CUDA_STANDIN_PROBE"]
        threading.Thread(target=_answer_probes, args=(probe,), daemon=True).start()
