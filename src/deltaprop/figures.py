"""Pictures with matplotlib's object API, written atomically: no process-wide state.

``pyplot`` and ``matplotlib.use`` change the plotting backend and the figure registry of the
whole process (a notebook user's inline plots among them). A :class:`matplotlib.figure.Figure`
with its own Agg canvas changes nothing outside itself and is freed like any object.
"""

from __future__ import annotations

import io as _stdio
from pathlib import Path
from typing import Any

FORMATS = ("png", "svg", "pdf")


def figure(figsize: tuple[float, float]) -> Any:
    """A new Figure drawn by its own Agg canvas (nothing registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def picture_format(path: str | Path) -> str:
    """The format named by ``path``'s suffix (png, svg or pdf), or a ConfigError."""
    from deltaprop.errors import ConfigError

    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ConfigError(f"{path}: unknown picture format; use one of .{', .'.join(FORMATS)}")
    return suffix


def save(fig: Any, path: str | Path, dpi: int = 100) -> None:
    """Render ``fig`` in the format of ``path``'s suffix and write it atomically."""
    from deltaprop.io import write_atomically

    buffer = _stdio.BytesIO()
    fig.savefig(buffer, format=picture_format(path), dpi=dpi)
    write_atomically(Path(path), buffer.getvalue())
