"""Figures of attention: PVT self-attention for one query point, KDAS attention matrices, SGM maps.

PVTv2 attention at a stage with spatial-reduction ratio ``sr`` maps N = H*W query tokens onto
Nk = (H//sr)*(W//sr) key tokens: one row of the ``(heads, N, Nk)`` matrix, reshaped to the key grid,
shows where a query pixel looks. The small pure functions below do that indexing; the plotting
functions only draw.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from kdas_lab.viz.arrays import as_image, as_map
from kdas_lab.viz.layout import grid


def key_grid(n_queries_hw: tuple[int, int], n_keys: int) -> tuple[int, int]:
    """Key grid ``(kh, kw)`` of a PVT attention with query grid ``(H, W)`` and ``n_keys`` keys.

    Tries the reduction ratios 1, 2, 4, ... (``kh = H // sr``) and fails clearly if none fits.
    """
    h, w = n_queries_hw
    for sr in (1, 2, 4, 8, 16, 32, 64):
        if (h // sr) * (w // sr) == n_keys:
            return h // sr, w // sr
    side = math.isqrt(n_keys)
    if side * side == n_keys:  # pooled ("linear") attention: a fixed square grid
        return side, side
    raise ValueError(f"cannot place {n_keys} keys on a grid for a {h}x{w} query map")


def query_index(query_yx: tuple[float, float], hw: tuple[int, int]) -> int:
    """Token index of a query given as fractions ``(y, x)`` in [0, 1] of the image."""
    h, w = hw
    fy, fx = query_yx
    if not (0.0 <= fy <= 1.0 and 0.0 <= fx <= 1.0):
        raise ValueError(f"query position must be fractions in [0, 1], got {query_yx}")
    y, x = min(int(fy * h), h - 1), min(int(fx * w), w - 1)
    return y * w + x


def query_attention(attn: torch.Tensor, query_yx: tuple[float, float], hw: tuple[int, int],
                    head: int | None = None, sample: int = 0) -> np.ndarray:
    """Attention of one query over the key grid: ``(kh, kw)`` float array summing to 1.

    ``attn``: ``(B, heads, N, Nk)`` or ``(heads, N, Nk)`` softmax rows; ``head=None`` averages heads.
    """
    a = attn.detach().float().cpu()
    if a.dim() == 4:
        a = a[sample]
    if a.dim() != 3:
        raise ValueError(f"attention must be (B, heads, N, Nk) or (heads, N, Nk), got {tuple(attn.shape)}")
    heads, n, nk = a.shape
    if n != hw[0] * hw[1]:
        raise ValueError(f"attention has {n} queries but the grid {hw} has {hw[0] * hw[1]}")
    if head is not None and not 0 <= head < heads:
        raise ValueError(f"head {head} out of range: this stage has {heads} heads")
    row = a[:, query_index(query_yx, hw)]  # (heads, Nk)
    row = row.mean(0) if head is None else row[head]
    return row.reshape(key_grid(hw, nk)).numpy()


def row_entropy(attn: torch.Tensor) -> float:
    """Mean entropy (nats) of the rows of a row-stochastic matrix ``(..., S, S)``: how spread out."""
    p = attn.detach().float().clamp_min(1e-12)
    return float(-(p * p.log()).sum(-1).mean())


def plot_query_attention(image, maps: Mapping[str, np.ndarray], query_yx: tuple[float, float],
                         title: str = "", size: float = 2.6) -> Figure:
    """The image with the query point, then one attention map per model stretched over the image, on one
    colour scale (0 to the largest weight of any map) with a colour bar: a query's weights sum to 1 over
    its key grid, so a uniform map would be ``1 / keys`` everywhere."""
    img = as_image(image)
    h, w = img.shape[:2]
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=((1 + len(maps)) * size + 0.8, size), layout="constrained")
    top = max(float(np.max(m)) for m in maps.values()) if maps else 1.0
    im = None
    qy, qx = query_yx[0] * h, query_yx[1] * w
    axes[0].imshow(img)
    axes[0].set_title(title or "query", fontsize=9)
    for name, ax in zip(maps, axes[1:]):
        m = np.asarray(maps[name])
        ax.imshow(img, alpha=0.45)
        im = ax.imshow(m, cmap="inferno", alpha=0.65, extent=(0, w, h, 0), interpolation="nearest", vmin=0, vmax=top)
        ax.set_title(f"{name} ({m.shape[0]}x{m.shape[1]} keys)", fontsize=9)
    for ax in axes:
        ax.plot([qx], [qy], marker="+", color="cyan", markersize=12, mew=2)
        ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=list(axes[1:]), fraction=0.046, label="attention weight of a key")
    return fig


def plot_matrices(mats: Mapping[str, torch.Tensor | np.ndarray], cmap: str = "viridis",
                  size: float = 2.6, shared_scale: bool = False) -> Figure:
    """Heatmaps of 2-D maps side by side (prediction maps, ``S x S`` attention matrices...)."""
    arrays = {k: as_map(v) for k, v in mats.items()}
    lo = min(a.min() for a in arrays.values()) if shared_scale else None
    hi = max(a.max() for a in arrays.values()) if shared_scale else None
    fig, axes = plt.subplots(1, len(arrays), figsize=(len(arrays) * size, size), squeeze=False)
    for ax, (name, a) in zip(axes[0], arrays.items()):
        im = ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_temperatures(attn_by_t: Mapping[float, torch.Tensor], row: int, size: float = 2.6) -> Figure:
    """Attention matrices at several temperatures, plus one row of each as a curve."""
    n = len(attn_by_t)
    rows, cols = grid(n + 1, size)
    fig, grid_axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    axes = grid_axes.ravel()
    for ax in axes[n + 1:]:
        ax.set_axis_off()
    for ax, (t, a) in zip(axes[:n], attn_by_t.items()):
        m = as_map(a)
        ax.imshow(m, cmap="viridis")
        ax.axhline(row, color="w", lw=0.8, ls="--")
        ax.set_title(f"T = {t:g}, H = {row_entropy(torch.as_tensor(m)):.2f}", fontsize=9)
        ax.set_axis_off()
        axes[n].plot(m[row], label=f"T = {t:g}")
    axes[n].set(title=f"row {row}", xlabel="column")
    axes[n].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_symmetrised(maps: Mapping[str, torch.Tensor], size: float = 2.4) -> Figure:
    """For each named square map P: P, its transpose and P + P^T (what the SGM compares)."""
    names: Sequence[str] = list(maps)
    fig, axes = plt.subplots(len(names), 3, figsize=(3 * size, len(names) * size), squeeze=False)
    for r, name in enumerate(names):
        p = as_map(maps[name])
        if p.shape[0] != p.shape[1]:
            raise ValueError(f"{name}: the SGM needs a square map, got {p.shape}")
        for c, (label, a) in enumerate((("P", p), ("P^T", p.T), ("P + P^T", p + p.T))):
            axes[r, c].imshow(a, cmap="viridis")
            axes[r, c].set_title(f"{name}: {label}", fontsize=9)
            axes[r, c].set_axis_off()
    fig.tight_layout()
    return fig
