"""Procedural colonoscopy-like frames with exact polyp masks (vectorised numpy, no data needed).

Each frame: pink-red mucosa with low-frequency colour texture, haustral folds as shaded rings
around a dark lumen, thin vessels, vignetting, specular highlights, 0-2 polyps (shaded, textured
bumps with wobbly outlines and their own highlight; sized like the real test sets: mask area mean
11 %, median 10 %, 7 % of frames empty, vs Kvasir 15 % / 12 % and CVC-ClinicDB 8 % / 6 %, none
empty), optional black endoscope corners, then a
mild Gaussian blur and sensor noise. The mask is exactly the visible polyp region. Frame ``i`` of a set
uses ``np.random.default_rng([seed, set_id, i])``: deterministic per seed and order-independent.

Texture fields are sums of random plane waves computed separably,
``sum_k a_k cos(fx_k x + fy_k y + p_k) = (A*cos(fy y + p)) @ cos(fx x) - (A*sin(fy y + p)) @ sin(fx x)``,
i.e. two small matrix products instead of ``k`` full-size cosines.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm.auto import tqdm

from kdas_lab.data.archive import building_tree
from kdas_lab.data.folders import TEST, has_train_images, train_folder
from kdas_lab.data.io import DataError, save_png_atomic
from kdas_lab.data.manifest import write_manifest

SYNTHETIC_SET = "Synthetic"


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return c[None, :], c[:, None]  # x (1, S), y (S, 1)


def wave_field(rng: np.random.Generator, size: int, n: int, fmin: float, fmax: float,
               rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """Zero-mean random texture ``float32 (S, S)`` (or its ``[rows, cols]`` window) with std about 1:
    ``n`` plane waves with spatial frequency |f| in [fmin, fmax] rad per unit (the frame spans [-1, 1])."""
    c = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    f = rng.uniform(fmin, fmax, n).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    amp = np.float32(np.sqrt(2.0 / n)) * rng.uniform(0.5, 1.0, n).astype(np.float32)
    fx, fy = f * np.cos(ang), f * np.sin(ang)
    ay = fy[:, None] * c[None, rows] + phase[:, None]  # (n, rows)
    ax = fx[:, None] * c[None, cols]  # (n, cols)
    return (amp[:, None] * np.cos(ay)).T @ np.cos(ax) - (amp[:, None] * np.sin(ay)).T @ np.sin(ax)


@lru_cache(maxsize=4)
def _noise_table(size: int) -> np.ndarray:
    """A fixed ``float32 (2S, 2S, 3)`` standard-normal table; frames use random windows of it
    (drawing fresh normals would cost more than the rest of the frame)."""
    return np.random.default_rng(20240).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)


def _add_polyp(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, base: np.ndarray,
               light: np.ndarray) -> None:
    """Draw one polyp into ``img (3,S,S)`` and ``mask (S,S)`` in place (work restricted to its box)."""
    s = img.shape[-1]
    r0 = rng.uniform(0.14, 0.55)
    a, b = rng.uniform(0.75, 1.25), rng.uniform(0.75, 1.25)
    rot = rng.uniform(0, np.pi)
    cos, sin = float(np.cos(rot)), float(np.sin(rot))
    k = np.arange(2, 6)
    wob_a = (rng.uniform(0, 0.07, 4) / (k - 1)).astype(np.float32)
    wob_p = rng.uniform(0, 2 * np.pi, 4).astype(np.float32)
    cx, cy = (float(v) for v in rng.uniform(-0.7, 0.7, 2))
    reach = r0 * max(a, b) * (1 + wob_a.sum()) * 1.02
    to_px = lambda v: int(round((v + 1) * (s - 1) / 2))  # noqa: E731
    x0, x1 = max(0, to_px(cx - reach)), min(s, to_px(cx + reach) + 2)
    y0, y1 = max(0, to_px(cy - reach)), min(s, to_px(cy + reach) + 2)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    xs, ys = _grid(s)
    dx, dy = xs[:, x0:x1] - cx, ys[y0:y1] - cy
    u = (dx * cos + dy * sin) / a
    v = (-dx * sin + dy * cos) / b
    rho, theta = np.hypot(u, v), np.arctan2(v, u)
    edge = r0 * (1 + (wob_a[:, None, None] * np.cos(k[:, None, None] * theta + wob_p[:, None, None])).sum(0))
    t = rho / edge
    inside = t < 1.0
    if not inside.any():
        return
    h = np.sqrt(np.clip(1.0 - t * t, 0.0, 1.0)).astype(np.float32)  # dome height
    gy, gx = np.gradient(h)
    normal_dot = np.clip(0.6 + 8.0 * (gx * light[0] + gy * light[1]) * (s / 256), 0.15, 1.3)
    colour = base * rng.uniform([0.95, 0.75, 0.7], [1.15, 1.05, 1.0]).astype(np.float32)
    tex = 1.0 + 0.06 * wave_field(rng, s, 12, 20, 60, slice(y0, y1), slice(x0, x1))
    lum = (normal_dot * (0.75 + 0.35 * h) * tex)[inside]  # (P,) over pixels inside
    spec = (np.clip((normal_dot - 1.05) * 5.0, 0, 1) * (h > 0.5))[inside]
    box = img[:, y0:y1, x0:x1]  # (3, h, w) view
    for c in range(3):
        ch = colour[c] * lum
        box[c][inside] = ch + spec * (1.0 - ch)
    mask[y0:y1, x0:x1] |= inside


def render_frame(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic frame: ``(uint8 (S, S, 3), bool (S, S))``.

    Shading is built as single-channel fields and applied per colour channel (channel-first
    ``(3, S, S)`` float32 while drawing), which keeps a 256 px frame at a few milliseconds."""
    s = size
    xs, ys = _grid(s)
    lx, ly = (float(v) for v in rng.uniform(-0.6, 0.6, 2))
    r = np.hypot(xs - lx, ys - ly)  # (S, S) distance to the lumen
    base = np.array([rng.uniform(0.72, 0.92), rng.uniform(0.30, 0.50), rng.uniform(0.24, 0.40)], np.float32)
    low = wave_field(rng, s, 8, 1.5, 6.0)  # (S, S) colour / brightness drift
    mid = wave_field(rng, s, 16, 8.0, 20.0)  # (S, S) mucosa texture
    # haustral folds: rings around the lumen, warped by the low-frequency field
    folds = np.sin(r * np.float32(rng.uniform(9, 16)) * (1.0 + 0.12 * low) + np.float32(rng.uniform(0, 2 * np.pi)))
    ridge = np.clip(folds, 0, 1)
    # vessels: thin lines along the zero set of a mid-frequency field (clipped: no denormals)
    vfield = wave_field(rng, s, 10, 6.0, 14.0) * np.float32(1.0 / rng.uniform(0.05, 0.10))
    vessels = np.exp(-np.minimum(vfield * vfield, 30.0)) * np.float32(rng.uniform(0.15, 0.35))
    # dark lumen, vignetting: one brightness field
    rl = r * np.float32(1.0 / rng.uniform(0.12, 0.3))
    lumen = np.exp(-np.minimum(rl * rl, 30.0))
    vignette = 1.0 - np.float32(rng.uniform(0.2, 0.5) / 2.8) * np.minimum(xs * xs + ys * ys, 2.0) ** 1.5
    light_field = (1.0 + 0.07 * low) * (0.86 + 0.14 * folds - 0.18 * np.clip(-folds, 0, 1) ** 4)
    light_field *= (1.0 - 0.92 * lumen) * vignette
    # specular highlights on fold ridges, away from the lumen
    spec = np.clip((wave_field(rng, s, 24, 25, 70) - 1.6) * 2.5, 0, 1) * ridge * (r > 0.3)
    img = np.empty((3, s, s), np.float32)  # channel-first while drawing
    for c, (tex_w, vessel_w) in enumerate(((0.04, 0.35), (0.024, 1.0), (0.024, 0.9))):
        ch = base[c] * light_field * (1.0 + tex_w * mid) * (1.0 - vessel_w * vessels)
        img[c] = ch + spec * (1.0 - ch)
    mask = np.zeros((s, s), bool)
    light = rng.normal(size=2).astype(np.float32)
    light /= np.linalg.norm(light) + 1e-6
    for _ in range(rng.choice(3, p=[0.05, 0.7, 0.25])):
        _add_polyp(rng, img, mask, base, light)
    if rng.random() < 0.5:  # black endoscope corners
        corner = np.abs(xs) + np.abs(ys) > rng.uniform(1.6, 1.85)
        img[:, corner] = 0.0
        mask &= ~corner
    # optics blur (Pillow's C Gaussian) and sensor noise from a random window of a fixed table
    u8 = np.ascontiguousarray((np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0))
    blurred = np.asarray(Image.fromarray(u8).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2))))
    oy, ox = rng.integers(0, s, 2)
    noise = _noise_table(s)[oy:oy + s, ox:ox + s] * np.float32(255.0 * rng.uniform(0.005, 0.025))
    return (blurred + noise).clip(0.0, 255.0).astype(np.uint8), mask


