"""Prediction overlays: a mask drawn over its image, and a grid comparing several models.

``overlay_mask`` is a pure NumPy function (tested directly); ``overlay_grid`` draws a matplotlib
figure with one row per image: input, ground truth, then each model's prediction overlaid.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from kdas_lab.atomic import save_figure
from kdas_lab.viz.colors import GT_COLOR, PRED_COLOR  # their home: kdas_lab.viz.colors (re-exported here)

__all__ = ["GT_COLOR", "PRED_COLOR", "overlay_grid", "overlay_mask"]


def overlay_mask(image: np.ndarray, mask: np.ndarray, color=PRED_COLOR, alpha: float = 0.45,
                 threshold: float = 0.5) -> np.ndarray:
    """Blend ``color`` into ``image`` (uint8 (H, W, 3)) where ``mask`` (H, W) is >= ``threshold``.

    ``mask`` may be bool, uint8 0/255 or float in [0, 1]; sizes must match. Returns uint8 (H, W, 3).
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"overlay_mask: image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"overlay_mask: mask shape {mask.shape} does not match image {image.shape[:2]}")
    if mask.dtype == np.uint8:
        mask = mask.astype(np.float32) / 255.0
    on = mask.astype(np.float32) >= threshold  # (H, W)
    out = image.astype(np.float32)
    out[on] = (1.0 - alpha) * out[on] + alpha * np.asarray(color, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def overlay_grid(images: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                 preds: dict[str, Sequence[np.ndarray]], titles: Sequence[str] | None = None,
                 path: str | os.PathLike | None = None, scores: dict[str, Sequence[float]] | None = None):
    """Rows: images; columns: input, ground truth, one prediction per model (``preds[name][i]``)."""
    n, names = len(images), list(preds)
    for name in names:
        if len(preds[name]) != n:
            raise ValueError(f"overlay_grid: {name!r} has {len(preds[name])} predictions for {n} images")
    cols = 2 + len(names)
    fig, axes = plt.subplots(n, cols, figsize=(2.4 * cols, 2.4 * n), squeeze=False)
    for i in range(n):
        row = [(images[i], titles[i] if titles else "image"),
               (overlay_mask(images[i], gts[i], GT_COLOR), "ground truth")]
        for name in names:
            label = name if scores is None else f"{name} (Dice {scores[name][i]:.2f})"
            row.append((overlay_mask(images[i], preds[name][i]), label))
        for ax, (img, title) in zip(axes[i], row):
            ax.imshow(img)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
