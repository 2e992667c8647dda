"""The manifest of a dataset folder kdas_lab built: ``ROOT/kdas_data.json``, in one place.

Written by the builders (``{"kind": "pranet" | "synthetic", ...}``: sources, counts, sizes, seed) into
the temporary folder they build in; :func:`kdas_lab.data.integrity.record_hashes` then adds
``"files": {path: sha256}``. Its presence marks a folder as kdas_lab's own (a rebuild may replace it),
``verify`` checks the hashes, ``kind`` says whether the set is synthetic. Depends on nothing else of
:mod:`kdas_lab.data` but :mod:`~kdas_lab.data.io`, so every data module may import it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from kdas_lab.data.io import DataError

MANIFEST = "kdas_data.json"


def manifest_path(root: str | os.PathLike) -> Path:
    """``root/kdas_data.json``."""
    return Path(root) / MANIFEST


def has_manifest(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a manifest (kdas_lab built it)."""
    return manifest_path(root).is_file()


def read_manifest(root: str | os.PathLike) -> dict:
    """``root/kdas_data.json`` as a dict ({} when absent); a corrupt file is named."""
    path = manifest_path(root)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); rebuild the dataset") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path} is corrupt (a JSON {type(data).__name__}, expected an object); rebuild the dataset")
    return data


def write_manifest(root: str | os.PathLike, manifest: dict) -> None:
    """Write ``manifest`` to ``root/kdas_data.json`` (builders write it into their temporary folder)."""
    manifest_path(root).write_text(json.dumps(manifest, indent=1))


def is_synthetic(root: str | os.PathLike) -> bool:
    """A set built by ``build_synthetic``: its manifest says ``kind: synthetic`` (the real-data installer
    writes one too, with ``kind: pranet``)."""
    return read_manifest(root).get("kind") == "synthetic"
