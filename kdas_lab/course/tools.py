"""Small pieces the notebooks need and tests check: where the data are, which failure cases to show,
a new frame that holds a polyp."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kdas_lab.bench.efficiency import count_macs, time_forward
from kdas_lab.config import Config
from kdas_lab.data.io import load_image, load_mask
from kdas_lab.data.layout import data_root, find_pairs, find_test_root, has_train_images, list_test_sets
from kdas_lab.data.manifest import is_synthetic
from kdas_lab.data.synthetic import ensure_synthetic, render_frame
from kdas_lab.evaluation import evaluate_model
from kdas_lab.runtime import resolve_device


def synthetic_folder(cfg: Config) -> Path:
    """Where a profile's stand-in synthetic set lives: never the folder meant for real data."""
    return Path(f"data/synthetic_{cfg.profile}")


def course_data(cfg: Config) -> tuple[Path, bool]:
    """``(root, synthetic)``. Real data when ``cfg.data_dir`` holds them. Otherwise the ``fast`` profile
    builds its synthetic set there (its data folder is a synthetic one); any other profile builds a
    synthetic stand-in in ``data/synthetic_<profile>``, says so loudly, and leaves ``cfg.data_dir`` empty
    for the real data."""
    root = Path(cfg.data_dir)
    if has_train_images(root):
        return root, is_synthetic(root)
    if cfg.profile == "fast":
        return data_root(cfg), True  # the one rule (kdas_lab.data.layout.data_root): built in data_dir
    stand_in = synthetic_folder(cfg)
    print(f"NOTICE: no real data in {root} (the {cfg.profile} profile's data folder). Install them there "
          f"(section 3 below). Meanwhile this notebook shows a SYNTHETIC stand-in set, {stand_in}; the "
          f"later notebooks refuse to train on it unless you pass KDAS_DATA_DIR={stand_in}.")
    return ensure_synthetic(cfg.replace(data_dir=stand_in)), True


def worst_with_polyp(dice: pd.Series, gts: Sequence[np.ndarray], k: int = 3) -> tuple[list, list]:
    """``(worst, empty)``: the ``k`` lowest-Dice images among those whose mask holds a polyp, and the
    images with an empty mask (with no true positive possible, the toolbox scores their Dice 0 at every
    threshold whatever the prediction, so they say nothing about how well polyps are outlined)."""
    if len(dice) != len(gts):
        raise ValueError(f"{len(dice)} scores for {len(gts)} masks")
    has_polyp = np.array([bool(np.asarray(g).any()) for g in gts])
    worst = list(dice[has_polyp].sort_values().index[:k])
    return worst, list(dice.index[~has_polyp])


def frame_with_polyp(seed: int = 2024, size: int = 96, tries: int = 100) -> tuple[np.ndarray, np.ndarray, int]:
    """``(image, mask, seed)``: the first synthetic frame from ``seed`` on whose mask holds a polyp
    covering at least 5 % of it (about 7 % of frames hold none, as in the real test sets)."""
    for s in range(seed, seed + tries):
        image, mask = render_frame(np.random.default_rng(s), size=size)
        if mask.mean() >= 0.05:
            return image, mask, s
    raise RuntimeError(f"no frame with a polyp among seeds {seed}..{seed + tries - 1}")


def unseen_frame(root: str | Path, seed: int = 2024) -> tuple[np.ndarray, np.ndarray, str]:
    """``(image, mask, where)``: a frame no model trained on. On real data, the test image of median polyp size
    in the last test set (test sets are never trained on); on synthetic data, a frame rendered fresh
    (:func:`frame_with_polyp`)."""
    if is_synthetic(root):
        image, mask, s = frame_with_polyp(seed=seed)
        return image, mask, f"a synthetic frame rendered fresh (seed {s})"
    test_root = find_test_root(root)
    name = list_test_sets(test_root)[-1]
    pairs = find_pairs(test_root / name)
    masks = [load_mask(p[2]) for p in pairs]
    with_polyp = sorted((float(m.mean()), i) for i, m in enumerate(masks) if m.any())
    i = with_polyp[len(with_polyp) // 2][1]
    return load_image(pairs[i][1]), masks[i], f"{name} test image {pairs[i][0]} (median polyp size)"


def comparison_table(models: dict, root: str | Path, size: int, device: str = "auto",
                     iters: int = 5) -> pd.DataFrame:
    """One row per model (``{name: model or kdas_lab.course.sources.Source}``): meanDic on every test set
    (``matlab`` protocol at ``size``), parameters, GMACs and batch-1 latency at ``size`` on ``device``."""
    dev = resolve_device(device)
    rows = {}
    for name, m in models.items():
        model = getattr(m, "model", m).to(dev).eval()
        scores = evaluate_model(model, root, size=size, device=dev, progress=False)["meanDic"]
        x = torch.randn(1, 3, size, size, device=dev)
        rows[name] = {**{f"meanDic {d}": float(v) for d, v in scores.items()},
                      "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
                      "GMACs": count_macs(model, x) / 1e9,
                      f"latency_ms ({dev.type}, b1)": 1e3 * time_forward(model, x, 1, iters)}
    return pd.DataFrame(rows).T.rename_axis(f"{size} px")
