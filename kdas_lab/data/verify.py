"""Check a PraNet-layout folder: counts against the known split, strict pairing, sizes, binary masks,
and every file's sha256 against ``kdas_data.json`` (any change since the build is found).

``verify_pranet(root, full=True)`` also decodes every image and mask completely (a truncated JPEG
has a valid header). It returns a :class:`VerifyReport` (a pandas table, one row per set, and the
list of every problem found). Nothing stops at the first problem: all of them are listed.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kdas_lab.data.integrity import check_hashes
from kdas_lab.data.io import DataError, image_size, load_image, load_mask_grey
from kdas_lab.data.layout import TEST, TRAIN, stem_index, train_folder, unpaired
from kdas_lab.data.manifest import MANIFEST, read_manifest
from kdas_lab.data.sources import TEST_SETS, TRAIN_PAIRS, pranet_test_stems

SPLIT_KEYS = {"Kvasir": "kvasir", "CVC-ClinicDB": "clinicdb"}


@dataclass
class VerifyReport:
    table: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not failures

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        text = self.table.to_string()
        if self.notes:
            text += "\n\nnote: " + "\nnote: ".join(self.notes)
        if self.problems:
            text += f"\n\n{len(self.problems)} problem(s):\n  " + "\n  ".join(self.problems)
        return text + ("\n\nOK" if self.ok else "")


def _check_pair(image: Path, mask: Path, full: bool = False) -> tuple[str | None, str | None]:
    """(size/readability problem, non-binary problem) of one pair; ``full`` decodes the whole image."""
    try:
        h, w = load_image(image).shape[:2] if full else image_size(image)
        grey = load_mask_grey(mask)
    except DataError as exc:
        return str(exc), None
    size = None if grey.shape == (h, w) else (
        f"size mismatch: image {image} is {w}x{h}, mask {mask} is {grey.shape[1]}x{grey.shape[0]} (WxH)")
    values = np.unique(grey)
    binary = None if np.isin(values, (0, 255)).all() else (
        f"mask {mask} is not binary 0/255 ({len(values)} grey levels, e.g. {values[:6].tolist()})")
    return size, binary


def verify_set(folder: Path, expected: int | None, expected_stems: list[str] | None = None,
               workers: int | None = None, full: bool = False) -> tuple[dict, list[str]]:
    dirs = (folder / "images", folder / "masks")
    (images, problems), (masks, mask_problems) = stem_index(dirs[0]), stem_index(dirs[1], "mask")
    problems += mask_problems + unpaired(images, masks, ("image", "mask"), dirs)
    stems = sorted(set(images) & set(masks))
    with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda s: _check_pair(images[s], masks[s], full), stems))
    size_problems = [r[0] for r in results if r[0]]
    binary_problems = [r[1] for r in results if r[1]]
    problems += size_problems + binary_problems
    if expected is not None and len(images) != expected:
        problems.append(f"{folder}: {len(images)} images, expected {expected}")
    if expected_stems is not None:
        missing, extra = sorted(set(expected_stems) - set(images)), sorted(set(images) - set(expected_stems))
        if missing or extra:
            problems.append(f"{folder}: stems differ from the PraNet split list "
                            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                            f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''})")
    row = {"images": len(images), "masks": len(masks), "pairs": len(stems),
           "expected": expected if expected is not None else "-", "bad_size_or_unreadable": len(size_problems),
           "non_binary": len(binary_problems), "status": "ok" if not problems else "FAIL"}
    return row, problems


def verify_pranet(root: str | os.PathLike, workers: int | None = None, full: bool = False) -> VerifyReport:
    """Verify ``root/TrainDataset`` and every ``root/TestDataset/<set>``; ``full``: decode every file.

    A build made with ``allow_partial`` is held to the counts its manifest recorded."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    manifest = read_manifest(root)
    synthetic = manifest.get("kind") == "synthetic"
    partial = manifest.get("counts", {}) if manifest.get("allow_partial") else None
    known = {s.name: s for s in TEST_SETS}
    test_dir = root / TEST
    test_sets = sorted(p.name for p in test_dir.iterdir() if p.is_dir()) if test_dir.is_dir() else []
    rows, problems = {}, []
    if not test_sets:
        problems.append(f"no test sets in {test_dir}")
    if synthetic:
        expected_train = manifest.get("n_train")
    elif partial is not None:
        expected_train = sum(c.get("train", 0) for c in partial.values())
    else:
        expected_train = TRAIN_PAIRS if {"Kvasir", "CVC-ClinicDB"} <= set(test_sets) else None
    rows[TRAIN], found = verify_set(train_folder(root), expected_train, workers=workers, full=full)
    problems += found
    train_stems = set(stem_index(train_folder(root) / "images")[0])
    for name in test_sets:
        split_key = SPLIT_KEYS.get(name)
        stems = pranet_test_stems(split_key) if split_key and not synthetic else None
        expected = manifest.get("n_test") if synthetic else (known[name].n_test if name in known else None)
        if partial is not None:
            expected = partial.get(name, {}).get("test")
        rows[name], found = verify_set(test_dir / name, expected, None if partial is not None else stems,
                                       workers, full)
        problems += found
        if stems is not None:
            leaked = sorted(train_stems & set(stems))
            if leaked:
                problems.append(f"{len(leaked)} {name} test stems are also in {TRAIN}, e.g. {leaked[:5]}")
    notes = []
    if "files" in manifest:
        problems += check_hashes(root, manifest, workers)
    else:
        notes.append(f"{root} has no file hashes in {MANIFEST} (built by hand or by an older kdas_lab): "
                     f"changes since the build cannot be detected{'' if full else '; --full decodes every file'}")
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("set")
    return VerifyReport(table, problems, notes)
