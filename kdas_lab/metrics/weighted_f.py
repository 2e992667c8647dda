"""Weighted F-measure (Margolin, Zelnik-Manor, Tal, "How to evaluate foreground maps?", CVPR 2014).

Errors ``E = |pred - G|``; background pixels borrow the error of their nearest foreground pixel and
are smoothed by a 7x7 Gaussian (sigma 5) to model pixel dependency; foreground errors take the
smaller of raw and smoothed; background errors are weighted by ``2 - exp(ln(0.5) / 5 * dist)``
(distance to the mask). Weighted recall ``R = 1 - mean(Ew[G])``, precision
``P = TPw / (TPw + FPw + eps)``, ``F = (1 + b2) R P / (R + b2 P + eps)`` with b2 = 1.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d, distance_transform_edt

EPS = np.finfo(np.float64).eps


def gaussian_kernel_1d(size: int = 7, sigma: float = 5.0) -> np.ndarray:
    """Normalised 1-D factor of MATLAB's ``fspecial('gaussian', size, sigma)`` (outer(k, k) is it)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


def gaussian_filter_7x7(img: np.ndarray, mode: str) -> np.ndarray:
    """Separable 7x7 sigma-5 Gaussian; ``mode='constant'`` is MATLAB ``imfilter`` (zero padding)."""
    k = gaussian_kernel_1d()
    out = correlate1d(img, k, axis=0, mode=mode, cval=0.0)
    return correlate1d(out, k, axis=1, mode=mode, cval=0.0)


def weighted_f_measure(pred: np.ndarray, gt: np.ndarray, *, mode: str = "constant", beta2: float = 1.0) -> float:
    """wFm of a [0, 1] map ``pred`` (H, W) against a bool mask ``gt`` (H, W). Empty mask: 0 (see docs)."""
    if not gt.any():
        return 0.0
    idx = distance_transform_edt(~gt, return_distances=False, return_indices=True)  # (2, H, W) nearest fg
    d_row = idx[0] - np.arange(gt.shape[0], dtype=idx.dtype)[:, None]
    d_col = idx[1] - np.arange(gt.shape[1], dtype=idx.dtype)[None, :]
    dist = np.sqrt((d_row * d_row + d_col * d_col).astype(np.float64))  # (H, W), as scipy's edt
    err = np.abs(pred - gt)  # (H, W)
    # The smoothed error EA is only read on foreground pixels and a 7x7 filter sees 3 pixels around
    # each: filtering the mask's bounding box grown by 3 pixels is exact (a crop edge is either >= 3
    # pixels from the foreground or the image border itself, padded as the full image would be).
    rows, cols = np.flatnonzero(gt.any(axis=1)), np.flatnonzero(gt.any(axis=0))
    box = (slice(max(rows[0] - 3, 0), rows[-1] + 4), slice(max(cols[0] - 3, 0), cols[-1] + 4))
    err_t = err[idx[0][box], idx[1][box]]  # background borrows the error of its nearest fg pixel
    err_a = gaussian_filter_7x7(err_t, mode)
    err_box = err[box]
    fg_err = np.where(err_a < err_box, err_a, err_box)[gt[box]]  # min(E, EA) on the foreground
    # Background importance 2 - exp(ln(0.5) / 5 * dist) (dist is 0 on the foreground).
    bg_err = err * (2.0 - np.exp(np.log(0.5) / 5 * dist))
    bg_err[gt] = 0.0
    tp_w = fg_err.size - fg_err.sum()
    fp_w = bg_err.sum()
    recall = 1 - fg_err.mean()
    precision = tp_w / (tp_w + fp_w + EPS)
    return float((1 + beta2) * recall * precision / (recall + beta2 * precision + EPS))
