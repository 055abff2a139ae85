"""`gradd watch --tensorboard DIR`: a session's training as TensorBoard events.

Written with TensorBoard's own event writer (the `tensorboard` package, in the `watch` extra):
the loss (`loss`) and the step rate (`steps_per_second`) as scalars at their step, and each graph
snapshot as an image (`graph`, a PNG drawn by Graphviz's `dot`; without `dot` there is no image
and the caller says so once). `tensorboard --logdir DIR` shows them.
"""

from __future__ import annotations

import struct
import subprocess
import time
from pathlib import Path

from .cli_render import dot_program

# A PNG's colour type -> its channels (TensorBoard's `colorspace`).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


class TensorBoardLog:
    """One event file in `logdir` for one watched session."""

    def __init__(self, logdir: str | Path, session_id: str) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(self.logdir), filename_suffix=f".{session_id}")
        self.scalars = 0
        self.images = 0

    def _summary(self, step: int, wall_time: float, value) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(value=[value])
        self._writer.add_event(Event(wall_time=wall_time, step=step, summary=summary))

    def scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        """One scalar point."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        point = Summary.Value(tag=tag, simple_value=float(value))
        self._summary(step, wall_time or time.time(), point)
        self.scalars += 1

    def graph(self, dot_text: str, step: int, wall_time: float | None = None) -> bool:
        """The graph as a PNG image at `step`; False (nothing written) without `dot`."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        dot = dot_program()
        if dot is None:
            return False
        result = subprocess.run(
            [dot, "-Tpng"], input=dot_text.encode(), capture_output=True, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"dot -Tpng failed: {result.stderr.decode(errors='replace')}")
        png = result.stdout
        width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
        channels = _PNG_CHANNELS.get(png[25], 4)  # by its colour type
        image = Summary.Image(
            height=height, width=width, colorspace=channels, encoded_image_string=png
        )
        self._summary(step, wall_time or time.time(), Summary.Value(tag="graph", image=image))
        self.images += 1
        return True

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
