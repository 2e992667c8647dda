"""Data-loading throughput: samples/s of ``PolypDataset`` with and without the pre-resized cache.

``run_data_bench(root, size)`` times ``n`` samples of ``root/TrainDataset`` through a DataLoader
(decode + resize + normalise, no augmentation) once from the original files and once from the
uint8 cache (whose one-off build time is reported separately).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from kdas_lab.data.dataset import PolypDataset


def _throughput(ds: PolypDataset, n: int, workers: int, batch_size: int) -> float:
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    seen, t0 = 0, time.perf_counter()
    while seen < n:
        for batch in loader:
            seen += batch["image"].shape[0]
            if seen >= n:
                break
    return seen / (time.perf_counter() - t0)


def run_data_bench(root: str | os.PathLike, size: int, n: int = 64, workers: int = 0, batch_size: int = 8,
                   cache_dir: str | os.PathLike | None = None) -> dict:
    """``{"samples_per_s_files", "samples_per_s_cache", "cache_build_s", "speedup", ...}``."""
    folder = Path(root) / "TrainDataset"
    stems = PolypDataset(folder, size).stems[:n]
    plain = PolypDataset(folder, size, stems=stems)
    files_rate = _throughput(plain, n, workers, batch_size)
    with tempfile.TemporaryDirectory(prefix="kdas_cache_") as tmp:
        t0 = time.perf_counter()
        cached = PolypDataset(folder, size, stems=stems, cache_dir=cache_dir or tmp)
        build_s = time.perf_counter() - t0
        cache_rate = _throughput(cached, n, workers, batch_size)
    return {"root": str(root), "size": size, "n": len(stems), "workers": workers, "batch_size": batch_size,
            "samples_per_s_files": round(files_rate, 1), "samples_per_s_cache": round(cache_rate, 1),
            "cache_build_s": round(build_s, 2), "speedup": round(cache_rate / files_rate, 2)}
