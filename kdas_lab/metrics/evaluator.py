"""Per-image scores and dataset summaries (``evaluate_images``), optionally over several processes.

Dataset aggregation follows both toolboxes: a threshold curve is averaged over images first, then
``meanX`` is the mean of that curve over the 256 thresholds and ``maxX`` its maximum.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from kdas_lab.metrics import functional as F
from kdas_lab.metrics.protocols import Protocol, get_protocol, prepare_pair
from kdas_lab.metrics.s_measure import s_measure
from kdas_lab.metrics.weighted_f import weighted_f_measure

METRIC_KEYS = ("meanDic", "meanIoU", "wFm", "Sm", "meanEm", "maxEm", "MAE", "maxDic", "maxIoU",
               "meanSen", "meanSpe")
CURVE_KEYS = ("dice", "iou", "sen", "spe", "em")


@dataclass
class ImageScores:
    """Scores of one image: scalars and (256,) curves over descending thresholds."""
    mae: float
    sm: float
    wfm: float
    dice: np.ndarray
    iou: np.ndarray
    sen: np.ndarray
    spe: np.ndarray
    em: np.ndarray

    def summary(self) -> dict[str, float]:
        """Per-image values as the KDAS evaluator reports them (curve means over thresholds)."""
        return {"meanDic": float(self.dice.mean()), "meanIoU": float(self.iou.mean()), "wFm": self.wfm,
                "Sm": self.sm, "meanEm": float(self.em.mean()), "MAE": self.mae,
                "maxDic": float(self.dice.max()), "maxIoU": float(self.iou.max()),
                "maxEm": float(self.em.max()), "meanSen": float(self.sen.mean()),
                "meanSpe": float(self.spe.mean())}


def image_scores(pred: np.ndarray, gt: np.ndarray, protocol: str | Protocol = "matlab",
                 name: str = "image") -> ImageScores:
    """All metrics of one (prediction, mask) pair under ``protocol``.

    pred: uint8 (H, W) 0..255 or float (H, W) in [0, 1]; gt: uint8 (H, W) 0..255, bool or float.
    """
    proto = get_protocol(protocol)
    p, g, counts = prepare_pair(pred, gt, proto, what=name)  # (H, W) float64, bool, int
    n_fg, n_total = int(g.sum()), g.size
    tp, fp = F.threshold_counts(counts, g)  # (256,) each
    return ImageScores(
        mae=F.mae(p, g),
        sm=s_measure(p, g, ddof=proto.object_ddof, rule=proto.centroid),
        wfm=weighted_f_measure(p, g, mode=proto.wfm_mode),
        dice=F.dice_curve(tp, fp, n_fg), iou=F.iou_curve(tp, fp, n_fg),
        sen=F.sensitivity_curve(tp, fp, n_fg), spe=F.specificity_curve(tp, fp, n_fg, n_total),
        em=F.emeasure_curve(tp, fp, n_fg, n_total),
    )


def dataset_scores(scores: Sequence[ImageScores]) -> dict[str, float]:
    """Dataset-level values with the keys of :data:`METRIC_KEYS`."""
    if not scores:
        raise ValueError("no images to summarise")
    curves = {k: np.mean([getattr(s, k) for s in scores], axis=0) for k in CURVE_KEYS}  # (256,) each
    out = {
        "meanDic": curves["dice"].mean(), "meanIoU": curves["iou"].mean(),
        "wFm": np.mean([s.wfm for s in scores]), "Sm": np.mean([s.sm for s in scores]),
        "meanEm": curves["em"].mean(), "maxEm": curves["em"].max(),
        "MAE": np.mean([s.mae for s in scores]),
        "maxDic": curves["dice"].max(), "maxIoU": curves["iou"].max(),
        "meanSen": curves["sen"].mean(), "meanSpe": curves["spe"].mean(),
    }
    return {k: float(out[k]) for k in METRIC_KEYS}


def _score_pair(args: tuple) -> ImageScores:
    pred, gt, protocol, name = args
    return image_scores(pred, gt, protocol, name)


def map_scores(fn, items: Iterable, n: int, workers: int = 0, progress: bool | str = False) -> list:
    """``[fn(item) for item in items]`` in order, over ``workers`` processes (0/1: in this process)."""
    bar = None
    if progress:
        bar = tqdm(total=n, desc=progress if isinstance(progress, str) else "evaluate", leave=False)
    out = []
    try:
        if workers and workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for r in pool.map(fn, items, chunksize=max(1, n // (8 * workers))):
                    out.append(r)
                    if bar is not None:
                        bar.update(1)
        else:
            for item in items:
                out.append(fn(item))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out


def evaluate_images(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], protocol: str = "matlab", *,
                    names: Sequence[str] | None = None, workers: int = 0, progress: bool | str = False,
                    return_scores: bool = False):
    """Evaluate paired maps; returns the dataset dict (:data:`METRIC_KEYS`), and the per-image
    :class:`ImageScores` list too when ``return_scores``."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} masks")
    proto = get_protocol(protocol)
    names = list(names) if names is not None else [f"image {i}" for i in range(len(preds))]
    items = [(np.asarray(p), np.asarray(g), proto, n) for p, g, n in zip(preds, gts, names)]
    scores = map_scores(_score_pair, items, len(items), workers, progress)
    summary = dataset_scores(scores)
    return (summary, scores) if return_scores else summary


def _to_numpy_maps(x) -> list[np.ndarray]:
    if hasattr(x, "detach"):  # torch tensor (B, 1, H, W) or (B, H, W)
        x = x.detach().float().cpu().numpy()
    if isinstance(x, np.ndarray):
        if x.ndim == 4:
            x = x[:, 0]
        if x.ndim == 2:
            x = x[None]
        return [np.asarray(m) for m in x]
    return [m.detach().float().cpu().numpy() if hasattr(m, "detach") else np.asarray(m) for m in x]


def mean_dice(preds, gts, protocol: str = "matlab") -> float:
    """Threshold-averaged Dice (the tables' mDice) of probability maps, for validation.

    preds: list of (H, W) maps or a (B, 1, H, W) tensor/array in [0, 1]; gts the same shapes
    (float masks are binarised at 0.5). Same pre-processing as :func:`evaluate_images`.
    """
    proto = get_protocol(protocol)
    ps, gs = _to_numpy_maps(preds), _to_numpy_maps(gts)
    if len(ps) != len(gs):
        raise ValueError(f"{len(ps)} predictions but {len(gs)} masks")
    curve = np.zeros(F.N_THRESHOLDS)
    for i, (p, g) in enumerate(zip(ps, gs)):
        p = np.squeeze(p)
        if np.issubdtype(p.dtype, np.floating):
            p = np.clip(p.astype(np.float64), 0.0, 1.0)
        pp, gb, counts = prepare_pair(p, np.squeeze(g), proto, what=f"image {i}")
        tp, fp = F.threshold_counts(counts, gb)
        curve += F.dice_curve(tp, fp, int(gb.sum()))
    return float((curve / max(len(ps), 1)).mean())
