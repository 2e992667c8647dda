"""Reading and writing single image / mask files, with errors that name the file.

- ``load_image``: any Pillow format, TIFF through ``tifffile`` (Pillow cannot read CVC-ClinicDB's
  RGB TIFFs) -> ``np.uint8 (H, W, 3)``; fully decoded (a truncated file fails); 16-bit files scaled.
- ``load_mask``: what the mask encodes -> ``bool (H, W)``: a lossless 0/1 label map is read as labels,
  otherwise grey level ``> 127`` (colour masks go to grey with Pillow's ITU-R 601 weights). Refused: a
  mask far from binary (over 1 % of its pixels in grey levels 64-191) and a mask whose content would
  vanish (over 1 % of pixels at levels 32-127, none above 127: e.g. a palette or label map).
- ``save_png_atomic`` / ``copy_atomic``: temp file + ``os.replace`` so no half-written file remains.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from kdas_lab.atomic import atomic_path

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
TIFF_EXTS = (".tif", ".tiff")
MASK_THRESHOLD = 127  # a pixel is foreground when its grey level is > 127
AMBIGUOUS, DIM, FRACTION = (64, 191), 32, 0.01  # see binarize_mask
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # Pillow modes deeper than 8 bits
LOSSY_EXTS = (".jpg", ".jpeg")


class DataError(ValueError):
    """A data file or folder is missing, unreadable or inconsistent (the message names it)."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def _read_tiff(path: Path) -> np.ndarray:
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
        top = np.iinfo(arr.dtype).max
        if arr.dtype == np.int32 and arr.size and 0 <= arr.min() and arr.max() <= 65535:
            top = 65535  # Pillow mode "I": a 16-bit file
        elif arr.size and arr.min() < 0:
            raise DataError(f"{path}: negative pixel values ({arr.dtype}, min {arr.min()})")
        return (arr.astype(np.float64) * 255.0 / top).round().astype(np.uint8)
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
                im.load()  # the whole file: a truncated JPEG fails here
                if im.mode in WIDE_MODES:  # 16-bit / 32-bit grey: scaled, not clipped
                    arr = np.repeat(_to_uint8(np.asarray(im), path)[..., None], 3, axis=2)
                else:
                    arr = np.array(im.convert("RGB"))
    except DataError:
        raise
    except Exception as exc:  # PIL / tifffile raise many types
        raise DataError(f"cannot read image {path}: {exc}") from exc
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"image {path} has unexpected shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _mask_levels(path: Path, kind: str) -> np.ndarray:
    """``(H, W)`` mask values at the depth stored (uint8, uint16, bool, ...), colour converted to grey."""
    try:
        if path.suffix.lower() in TIFF_EXTS:
            arr = _read_tiff(path)
            if arr.ndim == 3:
                arr = _grey(_to_uint8(arr, path))
        else:
            with Image.open(path) as im:
                im.load()
                arr = np.asarray(im if im.mode in ("L", "1", *WIDE_MODES) else im.convert("L"))
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read {kind} {path}: {exc}") from exc
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(f"{kind} {path} has unexpected shape {arr.shape}")
    return arr


def load_mask_grey(path: str | os.PathLike, kind: str = "mask") -> np.ndarray:
    """Grey levels ``np.uint8 (H, W)`` as stored (before thresholding; 16-bit files scaled to 8 bits).
    ``kind`` names the file in errors (``"prediction map"`` for saved maps)."""
    path = Path(path)
    return _to_uint8(_mask_levels(path, kind), path)


def binarize_mask(levels: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """What a mask encodes -> ``bool (H, W)``: a 0/1 label map (lossless formats only) as labels, else
    grey level > 127; raises :class:`DataError` when the mask is far from binary (see the module doc)."""
    path = Path(path)
    if levels.dtype == bool:
        return levels
    if (levels.dtype.kind in "iu" and path.suffix.lower() not in LOSSY_EXTS
            and levels.min() >= 0 and levels.max() == 1):
        return levels == 1  # a 0/1 label map (0/255 after install)
    grey = _to_uint8(levels, path)
    fore = grey > MASK_THRESHOLD
    mid = (grey >= AMBIGUOUS[0]) & (grey <= AMBIGUOUS[1])
    if mid.mean() > FRACTION:
        raise DataError(f"mask {path} is far from binary: {mid.mean():.1%} of its pixels have grey levels "
                        f"{AMBIGUOUS[0]}-{AMBIGUOUS[1]} (e.g. {np.unique(grey[mid])[:6].tolist()}); a mask must be "
                        f"black/white or a 0/1 label map: convert soft or palette masks first")
    if not fore.any() and (grey >= DIM).mean() > FRACTION:
        raise DataError(f"mask {path} would become empty: its brightest level is {int(grey.max())}, below the "
                        f"threshold {MASK_THRESHOLD + 1} (a label or palette map?); store the object as 255")
    return fore


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """Binary mask ``bool (H, W)`` (see :func:`binarize_mask`)."""
    path = Path(path)
    return binarize_mask(_mask_levels(path, "mask"), path)


def check_same_size(image_path: Path, image: np.ndarray, mask_path: Path, mask: np.ndarray) -> None:
    """Raise :class:`DataError` naming both files when the image ``(H, W, 3)`` and mask ``(H, W)`` differ."""
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(f"size mismatch: image {image_path} is {image.shape[1]}x{image.shape[0]}, "
                        f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH)")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` from the file header only (no full decode)."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_EXTS:
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


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Byte-exact copy (e.g. Kvasir JPEGs: no lossy re-encode) via temp + ``os.replace``."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
