"""Sample grids: images with the polyp outline drawn on top (matplotlib)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kdas_lab.atomic import atomic_path
from kdas_lab.data.dataset import load_pair
from kdas_lab.data.layout import find_pairs
from kdas_lab.data.synthetic import frame_rng, render_frame


def plot_grid(images: list[np.ndarray], masks: list[np.ndarray], titles: list[str] | None = None,
              cols: int = 4, cell: float = 2.2):
    """Images ``uint8 (H,W,3)`` with the boundary of ``bool (H,W)`` masks in green; returns the Figure."""
    import matplotlib.pyplot as plt

    rows = (len(images) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell, rows * cell), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (img, msk) in enumerate(zip(images, masks)):
        ax = axes.flat[i]
        ax.imshow(img)
        if msk.any():
            ax.contour(msk.astype(float), levels=[0.5], colors="lime", linewidths=1.0)
        if titles:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def plot_folder(folder: str | os.PathLike, n: int = 8, cols: int = 4, seed: int = 0):
    """``n`` random pairs of a PraNet-layout folder (``images/`` + ``masks/``)."""
    pairs = find_pairs(folder)
    pick = np.random.default_rng(seed).choice(len(pairs), size=min(n, len(pairs)), replace=False)
    loaded = [load_pair(pairs[i][1], pairs[i][2]) for i in sorted(pick)]
    return plot_grid([a for a, _ in loaded], [b for _, b in loaded], [pairs[i][0] for i in sorted(pick)], cols)


def synthetic_grid(n: int = 8, size: int = 192, seed: int = 0, cols: int = 4):
    """A grid of freshly rendered synthetic frames with their exact mask outlines."""
    frames = [render_frame(frame_rng(seed, 0, i), size) for i in range(n)]
    titles = [f"frame {i}: {int(m.sum())} px polyp" for i, (_, m) in enumerate(frames)]
    return plot_grid([f for f, _ in frames], [m for _, m in frames], titles, cols)


def save_synthetic_grid(path: str | os.PathLike = "docs/img/synthetic_grid.png", n: int = 8, size: int = 192,
                        seed: int = 0, dpi: int = 64) -> Path:
    """Render :func:`synthetic_grid` to a PNG (temp file + ``os.replace``)."""
    import matplotlib.pyplot as plt

    fig = synthetic_grid(n, size, seed)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)
