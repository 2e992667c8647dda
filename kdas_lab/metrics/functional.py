"""Threshold curves of one image from a single cumulative histogram, and MAE.

At each of the 256 thresholds t (descending, 1 -> 0) the prediction is binarised as ``P_t = pred >= t``.
Every threshold-dependent metric of the toolboxes (Dice, IoU, sensitivity, specificity, E-measure)
depends only on the four counts TP, FP, FN, TN at t, so instead of binarising 256 times we take one
histogram of "how many thresholds each pixel passes" split by the mask, and cumulate it.
"""
from __future__ import annotations

import numpy as np

EPS = np.finfo(np.float64).eps  # MATLAB's eps, 2.2204e-16
N_THRESHOLDS = 256


def threshold_counts(counts: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TP and FP at the 256 descending thresholds.

    Args:
        counts: int (H, W) in [0, 256], number of thresholds <= each pixel's value.
        gt: bool (H, W).
    Returns:
        tp, fp: int64 (256,); index j is threshold j of the descending list.
    """
    hist = np.bincount(counts.ravel() + (N_THRESHOLDS + 1) * gt.ravel(), minlength=2 * (N_THRESHOLDS + 1))
    bg_hist, fg_hist = hist[: N_THRESHOLDS + 1], hist[N_THRESHOLDS + 1:]  # (257,) each
    # on at index j  <=>  count >= 256 - j: reverse, cumulate, drop the never-on bin (count 0).
    tp = np.cumsum(fg_hist[::-1])[:N_THRESHOLDS]
    fp = np.cumsum(bg_hist[::-1])[:N_THRESHOLDS]
    return tp, fp


def _ratio_or_zero(num: np.ndarray, den: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """``num / den`` where TP > 0, else 0 (the toolbox's convention for every count metric)."""
    out = np.zeros(tp.shape, dtype=np.float64)
    ok = tp > 0
    out[ok] = num[ok] / den[ok]
    return out


def dice_curve(tp: np.ndarray, fp: np.ndarray, n_fg: int) -> np.ndarray:
    """Dice = 2 TP / (|G| + |P|), 0 when TP = 0.  (256,)"""
    tp = tp.astype(np.float64)
    return _ratio_or_zero(2 * tp, n_fg + tp + fp, tp)


def iou_curve(tp: np.ndarray, fp: np.ndarray, n_fg: int) -> np.ndarray:
    """IoU = TP / (TP + FP + FN), 0 when TP = 0.  (256,)"""
    tp = tp.astype(np.float64)
    return _ratio_or_zero(tp, fp + n_fg, tp)  # TP + FP + FN = FP + |G|


def sensitivity_curve(tp: np.ndarray, fp: np.ndarray, n_fg: int) -> np.ndarray:
    """Sensitivity (recall) = TP / |G|, 0 when TP = 0.  (256,)"""
    tp = tp.astype(np.float64)
    return _ratio_or_zero(tp, np.full(tp.shape, float(n_fg)), tp)


def specificity_curve(tp: np.ndarray, fp: np.ndarray, n_fg: int, n_total: int) -> np.ndarray:
    """Specificity = TN / (TN + FP), **0 when TP = 0** (PraNet toolbox ``Fmeasure_calu``) and 0 for an
    all-foreground mask (no negatives; MATLAB would give NaN).  (256,)"""
    n_bg = n_total - n_fg
    if n_bg == 0:
        return np.zeros(tp.shape, dtype=np.float64)
    tn = (n_bg - fp).astype(np.float64)
    return _ratio_or_zero(tn, np.full(tn.shape, float(n_bg)), tp)


def _enhanced(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Enhanced alignment of a pixel with demeaned values a (prediction) and b (mask)."""
    align = 2 * a * b / (a * a + b * b + EPS)
    return (align + 1) ** 2 / 4


def emeasure_curve(tp: np.ndarray, fp: np.ndarray, n_fg: int, n_total: int) -> np.ndarray:
    """E-measure (Fan et al., IJCAI 2018) of each binarised map, from the counts alone.  (256,)

    With binary maps the demeaned values take only two values each: the prediction is 1 - mu_P or
    -mu_P (mu_P = (TP + FP) / N), the mask 1 - mu_G or -mu_G. So the enhanced-alignment matrix has
    four distinct values, one per class TP / FP / FN / TN, and its sum is a count-weighted sum.
    Score = sum / (N - 1 + eps). Empty mask: sum(1 - P); full mask: sum(P) (toolbox rule).
    """
    tp = tp.astype(np.float64)
    fp = fp.astype(np.float64)
    n_pred = tp + fp
    if n_fg == 0:
        total = n_total - n_pred
    elif n_fg == n_total:
        total = n_pred
    else:
        fn = n_fg - tp
        tn = n_total - n_fg - fp
        mu_p = n_pred / n_total  # (256,)
        mu_g = n_fg / n_total
        total = (tp * _enhanced(1 - mu_p, 1 - mu_g) + fp * _enhanced(1 - mu_p, -mu_g)
                 + fn * _enhanced(-mu_p, 1 - mu_g) + tn * _enhanced(-mu_p, -mu_g))
    return total / (n_total - 1 + EPS)


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error between a [0, 1] map and the binary mask."""
    return float(np.mean(np.abs(pred - gt)))
