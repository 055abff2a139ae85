"""Pictures for the `gradd` command: the loss curve as a PNG and a graph snapshot as SVG/PNG.

Both need optional packages (the `watch` extra): matplotlib for the curve, Graphviz's `dot`
program for the graph. Without `dot` the DOT text is written instead, and the caller says so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

# The formats `dot` renders that people ask for; anything else is written as DOT text.
DOT_FORMATS = {
    ".svg": "svg",
    ".png": "png",
    ".pdf": "pdf",
    ".jpg": "jpg",
    ".jpeg": "jpeg",
    ".gif": "gif",
    ".webp": "webp",
}


def write_loss_curve(
    path: str | Path, steps: Sequence[int], losses: Sequence[float], title: str = ""
) -> Path:
    """Plot loss against step into a PNG (matplotlib, Agg backend); returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never pops up a window
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        ax.plot(list(steps), list(losses), color="tab:blue", linewidth=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        positive = [x for x in losses if x > 0]
        # A loss that falls by orders of magnitude reads better on a log axis.
        if positive and len(positive) == len(losses) and max(positive) > 100 * min(positive):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def dot_program() -> str | None:
    """The path of Graphviz's `dot`, or None when it is not installed."""
    return shutil.which("dot")


def why_not_rendered(path: str | Path) -> str:
    """Why `write_graph` wrote DOT text for `path`: no `dot`, or a format it is not asked for."""
    if dot_program() is None:
        return "Graphviz's `dot` is not installed"
    suffix = Path(path).suffix or "no suffix"
    return f"{suffix} is not one of {', '.join(DOT_FORMATS)}"


def write_graph(path: str | Path, dot_text: str) -> tuple[Path, bool]:
    """Render DOT text to `path` by its suffix (.svg, .png, .pdf) with `dot`.

    Returns the file written and whether it was rendered; without `dot` (or for a .dot/.gv or
    unknown suffix) the DOT text is written next to `path` with a .dot suffix instead
    (`why_not_rendered` says why).
    """
    path = Path(path)
    fmt = DOT_FORMATS.get(path.suffix.lower())
    dot = dot_program()
    if fmt is None or dot is None:
        text_path = path if path.suffix.lower() in (".dot", ".gv") else path.with_suffix(".dot")
        text_path.write_text(dot_text)
        return text_path, False
    result = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(path)], input=dot_text.encode(), capture_output=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"dot -T{fmt} failed: {result.stderr.decode(errors='replace').strip()}")
    return path, True
