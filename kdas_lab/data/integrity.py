"""Per-file sha256 of a built dataset, recorded in ``kdas_data.json`` and checked by ``verify``.

``record_hashes(root)`` adds ``"files": {relative posix path: sha256}`` for every file below the
set folders (``TrainDataset``, ``TestDataset``) to the manifest; ``check_hashes(root, manifest)``
lists every file that changed, went missing or was added since.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kdas_lab.data.archive import sha256_file
from kdas_lab.data.io import DataError
from kdas_lab.data.layout import TEST, TRAIN

MANIFEST = "kdas_data.json"
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


def read_manifest(root: Path) -> dict:
    """``root/kdas_data.json`` as a dict ({} when absent); a corrupt file is named."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); rebuild the dataset") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path} is corrupt (a JSON {type(data).__name__}, expected an object); rebuild the dataset")
    return data


def is_synthetic(root: str | os.PathLike) -> bool:
    """A set built by ``build_synthetic``: its manifest says ``kind: synthetic`` (the real-data installer
    writes one too, with ``kind: pranet``)."""
    return read_manifest(Path(root)).get("kind") == "synthetic"


def record_hashes(root: Path) -> None:
    """Add the sha256 of every set file to ``root/kdas_data.json`` (written by the builder)."""
    manifest = read_manifest(root)
    manifest["files"] = hash_files(root, _files(root))
    (Path(root) / MANIFEST).write_text(json.dumps(manifest, indent=1))


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
