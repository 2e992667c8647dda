"""The colours of the figures, in one place: RGB 0-255 (for NumPy overlays); :func:`mpl` gives
matplotlib's form (a hex string)."""
from __future__ import annotations

PRED_COLOR = (255, 64, 0)  # a model's prediction
GT_COLOR = (0, 200, 80)  # the ground-truth mask in overlays
MASK_COLOR = (57, 255, 20)  # a mask's contour over its image (#39ff14)


def mpl(rgb: tuple[int, int, int]) -> str:
    """``(255, 64, 0)`` -> ``"#ff4000"``."""
    return "#" + "".join(f"{c:02x}" for c in rgb)
