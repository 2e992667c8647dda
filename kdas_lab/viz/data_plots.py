"""Figures of the data: image/mask pairs, dataset statistics, boundary weights, worst cases, sample grids.

Every function takes arrays (or a per-image statistics table from :mod:`kdas_lab.data.stats`) and
returns a matplotlib ``Figure``; only :func:`plot_folder` reads files (a PraNet-layout folder) and
:func:`save_synthetic_grid` writes the README figure.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kdas_lab.atomic import save_figure
from kdas_lab.data.dataset import load_pair
from kdas_lab.data.layout import find_pairs
from kdas_lab.data.synthetic import frame_rng, render_frame
from kdas_lab.viz.arrays import as_image, as_map
from kdas_lab.viz.colors import MASK_COLOR, PRED_COLOR, mpl
from kdas_lab.viz.layout import MAX_WIDTH, grid


def show_pair(axes, image, mask, title: str = "", contour: bool = True) -> None:
    """Draw an image with the mask contour on ``axes[0]`` and the mask on ``axes[1]``."""
    img, m = as_image(image), as_map(mask).astype(float)
    axes[0].imshow(img)
    if contour and m.max() > m.min():
        axes[0].contour(m, levels=[0.5], colors=mpl(MASK_COLOR), linewidths=1.2)
    axes[1].imshow(m, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(title, fontsize=9)
    axes[1].set_title("mask", fontsize=9)
    for ax in axes:
        ax.set_axis_off()


def plot_pairs(images: Sequence, masks: Sequence, titles: Sequence[str] | None = None,
               size: float = 2.2) -> Figure:
    """A grid of image/mask pairs, two columns per sample, up to four samples per row."""
    n = len(images)
    if n == 0 or n != len(masks):
        raise ValueError(f"need as many masks as images (>0), got {n} images and {len(masks)} masks")
    _, cols = grid(n, 2 * size)  # pairs per row: as many as fit in MAX_WIDTH, at most 4
    cols = min(cols, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2 * cols * size, rows * size), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(n):
        r, c = divmod(i, cols)
        show_pair(axes[r, 2 * c:2 * c + 2], images[i], masks[i], titles[i] if titles else "")
    fig.tight_layout()
    return fig


def plot_dataset_stats(per_image: pd.DataFrame) -> Figure:
    """Polyp area histogram, polyps per image and image sizes, one colour per dataset."""
    fig, axes = plt.subplots(1, 3, figsize=(MAX_WIDTH, 3.2))
    for name, d in per_image.groupby("dataset", sort=False):
        axes[0].hist(d["area"], bins=np.linspace(0, 1, 26), alpha=0.5, label=name, density=True)
        axes[2].scatter(d["width"], d["height"], s=12, alpha=0.6, label=name)
    counts = per_image.groupby("dataset", sort=False)["n_polyps"].value_counts().unstack(fill_value=0)
    counts = counts.sort_index(axis=1)  # polyps per image in increasing order
    counts.div(counts.sum(axis=1), axis=0).T.plot.bar(ax=axes[1], rot=0, legend=False)
    axes[0].set(xlabel="polyp area (fraction of image)", ylabel="density", title="polyp size")
    axes[1].set(xlabel="polyps per image", ylabel="fraction of images", title="polyp count")
    axes[2].set(xlabel="width (px)", ylabel="height (px)", title="image size")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_boundary_weights(image, mask, weights, title: str = "") -> Figure:
    """Image, mask and the structure loss's per-pixel weight map side by side."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    show_pair(axes[:2], image, mask, title)
    w = as_map(weights)
    im = axes[2].imshow(w, cmap="magma")
    axes[2].set_title(f"weights ({w.min():.2f} .. {w.max():.2f})", fontsize=9)
    axes[2].set_axis_off()
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    fig.tight_layout()
    return fig


def plot_gallery(images: Sequence, masks: Sequence, preds: Sequence, titles: Sequence[str],
                 size: float = 2.2) -> Figure:
    """Rows of (image with ground-truth and prediction contours, ground truth, prediction)."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(3 * size, n * size), squeeze=False)
    for i in range(n):
        img, gt, pr = as_image(images[i]), as_map(masks[i]).astype(float), as_map(preds[i])
        axes[i, 0].imshow(img)
        if gt.max() > gt.min():
            axes[i, 0].contour(gt, levels=[0.5], colors=mpl(MASK_COLOR), linewidths=1)
        if pr.max() > 0.5 > pr.min():
            axes[i, 0].contour(pr, levels=[0.5], colors=mpl(PRED_COLOR), linewidths=1)
        axes[i, 1].imshow(gt, cmap="gray", vmin=0, vmax=1)
        axes[i, 2].imshow(pr, cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(titles[i], fontsize=8)
        axes[i, 1].set_title("ground truth", fontsize=8)
        axes[i, 2].set_title("prediction", fontsize=8)
        for ax in axes[i]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_grid(images: list[np.ndarray], masks: list[np.ndarray], titles: list[str] | None = None,
              cols: int = 4, cell: float = 2.2):
    """Images ``uint8 (H,W,3)`` with the boundary of ``bool (H,W)`` masks in green; returns the Figure."""
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
    """Render :func:`synthetic_grid` to a PNG (written atomically)."""
    fig = synthetic_grid(n, size, seed)
    try:
        return save_figure(fig, path, dpi=dpi, bbox_inches=None)
    finally:
        plt.close(fig)
