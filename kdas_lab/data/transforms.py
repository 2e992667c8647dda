"""Joint image + mask transforms (torchvision.transforms.v2 with ``tv_tensors.Mask``) and ImageNet normalisation.

Resizing follows the published recipe: image AND mask are resized bilinearly (antialiased, like
Pillow's resize), so training targets are soft at the polyp border. Augmentation (``augment=True``,
off in the published recipe because of a string-vs-bool bug) runs after the resize, jointly:
flips, rotation, scale/crop, and colour jitter (colour jitter touches the image only).
"""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8 (3, H, W)`` -> ``uint8 (3, S, S)``, bilinear + antialias."""
    return TF.resize(image, [size, size], interpolation=v2.InterpolationMode.BILINEAR, antialias=True)


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Binary ``(1, H, W)`` -> soft ``float32 (1, S, S)`` in [0, 1], bilinear + antialias (as published)."""
    out = TF.resize(mask.float(), [size, size], interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
    return out.clamp_(0.0, 1.0)


def build_augment(size: int, *, degrees: float = 90.0, scale: tuple[float, float] = (0.75, 1.0),
                  jitter: float = 0.2) -> v2.Compose:
    """kdas_lab's joint augmentation at the training size; call as ``aug(Image, Mask)``."""
    return v2.Compose([
        v2.RandomHorizontalFlip(0.5),
        v2.RandomVerticalFlip(0.5),
        v2.RandomApply([v2.RandomRotation(degrees, interpolation=v2.InterpolationMode.BILINEAR)], p=0.5),
        v2.RandomApply([v2.RandomResizedCrop(size, scale=scale, ratio=(0.8, 1.25), antialias=True)], p=0.5),
        v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=0.02),
    ])


def normalize(image: torch.Tensor) -> torch.Tensor:
    """``uint8 (3, S, S)`` -> ImageNet-normalised ``float32 (3, S, S)``."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1) * 255.0
    scale = 1.0 / (torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255.0)
    return (image.float() - mean).mul_(scale)  # (x / 255 - mean) / std in two passes


def denormalize(t: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize` for ``(3, H, W)`` or ``(B, 3, H, W)``: float in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=t.dtype, device=t.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=t.dtype, device=t.device).view(3, 1, 1)
    return (t * std + mean).clamp(0.0, 1.0)


def make_sample(image_u8: torch.Tensor, mask_soft: torch.Tensor, augment: v2.Compose | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Resized ``uint8 (3, S, S)`` + soft ``(1, S, S)`` -> (normalised image, mask), augmented jointly."""
    image, mask = tv_tensors.Image(image_u8), tv_tensors.Mask(mask_soft.float())
    if augment is not None:
        image, mask = augment(image, mask)
    return normalize(image.as_subclass(torch.Tensor)), mask.as_subclass(torch.Tensor)
