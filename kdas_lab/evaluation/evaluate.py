"""Evaluate a model, or saved prediction maps, over PraNet test sets (``ROOT/TestDataset/<name>``).

``evaluate_model``: predict each test image (:func:`kdas_lab.evaluation.inference.predict_image`), store it at
the mask's size as the published test script's PNG levels (so the numbers equal those of
``evaluate_maps`` on the saved maps), score it under a protocol; a mask whose size differs from its
image is refused, naming both. ``evaluate_maps``: score maps
``PRED_ROOT/<name>/<stem>.png`` against ``TEST_ROOT/<name>/masks/<stem>.*``.
Both return a pandas DataFrame: one row per dataset, columns :data:`kdas_lab.metrics.METRIC_KEYS`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from kdas_lab.data.io import DataError, check_same_size, image_size, load_image, load_mask_grey, save_png_atomic
from kdas_lab.data.layout import find_pairs, find_test_root, index_by_stem, list_test_sets, pair_by_stem
from kdas_lab.evaluation.inference import predict_image, to_png_levels
from kdas_lab.metrics import METRIC_KEYS, dataset_scores, get_protocol, image_scores, map_scores
from kdas_lab.runtime import resolve_device


def _frame(rows: dict[str, dict[str, float]], protocol: str) -> pd.DataFrame:
    df = pd.DataFrame.from_dict(rows, orient="index")[list(METRIC_KEYS)]
    df.index.name = "dataset"
    df.attrs["protocol"] = protocol
    return df


def evaluate_model(model: nn.Module, root: str | os.PathLike, datasets: Sequence[str] | None = None,
                   protocol: str = "matlab", size: int = 352, save_maps: str | os.PathLike | None = None,
                   device: str | torch.device | None = None, progress: bool = True) -> pd.DataFrame:
    """Predict and evaluate every image of ``root``'s test sets. ``save_maps``: write
    ``save_maps/<name>/<stem>.png`` (atomic). ``device``: moves the model there when given."""
    proto = get_protocol(protocol)
    if device is not None:
        model = model.to(resolve_device(device))
    base = find_test_root(root)
    rows = {}
    for name in list_test_sets(base, datasets):
        pairs = find_pairs(base / name)
        out_dir = Path(save_maps) / name if save_maps is not None else None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        bar = pairs
        if progress:
            bar = tqdm(pairs, desc=name, leave=False)
        scores = []
        for stem, image_path, mask_path in bar:
            gt = load_mask_grey(mask_path)  # (H, W) uint8 as stored
            image = load_image(image_path)  # (H, W, 3) uint8
            check_same_size(image_path, image, mask_path, gt)
            prob = predict_image(model, image, size=size, out_size=gt.shape)
            levels = to_png_levels(prob)  # (H, W) uint8, the saved map
            if out_dir is not None:
                save_png_atomic(levels, out_dir / f"{stem}.png")
            scores.append(image_scores(levels, gt, proto, name=str(image_path)))
        rows[name] = dataset_scores(scores)
    return _frame(rows, proto.name)


def _load_map(path: Path) -> np.ndarray:
    return load_mask_grey(path, kind="prediction map")  # grey PNGs: same reader, uint8 (H, W)


def _score_files(args: tuple) -> np.ndarray:
    pred_path, gt_path, protocol = args
    return image_scores(_load_map(pred_path), load_mask_grey(gt_path), protocol, name=str(pred_path))


def match_maps(pred_dir: Path, gt_dir: Path) -> list[tuple[str, Path, Path]]:
    """``[(stem, pred, mask)]``; raises listing every missing or extra prediction."""
    masks_dir = gt_dir / "masks"
    return pair_by_stem(index_by_stem(pred_dir, "prediction"), index_by_stem(masks_dir, "mask"),
                        ("prediction", "mask"), (pred_dir, masks_dir))


def check_sizes(pairs: list[tuple[str, Path, Path]]) -> None:
    """Raise listing every prediction whose size differs from its mask's (``kdas`` protocol)."""
    bad = [f"{p} {image_size(p)} vs {m} {image_size(m)}" for _, p, m in pairs if image_size(p) != image_size(m)]
    if bad:
        raise DataError(f"{len(bad)} prediction(s) differ in size from their mask (protocol 'kdas' needs "
                        "maps saved at the mask's size): " + "; ".join(bad))


def evaluate_maps(pred_root: str | os.PathLike, gt_root: str | os.PathLike, datasets: Sequence[str] | None = None,
                  protocol: str = "matlab", workers: int = 0, progress: bool = True) -> pd.DataFrame:
    """Evaluate saved maps ``pred_root/<name>/<stem>.png`` against ``gt_root/<name>/masks``.

    ``datasets`` default: every folder of ``pred_root``. ``workers > 1``: a process pool over images.
    """
    proto = get_protocol(protocol)
    pred_root, base = Path(pred_root), find_test_root(gt_root)
    if not pred_root.is_dir():
        raise DataError(f"{pred_root}: prediction folder not found")
    if datasets is None:
        datasets = sorted(p.name for p in pred_root.iterdir() if p.is_dir())
        if not datasets:
            raise DataError(f"{pred_root}: no dataset folders with prediction maps")
    names = list_test_sets(base, datasets)
    rows = {}
    for name in names:
        pairs = match_maps(pred_root / name, base / name)
        if not proto.resize:
            check_sizes(pairs)
        items = [(p, m, proto) for _, p, m in pairs]
        scores = map_scores(_score_files, items, len(items), workers, progress=name if progress else False)
        rows[name] = dataset_scores(scores)
    return _frame(rows, proto.name)

