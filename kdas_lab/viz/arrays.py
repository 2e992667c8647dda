"""Arrays for matplotlib from images, masks and maps given as NumPy arrays or tensors."""
from __future__ import annotations

import numpy as np


def as_image(image) -> np.ndarray:
    """Accept ``(H, W, 3)`` uint8 / float or a ``(3, H, W)`` tensor already denormalised to [0, 1]."""
    a = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = np.clip(a, 0.0, 1.0)
    return a


def as_map(m) -> np.ndarray:
    """A 2-D float array ``(H, W)`` of a mask or map (``(H, W)``, ``(1, H, W)``, ``(1, 1, H, W)``, tensor or array)."""
    a = m.detach().cpu().float().numpy() if hasattr(m, "detach") else np.asarray(m)
    return a.reshape(a.shape[-2:]) if a.ndim > 2 else a
