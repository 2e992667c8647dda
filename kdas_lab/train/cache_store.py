"""Teacher-cache files on disk: space reserved before mapping, checksums per (image, view) block.

A memory-mapped write to a sparse file on a full disk ends in SIGBUS (exit 135, no message), so
:func:`allocate_npy` reserves every byte first (``os.posix_fallocate``; zeros written where the file
system cannot) and a full disk is an ``OSError`` naming the cache and the bytes it needs. Each block
``(2, s, s)`` has a crc32 in the cache's JSON; :func:`bad_blocks` finds blocks whose bytes changed
(a zeroed or NaN area), so a damaged cache is named, never trained on.
"""
from __future__ import annotations

import errno
import os
import shutil
import zlib
from pathlib import Path

import numpy as np

DTYPE = np.dtype(np.float16)
_FULL = (errno.ENOSPC, errno.EDQUOT)
_CHUNK = 16 * 2**20


def _write_zeros(fh, nbytes: int) -> None:
    zeros = bytes(min(nbytes, _CHUNK))
    while nbytes > 0:
        nbytes -= fh.write(zeros[:nbytes])


def _reserve(fh, total: int, dst: Path) -> None:
    """Make ``fh`` ``total`` bytes long with every block allocated."""
    try:
        try:
            os.posix_fallocate(fh.fileno(), 0, total)
            return
        except (AttributeError, OSError) as exc:  # no posix_fallocate (macOS) or a file system without it
            if isinstance(exc, OSError) and exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
        fh.seek(0, os.SEEK_END)
        _write_zeros(fh, total - fh.tell())
        fh.flush()
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        free = shutil.disk_usage(dst.parent).free
        raise OSError(exc.errno, f"disk full: the teacher cache needs {total} bytes, {free} are free "
                      "(free space or set teacher_cache_dir elsewhere)", str(dst)) from None


def allocate_npy(tmp: Path, shape: tuple[int, ...], dst: Path) -> np.memmap:
    """A float16 ``.npy`` at ``tmp`` (to become ``dst``) with its space reserved, mapped for writing."""
    header = {"descr": np.lib.format.dtype_to_descr(DTYPE), "fortran_order": False, "shape": tuple(shape)}
    with open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        _reserve(fh, fh.tell() + int(np.prod(shape)) * DTYPE.itemsize, dst)
    return np.lib.format.open_memmap(tmp, mode="r+")


def block_crcs(blocks: np.ndarray) -> list[int]:
    """crc32 of each block ``blocks[i]`` (contiguous)."""
    return [zlib.crc32(np.ascontiguousarray(b)) for b in blocks]


def bad_blocks(arr: np.ndarray, crcs: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> list[int]:
    """Indices ``i`` whose block ``arr[rows[i], cols[i]]`` no longer has its crc32."""
    got = block_crcs(arr[rows, cols])  # (B, 2, s, s) read from the map
    return [i for i, c in enumerate(got) if c != crcs[rows[i], cols[i]]]


def sample_rows(n: int, k: int = 8) -> np.ndarray:
    """Up to ``k`` image rows spread over ``0..n-1`` (first and last included), checked at load."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))
