"""Optional pre-resized cache: the decoded, resized uint8 arrays of one split at one size.

Decoding a 1920x1072 JPEG and resizing it costs far more than a training step of a small model on
a GPU; the cache does it once. Per (folder, size, stems, file stamps) it stores
``<key>.images.npy`` ``uint8 (N, S, S, 3)``, ``<key>.masks.npy`` ``uint8 (N, S, S)`` (the soft,
bilinearly resized mask x 255, rounded: a 1/510 quantisation) and ``<key>.json`` (the stems;
written last, so a cache without it is incomplete and is rebuilt). Every file is written to a temp
name and renamed. Any change of the source files gives a new key.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from kdas_lab.atomic import atomic_path, clean_stale, write_text_atomic
from kdas_lab.data.io import DataError


def cache_key(folder: Path, size: int, pairs: list[tuple[str, Path, Path]]) -> str:
    h = hashlib.sha256(f"{Path(folder).resolve()}|{size}".encode())
    for stem, img, msk in pairs:
        for p in (img, msk):
            st = p.stat()
            h.update(f"|{stem}|{p.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"{Path(folder).name}-{size}-{h.hexdigest()[:16]}"


def cache_paths(cache_dir: Path, key: str) -> tuple[Path, Path, Path]:
    return cache_dir / f"{key}.images.npy", cache_dir / f"{key}.masks.npy", cache_dir / f"{key}.json"


def cache_folder(path: str | os.PathLike) -> Path:
    """Create the cache folder ``path`` (inside the data folder by default); a data folder that cannot be
    written is one error naming the folder and the ways round it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot create the cache folder ({exc.strerror}): the data folder is read-only "
                        "for this user; run with --set cache=false (no pre-resized images) and, for a teacher "
                        "cache, --set teacher_cache_dir=runs/teacher_cache (a writable "
                        "folder), or copy the data somewhere writable") from None
    return path


def load_or_build_cache(cache_dir: str | os.PathLike, key: str, stems: list[str], size: int,
                        load_resized: Callable[[int], tuple[np.ndarray, np.ndarray]],
                        progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Memory-mapped ``(images (N,S,S,3), masks (N,S,S))``; builds them with ``load_resized(i)`` if absent."""
    cache_dir = cache_folder(cache_dir)
    clean_stale(cache_dir)
    img_path, msk_path, meta_path = cache_paths(cache_dir, key)
    if meta_path.exists() and img_path.exists() and msk_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("stems") == stems and meta.get("size") == size:
                images, masks = np.load(img_path, mmap_mode="r"), np.load(msk_path, mmap_mode="r")
                if images.shape == (len(stems), size, size, 3) and masks.shape == (len(stems), size, size):
                    return images, masks
            raise ValueError("it does not match the data")
        except (OSError, ValueError, AttributeError) as exc:  # a damaged cache is rebuilt, and said so
            print(f"note: rebuilding the cache {meta_path} ({exc})", file=sys.stderr)
    n = len(stems)
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    for i in tqdm(range(n), desc=f"caching {key}", disable=not progress, leave=False):
        images[i], masks[i] = load_resized(i)
    for arr, dst in ((images, img_path), (masks, msk_path)):
        with atomic_path(dst) as tmp:
            np.save(tmp, arr)
    write_text_atomic(meta_path, json.dumps({"stems": stems, "size": size}))
    return np.load(img_path, mmap_mode="r"), np.load(msk_path, mmap_mode="r")
