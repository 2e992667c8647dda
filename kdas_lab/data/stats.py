"""Dataset statistics: polyp area, polyp count and image size, per image and per dataset.

The per-mask numbers come from one small pure function (:func:`mask_stats`); the folder and dataset
functions only pair files and collect rows into pandas tables.

- ``area``: fraction of the image covered by polyp pixels, in [0, 1].
- ``n_polyps``: number of 8-connected polyp regions (``scipy.ndimage.label``); regions smaller than
  ``min_region`` pixels are counted separately in ``n_specks`` (JPEG masks leave a few), never dropped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from tqdm.auto import tqdm

from kdas_lab.data.io import load_mask
from kdas_lab.data.layout import dataset_folders, find_pairs

_EIGHT = np.ones((3, 3), dtype=bool)


def mask_stats(mask: np.ndarray, min_region: int = 10) -> dict[str, float]:
    """Numbers of one binary mask ``(H, W)`` (bool, or 0/1, or 0/255)."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    binary = np.asarray(mask) > (127 if mask.dtype == np.uint8 and mask.max() > 1 else 0)
    labels, n = ndimage.label(binary, structure=_EIGHT)
    sizes = np.bincount(labels.ravel())[1:] if n else np.zeros(0, dtype=np.int64)
    h, w = binary.shape
    return {
        "height": int(h),
        "width": int(w),
        "area": float(binary.mean()),
        "n_polyps": int((sizes >= min_region).sum()),
        "n_specks": int((sizes < min_region).sum()),
        "largest": float(sizes.max() / binary.size) if n else 0.0,
    }


def folder_stats(folder: str | Path, *, limit: int | None = None, progress: bool = False) -> pd.DataFrame:
    """One row per image of a folder with ``images/`` and ``masks/`` (index: stem)."""
    pairs = find_pairs(folder)[:limit]
    if progress:
        pairs = tqdm(pairs, desc=Path(folder).name, leave=False)
    rows = []
    for stem, _, mask_path in pairs:
        try:
            rows.append({"stem": stem, **mask_stats(load_mask(mask_path))})
        except Exception as exc:  # name the file, keep the cause
            raise ValueError(f"{mask_path}: cannot compute statistics: {exc}") from exc
    return pd.DataFrame(rows).set_index("stem")


def dataset_stats(root: str | Path, *, limit: int | None = None, progress: bool = False) -> pd.DataFrame:
    """Per-image rows for every dataset under ``root``, with a ``dataset`` column."""
    frames = []
    for name, folder in dataset_folders(root).items():
        df = folder_stats(folder, limit=limit, progress=progress).reset_index()
        df.insert(0, "dataset", name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def summarise_stats(per_image: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset: counts, polyp area (mean / median / min / max), polyps per image, sizes."""
    g = per_image.groupby("dataset", sort=False)
    out = pd.DataFrame({
        "images": g.size(),
        "area_mean": g["area"].mean(),
        "area_median": g["area"].median(),
        "area_min": g["area"].min(),
        "area_max": g["area"].max(),
        "polyps_mean": g["n_polyps"].mean(),
        "multi_polyp_frac": g["n_polyps"].apply(lambda s: float((s > 1).mean())),
        "empty_masks": g["n_polyps"].apply(lambda s: int((s == 0).sum())),
        "sizes": g.apply(lambda d: d.groupby(["height", "width"]).ngroups, include_groups=False),
        "common_size": g.apply(lambda d: "{}x{}".format(*d.groupby(["height", "width"]).size().idxmax()[::-1]),
                               include_groups=False),
    })
    return out