def frame_rng(seed: int, set_id: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, set_id, index])


def _write_set(folder: Path, prefix: str, n: int, size: int, seed: int, set_id: int, progress: bool) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in tqdm(range(n), desc=f"synthetic {prefix}", disable=not progress, leave=False):
        image, mask = render_frame(frame_rng(seed, set_id, i), size)
        stem = f"{prefix}_{i:05d}"
        save_png_atomic(image, folder / "images" / f"{stem}.png")
        save_png_atomic(np.where(mask, 255, 0).astype(np.uint8), folder / "masks" / f"{stem}.png")


def build_synthetic(out: str | os.PathLike, n_train: int, n_test: int, size: int, seed: int = 0, *,
                    overwrite: bool = False, progress: bool = False) -> Path:
    """Build ``out/TrainDataset/{images,masks}`` and ``out/TestDataset/Synthetic/{images,masks}`` atomically."""
    out = Path(out)
    if n_train < 1 or n_test < 1 or size < 8:
        raise ValueError(f"need n_train >= 1, n_test >= 1, size >= 8; got {n_train}, {n_test}, {size}")
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists (pass overwrite=True / --overwrite to rebuild it)")
    with building_tree(out) as tmp:
        _write_set(train_folder(tmp), "syn_train", n_train, size, seed, 0, progress)
        _write_set(tmp / TEST / SYNTHETIC_SET, "syn_test", n_test, size, seed, 1, progress)
        manifest = {"kind": "synthetic", "n_train": n_train, "n_test": n_test, "size": size, "seed": seed}
        write_manifest(tmp, manifest)
    return out


def ensure_synthetic(cfg) -> Path:
    """Return ``cfg.data_dir``, building a synthetic set there first if it does not exist
    (``cfg.synthetic_train`` / ``cfg.synthetic_test`` frames at ``cfg.image_size``, ``cfg.seed``); an
    existing folder without a TrainDataset (e.g. an empty one) is refused, never built over."""
    root = Path(cfg.data_dir)
    if has_train_images(root):
        return root
    try:
        return build_synthetic(root, cfg.synthetic_train, cfg.synthetic_test, cfg.image_size, cfg.seed)
    except (DataError, OSError):
        if has_train_images(root):  # another process built it meanwhile
            return root
        if root.exists():
            raise DataError(_not_buildable(root)) from None
        raise


def _not_buildable(root: Path) -> str:
    what = ("is a file, not a folder" if not root.is_dir() else
            "is an empty folder" if not any(root.iterdir()) else "holds no TrainDataset/images")
    return (f"data folder {root} (data_dir / KDAS_DATA_DIR) {what}: the fast profile builds its synthetic set "
            f"only in a folder that does not exist yet; point KDAS_DATA_DIR (or --data) to a new path, remove "
            f"{root}, or install real data there (kdas-lab data ...)")
