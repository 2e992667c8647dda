"""Device-resident training data: the resized images and masks held as tensors on the device.

For a training set that fits (PraNet: 1,450 images), the trainer keeps the pre-resized uint8 images
``(N, 3, S, S)`` and the masks ``(N, 1, S, S)`` on the device and does normalisation there (dihedral
views are applied by the trainer on the device in both paths), so no DataLoader worker is needed.
Masks are the uint8 cache rows (``cfg.cache``, :mod:`kdas_lab.data.cache`) or, without the cache,
the soft float32 masks, so a batch equals the DataLoader's bit for bit. Batches are drawn from the
DataLoader's own batch sampler after the same base-seed draw a DataLoader iterator makes, so the
seeded generator (and with it resume) advances exactly as on the DataLoader path.
``device_data=None`` turns it on for CUDA when the arrays take at most ``cfg.device_data_max_fraction``
(default 0.5, a policy: the rest is left to the networks) of the
free device memory; continuous random augmentation (``augment_mode="random"``) keeps the workers.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from kdas_lab.data.transforms import IMAGENET_MEAN, IMAGENET_STD


class DeviceData:
    """Images (uint8) and masks (uint8 x 255 or float32) of one dataset, on ``device``."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, stems: list[str]):
        self.images, self.masks, self.stems = images, masks, list(stems)  # (N, 3, S, S), (N, 1, S, S)
        self.device = images.device
        # the same float32 constants as kdas_lab.data.transforms.normalize, so results are identical
        self.mean = (torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0).to(self.device)  # (1, 3, 1, 1)
        self.scale = (1.0 / (torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)).to(self.device)  # (1, 3, 1, 1)

    @classmethod
    def from_dataset(cls, dataset, device: torch.device, progress: bool = False) -> DeviceData:
        """From a :class:`~kdas_lab.data.PolypDataset` without random augmentation."""
        if dataset._cache is not None:  # uint8 rows of the pre-resized cache
            images = torch.from_numpy(np.array(dataset._cache[0])).permute(0, 3, 1, 2)  # (N, 3, S, S)
            masks = torch.from_numpy(np.array(dataset._cache[1]))[:, None]  # (N, 1, S, S) uint8
        else:  # decode once; soft float masks, exactly what the dataset returns
            imgs, msks = [], []
            for i in tqdm(range(len(dataset)), desc="device data", disable=not progress, leave=False):
                image, mask, _ = dataset._resized(i)
                imgs.append(image)  # (3, S, S) uint8
                msks.append(mask.float())  # (1, S, S) float32
            images, masks = torch.stack(imgs), torch.stack(msks)  # (N, 3, S, S), (N, 1, S, S)
        return cls(images.contiguous().to(device), masks.contiguous().to(device), dataset.stems)

    def __len__(self) -> int:
        return len(self.stems)

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size() + self.masks.numel() * self.masks.element_size()

    def batch(self, indices: list[int]) -> dict:
        """``{"image": (B, 3, S, S) normalised float32, "mask": (B, 1, S, S) in [0, 1], "stem": [...]}``."""
        index = torch.as_tensor(indices, dtype=torch.long).to(self.device)  # (B,)
        images = (self.images.index_select(0, index).float() - self.mean).mul_(self.scale)  # (B, 3, S, S)
        masks = self.masks.index_select(0, index).float()  # (B, 1, S, S)
        if self.masks.dtype == torch.uint8:
            masks = masks / 255.0
        return {"image": images, "mask": masks, "stem": [self.stems[i] for i in indices]}

    def epoch(self, loader):
        """The batches ``loader`` would give in this epoch, drawn with its sampler and generator."""
        # a DataLoader iterator draws its base seed from the generator first: do the same
        torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
        for indices in loader.batch_sampler:
            yield self.batch(list(indices))


def estimate_bytes(dataset) -> int:
    n, s = len(dataset), dataset.size
    return n * s * s * 3 + n * s * s * (1 if dataset._cache is not None else 4)


def decide(cfg, dataset, device: torch.device) -> tuple[bool, str]:
    """``(use, why)`` for ``cfg.device_data`` on ``device`` (the reason is logged)."""
    if cfg.device_data is False:
        return False, "device_data=false"
    if dataset.augment is not None:
        return False, "augment_mode='random' augments per sample in DataLoader workers"
    if cfg.device_data is None and device.type != "cuda":
        return False, f"device_data=None is on for CUDA only (device {device})"
    need = estimate_bytes(dataset)
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
        limit = free * cfg.device_data_max_fraction if cfg.device_data is None else free
        if need > limit:
            return False, f"{need / 2**20:.0f} MiB of data > {limit / 2**20:.0f} MiB allowed on {device}"
    return True, f"{len(dataset)} images at {dataset.size} px, {need / 2**20:.0f} MiB on {device}"


def for_run(cfg, dataset, device: torch.device, *, is_main: bool = True,
            progress: bool = True) -> DeviceData | None:
    """Device data for a run training on ``dataset``, or None (DataLoader workers); one log line."""
    use, why = decide(cfg, dataset, device)
    if cfg.device_data is None and not use and device.type != "cuda":
        return None  # the CPU default: nothing to say
    if is_main:
        tqdm.write(f"device_data: {'on' if use else 'off'} ({why})")
    return DeviceData.from_dataset(dataset, device, progress) if use else None
