"""Evaluator speed: kdas_lab's vectorised metrics against a straightforward per-threshold loop.

The baseline follows the protocol's definition literally, as the published evaluators do: for each
of the 256 thresholds binarise the map, count TP/FP/FN/TN, compute Dice, IoU, sensitivity,
specificity and the E-measure from the full enhanced-alignment matrix; S-measure, weighted F
(full 2-D 7x7 convolution) and MAE once per image. Both run in this process, on one core, on the
same synthetic maps, and must agree to 1e-9.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.ndimage import convolve, distance_transform_edt, gaussian_filter

from kdas_lab.data.io import save_png_atomic
from kdas_lab.evaluation import evaluate_maps
from kdas_lab.metrics import dataset_scores, get_protocol, image_scores
from kdas_lab.metrics.protocols import prepare_pair
from kdas_lab.metrics.s_measure import s_measure

EPS = np.finfo(np.float64).eps


def synthetic_pair(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A blob mask (uint8 0/255) and a blurred, noisy, shifted prediction of it (uint8)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    ry, rx = rng.uniform(0.1, 0.3) * h, rng.uniform(0.1, 0.3) * w
    blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 + 0.3 * gaussian_filter(rng.standard_normal((h, w)), 8) * 8
    gt = blob < 1.0
    shift = rng.integers(-6, 7, size=2)
    soft = gaussian_filter(np.roll(gt, shift, axis=(0, 1)).astype(np.float64), rng.uniform(2, 6))
    pred = np.clip(soft + 0.08 * rng.standard_normal((h, w)), 0, 1)
    return np.rint(pred * 255).astype(np.uint8), np.where(gt, 255, 0).astype(np.uint8)


def _fspecial_gaussian(size: int = 7, sigma: float = 5.0) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    k = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))
    return k / k.sum()


def naive_weighted_f(p: np.ndarray, g: np.ndarray, mode: str) -> float:
    if not g.any():
        return 0.0
    dist, idx = distance_transform_edt(~g, return_indices=True)
    e = np.abs(p - g)
    et = e.copy()
    et[~g] = e[idx[0][~g], idx[1][~g]]
    ea = convolve(et, _fspecial_gaussian(), mode=mode, cval=0.0)
    min_e = e.copy()
    sel = g & (ea < e)
    min_e[sel] = ea[sel]
    b = np.ones_like(e)
    b[~g] = 2 - np.exp(np.log(0.5) / 5 * dist[~g])
    ew = min_e * b
    tpw = g.sum() - ew[g].sum()
    fpw = ew[~g].sum()
    r = 1 - ew[g].mean()
    prec = tpw / (tpw + fpw + EPS)
    return float(2 * r * prec / (r + prec + EPS))


def naive_emeasure(b: np.ndarray, g: np.ndarray) -> float:
    fm, gt = b.astype(np.float64), g.astype(np.float64)
    if gt.sum() == 0:
        enhanced = 1 - fm
    elif (1 - gt).sum() == 0:
        enhanced = fm
    else:
        a, c = fm - fm.mean(), gt - gt.mean()
        align = 2 * a * c / (a * a + c * c + EPS)
        enhanced = (align + 1) ** 2 / 4
    return float(enhanced.sum() / (g.size - 1 + EPS))


def naive_image(pred: np.ndarray, gt: np.ndarray, protocol: str = "kdas") -> dict[str, np.ndarray | float]:
    """Per-threshold loop over 256 binarisations (the definition, no histogram)."""
    proto = get_protocol(protocol)
    p, g, _ = prepare_pair(pred, gt, proto)
    curves = {k: np.zeros(256) for k in ("dice", "iou", "sen", "spe", "em")}
    n_fg = g.sum()
    for j, t in enumerate(proto.thresholds):
        b = p >= t if proto.name == "kdas" else np.floor(p * 255) >= round(t * 255)
        tp = np.sum(b & g)
        fp = np.sum(b & ~g)
        fn = n_fg - tp
        tn = g.size - tp - fp - fn
        if tp > 0:
            curves["dice"][j] = 2 * tp / (n_fg + tp + fp)
            curves["iou"][j] = tp / (tp + fp + fn)
            curves["sen"][j] = tp / n_fg
            curves["spe"][j] = tn / (tn + fp) if tn + fp else 0.0
        curves["em"][j] = naive_emeasure(b, g)
    return {"mae": float(np.mean(np.abs(p - g))), "wfm": naive_weighted_f(p, g, proto.wfm_mode),
            "sm": s_measure(p, g, ddof=proto.object_ddof, rule=proto.centroid), **curves}


def run_eval_bench(n_images: int = 8, size: tuple[int, int] = (288, 384), seed: int = 0,
                   protocol: str = "kdas") -> dict:
    """Time both evaluators on the same ``n_images`` synthetic maps (one core, this process)."""
    rng = np.random.default_rng(seed)
    pairs = [synthetic_pair(rng, size) for _ in range(n_images)]
    image_scores(*pairs[0], protocol)  # warm caches / imports
    t0 = time.perf_counter()
    fast = [image_scores(p, g, protocol) for p, g in pairs]
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = [naive_image(p, g, protocol) for p, g in pairs]
    t_naive = time.perf_counter() - t0
    diff = 0.0
    for f, n in zip(fast, naive):
        for k in ("dice", "iou", "sen", "spe", "em"):
            diff = max(diff, float(np.max(np.abs(getattr(f, k) - n[k]))))
        for k in ("mae", "wfm", "sm"):
            diff = max(diff, abs(getattr(f, k) - n[k]))
    return {"eval_speedup": t_naive / t_fast, "fast_s_per_image": t_fast / n_images,
            "naive_s_per_image": t_naive / n_images, "n_images": n_images, "size": list(size),
            "protocol": get_protocol(protocol).name, "max_abs_diff": diff, "processes": 1,
            "summary": dataset_scores(fast)}


# (count, (H, W)) of the five PraNet test sets; Kvasir's sizes vary, its median is used.
PRANET_TEST_SHAPES = {"Kvasir": (100, (529, 622)), "CVC-ClinicDB": (62, (288, 384)),
                      "CVC-ColonDB": (380, (500, 574)), "ETIS-LaribPolypDB": (196, (966, 1225)),
                      "CVC-300": (60, (500, 574))}


def run_pranet_scale_bench(out_dir, workers: int = 2, seed: int = 0, protocol: str = "matlab",
                           scale: float = 1.0) -> dict:
    """Write synthetic maps with the PraNet test sets' counts and sizes (``scale`` < 1: fewer images)
    under ``out_dir``, then time ``evaluate_maps`` with ``workers`` processes (reading included)."""


    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    n_total = 0
    for name, (count, shape) in PRANET_TEST_SHAPES.items():
        count = max(1, int(round(count * scale)))
        (out_dir / "pred" / name).mkdir(parents=True, exist_ok=True)
        (out_dir / "gt" / name / "masks").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            p, g = synthetic_pair(rng, shape)
            save_png_atomic(p, out_dir / "pred" / name / f"{i}.png")
            save_png_atomic(g, out_dir / "gt" / name / "masks" / f"{i}.png")
        n_total += count
    t0 = time.perf_counter()
    df = evaluate_maps(out_dir / "pred", out_dir / "gt", protocol=protocol, workers=workers, progress=False)
    seconds = time.perf_counter() - t0
    return {"n_images": n_total, "workers": workers, "seconds": seconds, "protocol": protocol,
            "images_per_s": n_total / seconds, "table": df}
