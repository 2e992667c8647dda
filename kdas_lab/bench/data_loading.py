"""Data-loading throughput: samples/s of ``PolypDataset`` with and without the pre-resized cache.

``run_data_bench(root, size)`` times ``n`` samples (spread over the stems) of the training folder of ``root``
through a DataLoader
(decode + resize + normalise, no augmentation) once from the original files and once from the
uint8 cache (whose one-off build time is reported separately).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from kdas_lab.data.dataset import PolypDataset
from kdas_lab.data.layout import train_folder


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
                   cache_dir: str | os.PathLike | None = None, torch_threads: int | None = 1) -> dict:
    """``{"samples_per_s_files", "samples_per_s_cache", "cache_build_s", "speedup", ...}``.

    ``torch_threads=1`` (default) runs the main process like a DataLoader worker (which PyTorch
    limits to one thread); per-sample tensors are too small to gain from more, and on a busy
    machine extra threads cost a lot. ``None`` keeps the current setting."""
    previous = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    try:
        return _bench(Path(root), size, n, workers, batch_size, cache_dir)
    finally:
        torch.set_num_threads(previous)


def _bench(root: Path, size: int, n: int, workers: int, batch_size: int, cache_dir) -> dict:
    folder = train_folder(root)
    all_stems = PolypDataset(folder, size).stems
    stems = all_stems[:: max(1, len(all_stems) // n)][:n]  # spread over the sorted stems (both sources)
    plain = PolypDataset(folder, size, stems=stems)
    files_rate = _throughput(plain, n, workers, batch_size)
    with tempfile.TemporaryDirectory(prefix="kdas_cache_") as tmp:
        t0 = time.perf_counter()
        cached = PolypDataset(folder, size, stems=stems, cache_dir=cache_dir or tmp)
        build_s = time.perf_counter() - t0
        cache_rate = _throughput(cached, n, workers, batch_size)
    return {"root": str(root), "size": size, "n": len(stems), "workers": workers, "batch_size": batch_size,
            "torch_threads": torch.get_num_threads(),
            "samples_per_s_files": round(files_rate, 1), "samples_per_s_cache": round(cache_rate, 1),
            "cache_build_s": round(build_s, 2), "speedup": round(cache_rate / files_rate, 2)}
