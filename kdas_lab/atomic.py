"""Never a half-written file: write to a temporary sibling, then ``os.replace`` it into place.

Used for every file kdas_lab writes (checkpoints, CSV/JSON tables, PNG masks and figures, caches,
ONNX exports). Standard library only, so the data tools can use it without importing torch.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(dst: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dst`` (same suffix, so writers that infer the format from it
    work); when the block succeeds it replaces ``dst``, otherwise it is deleted."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{dst.suffix}")
    try:
        yield tmp
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(dst: str | os.PathLike, text: str) -> Path:
    with atomic_path(dst) as tmp:
        tmp.write_text(text)
    return Path(dst)
