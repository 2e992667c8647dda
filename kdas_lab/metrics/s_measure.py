"""S-measure (Fan et al., "Structure-measure: A new way to evaluate foreground maps", ICCV 2017).

``S = alpha * S_object + (1 - alpha) * S_region`` (alpha = 0.5), clipped at 0. Empty mask:
``1 - mean(pred)``; full mask: ``mean(pred)``.
"""
from __future__ import annotations

import math

import numpy as np

EPS = np.finfo(np.float64).eps


def object_similarity(values: np.ndarray, ddof: int) -> float:
    """``2 x / (x^2 + 1 + sigma + eps)`` of one region's values (x mean, sigma std with ``ddof``)."""
    x = float(values.mean())
    sigma = float(values.std(ddof=ddof)) if values.size > ddof else 0.0  # one pixel: std 0 (MATLAB)
    return 2 * x / (x * x + 1 + sigma + EPS)


def object_score(pred: np.ndarray, gt: np.ndarray, ddof: int = 1) -> float:
    """Foreground similarity of pred, background similarity of 1 - pred, weighted by the mask area."""
    u = gt.mean()
    return float(u * object_similarity(pred[gt], ddof) + (1 - u) * object_similarity(1 - pred[~gt], ddof))


def centroid(gt: np.ndarray, rule: str) -> tuple[int, int]:
    """Split point (row, col) of the region score: rows ``[:r]`` / ``[r:]``, columns ``[:c]`` / ``[c:]``.

    ``matlab``: ``round`` (half away from zero) of the 1-based centroid, i.e. MATLAB ``GT(1:Y, 1:X)``.
    ``rounded``: 0-based centroid rounded half-to-even (numpy), as the KDAS/UACANet evaluator.
    """
    h, w = gt.shape
    rows, cols = np.nonzero(gt)
    if rows.size == 0:
        return (round(h / 2), round(w / 2)) if rule == "matlab" else (h // 2, w // 2)
    if rule == "matlab":
        return math.floor(rows.mean() + 1.5), math.floor(cols.mean() + 1.5)
    return int(np.round(rows.mean())), int(np.round(cols.mean()))


def ssim_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """The S-measure's region SSIM of one quadrant (sample variances with ``N - 1 + eps``)."""
    n = pred.size
    x, y = pred.mean(), gt.mean()
    dx, dy = pred - x, gt - y
    sigma_x2 = float((dx * dx).sum()) / (n - 1 + EPS)
    sigma_y2 = float((dy * dy).sum()) / (n - 1 + EPS)
    sigma_xy = float((dx * dy).sum()) / (n - 1 + EPS)
    alpha = 4 * x * y * sigma_xy
    beta = (x * x + y * y) * (sigma_x2 + sigma_y2)
    if alpha != 0:
        return float(alpha / (beta + EPS))
    return 1.0 if beta == 0 else 0.0


def region_score(pred: np.ndarray, gt: np.ndarray, rule: str = "matlab") -> float:
    """Area-weighted SSIM of the four quadrants around the mask's centroid (empty quadrants weigh 0)."""
    r, c = centroid(gt, rule)
    total = gt.size
    score = 0.0
    g = gt.astype(np.float64)
    for rs in (slice(0, r), slice(r, None)):
        for cs in (slice(0, c), slice(c, None)):
            p_q, g_q = pred[rs, cs], g[rs, cs]
            if p_q.size:
                score += ssim_score(p_q, g_q) * (p_q.size / total)
    return score


def s_measure(pred: np.ndarray, gt: np.ndarray, *, ddof: int = 1, rule: str = "matlab",
              alpha: float = 0.5) -> float:
    """S-measure of a [0, 1] map ``pred`` (H, W) against a bool mask ``gt`` (H, W)."""
    y = gt.mean()
    if y == 0:
        return float(1 - pred.mean())
    if y == 1:
        return float(pred.mean())
    q = alpha * object_score(pred, gt, ddof) + (1 - alpha) * region_score(pred, gt, rule)
    return max(0.0, float(q))
