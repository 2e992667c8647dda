"""Prediction as the published test scripts do it.

``predict_probs``: ``sigmoid(p1 + p2)`` at the model's input size. ``predict_image``: resize the RGB
image to ``size`` (bilinear, antialiased like Pillow), predict, upsample the logits ``p1 + p2``
bilinearly to the image's own size, sigmoid, then min-max per image
(``(m - min) / (max - min + 1e-8)``). ``to_png_levels`` turns that map into the saved PNG's levels.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdas_lab.data.transforms import normalize, resize_image


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``p1 + p2`` (B, 1, S, S) in eval mode without autograd; the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(images)
    finally:
        model.train(was_training)
    return out.p1 + out.p2


def predict_probs(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``images`` (B, 3, S, S) ImageNet-normalised -> ``sigmoid(p1 + p2)`` (B, 1, S, S) float32."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, S, S), got {tuple(images.shape)}")
    images = images.to(model_device(model))
    return torch.sigmoid(_logits(model, images).float())


def prepare_image(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> normalised float32 (1, 3, size, size)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if size % 32:
        raise ValueError(f"size must be a multiple of 32, got {size}")
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)  # (3, H, W) uint8
    return normalize(resize_image(t, size))[None]


def minmax(m: np.ndarray) -> np.ndarray:
    """Per-image min-max as the published test script: ``(m - min) / (max - min + 1e-8)``."""
    return (m - m.min()) / (m.max() - m.min() + 1e-8)


def predict_image(model: nn.Module, image: np.ndarray, size: int = 352,
                  device: str | torch.device | None = None, out_size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float32 (H, W) in [0, 1] (or ``out_size``, e.g. the mask's size).

    ``device``: where the input goes (default: the model's device; the model is not moved).
    """
    dev = torch.device(device) if device is not None else model_device(model)
    x = prepare_image(image, size).to(dev)  # (1, 3, S, S)
    logits = _logits(model, x).float()  # (1, 1, S, S)
    h, w = out_size or image.shape[:2]
    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)  # (1, 1, H, W)
    prob = torch.sigmoid(logits)[0, 0].cpu().numpy().astype(np.float64)
    return minmax(prob).astype(np.float32)


def to_png_levels(prob: np.ndarray) -> np.ndarray:
    """float map in [0, 1] -> uint8 levels as ``cv2.imwrite(path, prob * 255)`` stores them (rounded)."""
    return np.clip(np.rint(np.asarray(prob, np.float64) * 255), 0, 255).astype(np.uint8)
