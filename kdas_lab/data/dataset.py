"""``PolypDataset``: one PraNet-layout folder (``images/`` + ``masks/``), strictly paired by stem.

Nothing is dropped silently: an image without a mask, a mask without an image, two files with one
stem, an unreadable file or an image/mask size mismatch raise :class:`DataError` naming the file.
Items: ``{"image": float (3,S,S) ImageNet-normalised, "mask": float (1,S,S) in [0,1], "stem": str}``
plus ``"mask_orig": uint8 (H,W) 0/255`` and ``"image_orig_size": (H, W)`` with ``return_original``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from kdas_lab.data.cache import cache_key, load_or_build_cache
from kdas_lab.data.io import check_same_size, load_image, load_mask
from kdas_lab.data.layout import find_pairs
from kdas_lab.data.transforms import build_augment, make_sample, resize_image, resize_mask


def load_pair(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 (H,W,3), bool (H,W))``; raises if the sizes differ."""
    image, mask = load_image(image_path), load_mask(mask_path)
    check_same_size(image_path, image, mask_path, mask)
    return image, mask


class PolypDataset(Dataset):
    """Images and binary masks of one PraNet set, resized to ``size`` x ``size``.

    ``augment=True`` turns on kdas_lab's joint augmentation (off in the published recipe).
    ``cache_dir`` keeps pre-resized uint8 arrays (see :mod:`kdas_lab.data.cache`).
    """

    def __init__(self, folder: str | os.PathLike, size: int, *, augment: bool = False,
                 stems: list[str] | None = None, return_original: bool = False,
                 cache_dir: str | os.PathLike | None = None, progress: bool = False):
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.folder, self.size = Path(folder), int(size)
        self.pairs = find_pairs(self.folder, stems)
        self.stems = [s for s, _, _ in self.pairs]
        self.return_original = return_original
        self.augment = build_augment(self.size) if augment else None
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        if cache_dir is not None:
            key = cache_key(self.folder, self.size, self.pairs)
            self._cache = load_or_build_cache(cache_dir, key, self.stems, self.size, self._resized_u8, progress)

    def __len__(self) -> int:
        return len(self.pairs)

    def _resized(self, i: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        _, img_path, msk_path = self.pairs[i]
        image, mask = load_pair(img_path, msk_path)
        img_t = torch.from_numpy(image).permute(2, 0, 1)  # (3, H, W) uint8 view
        msk_t = torch.from_numpy(mask)[None]  # (1, H, W) bool
        return resize_image(img_t, self.size), resize_mask(msk_t, self.size), mask

    def _resized_u8(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Cache rows: ``uint8 (S,S,3)`` image and ``uint8 (S,S)`` soft mask x 255."""
        image, mask, _ = self._resized(i)
        return image.permute(1, 2, 0).numpy(), (mask[0] * 255.0).round().to(torch.uint8).numpy()

    def __getitem__(self, i: int) -> dict:
        stem, img_path, msk_path = self.pairs[i]
        if self._cache is not None:
            image = torch.from_numpy(np.array(self._cache[0][i])).permute(2, 0, 1)  # (3, S, S) uint8
            mask = torch.from_numpy(np.array(self._cache[1][i]))[None].float() / 255.0  # (1, S, S)
            orig = load_mask(msk_path) if self.return_original else None
        else:
            image, mask, orig = self._resized(i)
        image, mask = make_sample(image, mask, self.augment)
        item = {"image": image, "mask": mask, "stem": stem}
        if self.return_original:
            item["mask_orig"] = orig.astype(np.uint8) * 255  # (H, W) 0/255
            item["image_orig_size"] = tuple(orig.shape)
        return item


def collate_eval(batch: list[dict]) -> dict:
    """Stack the fixed-size tensors; keep variable-size originals and stems as lists."""
    out: dict = {"image": torch.stack([b["image"] for b in batch]), "mask": torch.stack([b["mask"] for b in batch]),
                 "stem": [b["stem"] for b in batch]}
    for key in ("mask_orig", "image_orig_size"):
        if key in batch[0]:
            out[key] = [b[key] for b in batch]
    return out
