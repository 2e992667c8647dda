"""Reading and writing single image / mask files, with errors that name the file.

- ``load_image``: any Pillow format, TIFF through ``tifffile`` (Pillow cannot read CVC-ClinicDB's
  RGB TIFFs) -> ``np.uint8 (H, W, 3)``.
- ``load_mask``: grey level ``> 127`` -> ``bool (H, W)`` (colour masks are converted to grey first,
  with Pillow's ITU-R 601 weights).
- ``save_png_atomic`` / ``copy_atomic``: temp file + ``os.replace`` so no half-written file remains.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from kdas_lab.atomic import atomic_path

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
TIFF_EXTS = (".tif", ".tiff")
MASK_THRESHOLD = 127  # a pixel is foreground when its grey level is > 127


class DataError(ValueError):
    """A data file or folder is missing, unreadable or inconsistent (the message names it)."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    arr = tifffile.imread(str(path))
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[-1] not in (3, 4):  # planar CHW
        arr = np.moveaxis(arr, 0, -1)
    return arr


def _to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        return (arr.astype(np.float64) * 255.0 / np.iinfo(arr.dtype).max).round().astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating) and arr.size and 0.0 <= arr.min() and arr.max() <= 1.0:
        return (arr * 255.0).round().astype(np.uint8)
    raise DataError(f"{path}: unsupported pixel type {arr.dtype}")


def _grey(arr: np.ndarray) -> np.ndarray:
    """(H, W[, C]) -> (H, W) uint8, Pillow's 'L' conversion for colour input."""
    if arr.ndim == 2:
        return arr
    rgb = arr[..., :3].astype(np.float32)
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float32) + 0.5).clip(0, 255).astype(np.uint8)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """RGB ``np.uint8 (H, W, 3)``; raises :class:`DataError` naming the file if it cannot be read."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_EXTS:
            arr = _to_uint8(_read_tiff(path), path)
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=2)
            arr = arr[..., :3]
        else:
            with Image.open(path) as im:
                arr = np.array(im.convert("RGB"))
    except DataError:
        raise
    except Exception as exc:  # PIL / tifffile raise many types
        raise DataError(f"cannot read image {path}: {exc}") from exc
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"image {path} has unexpected shape {arr.shape}")
    return np.ascontiguousarray(arr)


def load_mask_grey(path: str | os.PathLike) -> np.ndarray:
    """Grey levels ``np.uint8 (H, W)`` as stored (before thresholding)."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_EXTS:
            arr = _grey(_to_uint8(_read_tiff(path), path))
        else:
            with Image.open(path) as im:
                arr = np.asarray(im if im.mode == "L" else im.convert("L"))
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read mask {path}: {exc}") from exc
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(f"mask {path} has unexpected shape {arr.shape}")
    return arr


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """Binary mask ``bool (H, W)``: grey level > 127."""
    return load_mask_grey(path) > MASK_THRESHOLD


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` from the file header only (no full decode)."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_EXTS:
            import tifffile

            with tifffile.TiffFile(str(path)) as tif:
                shape = tif.pages[0].shape
            if len(shape) == 3 and shape[0] in (3, 4) and shape[-1] not in (3, 4):
                return int(shape[1]), int(shape[2])
            return int(shape[0]), int(shape[1])
        with Image.open(path) as im:
            w, h = im.size
        return int(h), int(w)
    except Exception as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def save_png_atomic(arr: np.ndarray, dst: str | os.PathLike, compress_level: int = 1) -> Path:
    """Write ``uint8 (H, W)`` or ``(H, W, 3)`` as PNG via a temp file and ``os.replace``."""
    with atomic_path(dst) as tmp:
        Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format="PNG", compress_level=compress_level)
    return Path(dst)


def save_mask_png(mask: np.ndarray, dst: str | os.PathLike) -> Path:
    """Binary mask (bool or 0/1) -> 0/255 grey PNG."""
    return save_png_atomic(np.where(mask, 255, 0).astype(np.uint8), dst)


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Byte-exact copy (e.g. Kvasir JPEGs: no lossy re-encode) via temp + ``os.replace``."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)
