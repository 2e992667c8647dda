"""Per-file sha256 of a built dataset, recorded in its manifest (:mod:`kdas_lab.data.manifest`) and
checked by ``verify``.

``record_hashes(root)`` adds ``"files": {relative posix path: sha256}`` for every file below the
set folders (``TrainDataset``, ``TestDataset``) to the manifest; ``check_hashes(root, manifest)``
lists every file that changed, went missing or was added since.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kdas_lab.data.folders import TEST, TRAIN
from kdas_lab.data.io import sha256_file
from kdas_lab.data.manifest import MANIFEST, is_synthetic, read_manifest, write_manifest

__all__ = ["MANIFEST", "SET_FOLDERS", "check_hashes", "hash_files", "is_synthetic", "read_manifest", "record_hashes"]
SET_FOLDERS = (TRAIN, TEST)


def _files(root: Path) -> list[str]:
    out = []
    for top in SET_FOLDERS:
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out += [Path(dirpath, f).relative_to(root).as_posix() for f in filenames if not f.startswith(".")]
    return sorted(out)


def hash_files(root: Path, rels: list[str], workers: int | None = None) -> dict[str, str]:
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:  # hashlib releases the GIL
        return dict(zip(rels, pool.map(lambda r: sha256_file(root / r), rels)))


def record_hashes(root: Path) -> None:
    """Add the sha256 of every set file to ``root/kdas_data.json`` (written by the builder)."""
    manifest = read_manifest(root)
    manifest["files"] = hash_files(root, _files(root))
    write_manifest(root, manifest)


def check_hashes(root: Path, manifest: dict, workers: int | None = None) -> list[str]:
    """Problems: files changed, missing or not recorded since the build (none when nothing was recorded)."""
    recorded = manifest.get("files")
    if not isinstance(recorded, dict):
        return []
    present = _files(root)
    problems = [f"file missing since the build: {root / r}" for r in sorted(set(recorded) - set(present))]
    problems += [f"file added since the build: {root / r}" for r in sorted(set(present) - set(recorded))]
    both = sorted(set(recorded) & set(present))
    actual = hash_files(root, both, workers)
    problems += [f"file changed since the build (sha256 differs): {root / r}" for r in both
                 if actual[r] != recorded[r]]
    return problems
