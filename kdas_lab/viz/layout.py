"""Figures that fit a notebook column: at most :data:`MAX_WIDTH` inches wide, wrapped into rows.

``grid`` and ``panel_size`` are what the plotting functions use to stay narrow; ``fit_width`` wraps an
existing figure's panels into rows (for figures made elsewhere, e.g. ``kdas_lab.ablation.plot_arms``);
``show`` displays a figure in a notebook whether or not pyplot made it.
"""
from __future__ import annotations

import io
import math

from matplotlib.figure import Figure

MAX_WIDTH = 10.0  # inches: a notebook column at the default 100 dpi


def grid(n: int, size: float, max_width: float = MAX_WIDTH) -> tuple[int, int]:
    """``(rows, cols)`` for ``n`` panels of ``size`` inches, as many per row as fit in ``max_width``."""
    if n < 1:
        raise ValueError(f"need at least one panel, got {n}")
    cols = max(1, min(n, int(max_width // size)))
    return math.ceil(n / cols), cols


def panel_size(cols: int, size: float, extra: float = 0.0, max_width: float = MAX_WIDTH) -> float:
    """``size``, shrunk so that ``cols`` panels plus ``extra`` inches fit in ``max_width``."""
    return min(size, (max_width - extra) / max(cols, 1))


def fit_width(fig: Figure, max_width: float = MAX_WIDTH) -> Figure:
    """Wrap the panels of a figure wider than ``max_width`` into rows (same order, left to right, then
    down); the figure grows in height instead. Returns the same figure; narrow ones are unchanged."""
    width, height = fig.get_size_inches()
    axes = [ax for ax in fig.axes if ax.get_subplotspec() is not None and not hasattr(ax, "_colorbar")]
    if width <= max_width or not axes:
        return fig
    n = len(axes)
    rows, cols = grid(n, width / n, max_width)
    spec = fig.add_gridspec(rows, cols)
    for i, ax in enumerate(axes):
        ax.set_subplotspec(spec[i // cols, i % cols])
    fig.set_size_inches(min(max_width, cols * width / n), height * rows)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return fig


def show(fig: Figure) -> None:
    """Display ``fig`` as a PNG in a notebook (a bare ``Figure`` that pyplot never saw is otherwise shown
    as its text ``<Figure size ...>``)."""
    from IPython.display import Image, display  # noqa: PLC0415 (only in a notebook)

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    display(Image(buf.getvalue()))
