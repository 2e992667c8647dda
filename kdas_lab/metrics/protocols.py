"""The two evaluation protocols and the pre-processing each applies to a (prediction, mask) pair.

``matlab`` — the PraNet MATLAB toolbox (used for the Polyp-PVT paper table):
  prediction resized to the mask's size, min-max normalised per image (``mapminmax``); mask ``> 128``;
  256 thresholds at the exact levels ``1:-1/255:0`` (a pixel is on at level k iff
  ``floor(255 * pred) >= k``, as PySODMetrics bins it); S-measure object score with the sample std
  (``std``), centroid ``round`` of the 1-based mean (MATLAB rounds halves away from zero);
  weighted-F Gaussian filter with zero padding (``imfilter``).
``kdas`` — the Python evaluator shipped with the published KDAS code (a port of UACANet's):
  prediction ``png / 255`` as saved, no re-normalisation, sizes must already match; mask
  ``/255 > 0.5`` (so 128 counts as foreground); thresholds ``numpy.linspace(1, 0, 256)`` (floats that
  miss the exact levels); object score with the population std (``np.std``), centroid = the 0-based
  mean rounded half-to-even; weighted-F filter with ``mode='nearest'``.

See docs/evaluation.md for every difference and the edge-case conventions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

N_THRESHOLDS = 256


@dataclass(frozen=True)
class Protocol:
    name: str
    gt_level: int  # uint8 mask: foreground iff value > gt_level
    minmax: bool  # min-max normalise the prediction per image
    resize: bool  # resize the prediction to the mask's size (else: sizes must match)
    object_ddof: int  # std ddof in the S-measure object score
    centroid: str  # "matlab" (1-based, half away from zero) | "rounded" (0-based, half to even)
    wfm_mode: str  # scipy.ndimage boundary mode of the weighted-F Gaussian filter
    thresholds: np.ndarray = field(repr=False)  # (256,) descending, 1 -> 0

    def level_counts(self, pred: np.ndarray) -> np.ndarray:
        """Number of thresholds ``<= pred`` for every pixel, an int in [0, 256].

        A pixel is "on" at descending threshold index j iff ``count >= 256 - j``, so one histogram of
        these counts gives TP/FP at all 256 thresholds (see :func:`functional.threshold_counts`).
        """
        if self.name == "matlab":
            # PySODMetrics' binning: exact level k is reached iff floor(255 * p) >= k.
            return (pred * 255).astype(np.uint8).astype(np.int64) + 1
        ascending = self.thresholds[::-1]
        return np.searchsorted(ascending, pred, side="right")


MATLAB = Protocol("matlab", gt_level=128, minmax=True, resize=True, object_ddof=1, centroid="matlab",
                  wfm_mode="constant", thresholds=np.arange(255, -1, -1, dtype=np.float64) / 255)
KDAS = Protocol("kdas", gt_level=127, minmax=False, resize=False, object_ddof=0, centroid="rounded",
                wfm_mode="nearest", thresholds=np.linspace(1, 0, N_THRESHOLDS))
PROTOCOLS: dict[str, Protocol] = {"matlab": MATLAB, "kdas": KDAS}

# Per uint8 value: number of kdas thresholds <= value / 255 (exactly the evaluator's float comparison).
_KDAS_LUT = np.searchsorted(KDAS.thresholds[::-1], np.arange(256, dtype=np.float64) / 255, side="right")


def get_protocol(protocol: str | Protocol) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def _gray(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:  # H, W, C image read as colour: both toolboxes take the first channel
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D map (H, W), got shape {a.shape}")
    return a


def binarize_gt(gt: np.ndarray, protocol: str | Protocol) -> np.ndarray:
    """bool (H, W). uint8 masks use the protocol's level; float masks in [0, 1] use ``> 0.5``."""
    proto = get_protocol(protocol)
    gt = _gray(gt, "mask")
    if gt.dtype == bool:
        return gt
    if np.issubdtype(gt.dtype, np.integer):
        return gt > proto.gt_level
    return gt > 0.5


def resize_pred(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of a prediction (uint8 or float) to ``shape`` (like MATLAB ``imresize``)."""
    h, w = shape
    if pred.dtype == np.uint8:
        return np.asarray(Image.fromarray(pred).resize((w, h), Image.BICUBIC))
    out = np.asarray(Image.fromarray(pred.astype(np.float32), mode="F").resize((w, h), Image.BICUBIC))
    return np.clip(out, 0.0, 1.0).astype(np.float64)


def prepare_pair(pred: np.ndarray, gt: np.ndarray, protocol: str | Protocol,
                 what: str = "image") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the protocol's pre-processing.

    Args: pred uint8 (H, W) 0..255 or float in [0, 1]; gt uint8/bool/float (H, W).
    Returns: ``pred`` float64 (H, W) in [0, 1], ``gt`` bool (H, W), ``counts`` int (H, W) (see
    :meth:`Protocol.level_counts`).
    """
    proto = get_protocol(protocol)
    pred = _gray(pred, f"{what}: prediction")
    g = binarize_gt(gt, proto)
    if pred.shape != g.shape:
        if not proto.resize:
            raise ValueError(f"{what}: prediction size {pred.shape} != mask size {g.shape} "
                             f"(protocol {proto.name!r} requires maps saved at the mask's size)")
        pred = resize_pred(pred, g.shape)
    if pred.dtype == np.uint8:
        p = pred / 255.0
    elif np.issubdtype(pred.dtype, np.floating):
        p = pred.astype(np.float64)
        if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
            raise ValueError(f"{what}: float prediction must be finite and in [0, 1] "
                             f"(got min {np.nanmin(p):.4g}, max {np.nanmax(p):.4g})")
    else:
        raise ValueError(f"{what}: prediction dtype {pred.dtype} not supported (uint8 or float in [0, 1])")
    if proto.minmax and p.max() != p.min():  # a constant map is left as it is (PySODMetrics)
        p = (p - p.min()) / (p.max() - p.min())
    if proto.name == "kdas" and pred.dtype == np.uint8:
        counts = _KDAS_LUT[pred]
    else:
        counts = proto.level_counts(p)
    return p, g, counts
