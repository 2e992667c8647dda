"""The PraNet folder layout, in one place.

``ROOT/TrainDataset/{images,masks}`` and ``ROOT/TestDataset/<set>/{images,masks}``; an image and its
mask share a stem (the file name without its extension). Every function here raises
:class:`~kdas_lab.data.io.DataError` naming the folder and the stems at fault.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kdas_lab.data.folders import TEST, TRAIN, has_train_images, train_folder
from kdas_lab.data.io import DataError, is_image_file
from kdas_lab.data.synthetic import ensure_synthetic

__all__ = ["TEST", "TRAIN", "SHOWN", "data_root", "dataset_folders", "find_pairs", "find_test_root", "has_train_images",
           "index_by_stem", "list_stems", "list_test_sets", "pair_by_stem", "stem_index", "train_folder", "unpaired"]
SHOWN = 10  # paths listed in one error message


def stem_index(folder: str | os.PathLike, what: str = "image") -> tuple[dict[str, Path], list[str]]:
    """``({stem: path}, problems)`` of the image files in ``folder``; problems: a missing folder, two
    files with one stem (the later file is kept). For callers that list every problem (``verify``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}, [f"{folder}: {what} folder not found (PraNet layout: <set>/images and <set>/masks)"]
    out: dict[str, Path] = {}
    problems = []
    for p in sorted(folder.iterdir()):
        if is_image_file(p):
            if p.stem in out:
                problems.append(f"two {what} files share the stem {p.stem!r}: {out[p.stem]} and {p}")
            out[p.stem] = p
    return out, problems


def index_by_stem(folder: str | os.PathLike, what: str = "image") -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder``; raises on a missing folder or a shared stem."""
    out, problems = stem_index(folder, what)
    if problems:
        raise DataError("; ".join(problems))
    return out


def _listed(paths: list[Path]) -> str:
    return ", ".join(map(str, paths[:SHOWN])) + (f", ... ({len(paths) - SHOWN} more)" if len(paths) > SHOWN else "")


def unpaired(first: dict[str, Path], second: dict[str, Path], names: tuple[str, str],
             folders: tuple[Path, Path]) -> list[str]:
    """Problems: the stems of ``second`` missing from ``first``, then those of ``first`` missing from
    ``second`` (``names``: what each side holds, ``folders``: where)."""
    problems = []
    for a, b, (what, other), where in ((second, first, names[::-1], folders[0]),
                                       (first, second, names, folders[1])):
        lonely = sorted(set(a) - set(b))
        if lonely:
            article = "an" if other[0] in "aeiou" else "a"
            problems.append(f"{len(lonely)} {what}(s) without {article} {other} in {where}: "
                            + _listed([a[s] for s in lonely]))
    return problems


def pair_by_stem(first: dict[str, Path], second: dict[str, Path], names: tuple[str, str],
                 folders: tuple[Path, Path]) -> list[tuple[str, Path, Path]]:
    """``[(stem, first_path, second_path)]`` sorted by stem; raises listing every unpaired file."""
    problems = unpaired(first, second, names, folders)
    if problems:
        raise DataError("; ".join(problems))
    if not first:
        raise DataError(f"{folders[0]} holds no {names[0]}s")
    return [(s, first[s], second[s]) for s in sorted(first)]


def find_pairs(folder: str | os.PathLike, stems: Sequence[str] | None = None) -> list[tuple[str, Path, Path]]:
    """``[(stem, image_path, mask_path)]`` of ``folder/images`` and ``folder/masks``, sorted by stem
    (or in the order of ``stems``); raises on any unpaired file or unknown stem."""
    folder = Path(folder)
    dirs = (folder / "images", folder / "masks")
    pairs = pair_by_stem(index_by_stem(dirs[0]), index_by_stem(dirs[1], "mask"), ("image", "mask"), dirs)
    if stems is None:
        return pairs
    by_stem = {p[0]: p for p in pairs}
    unknown = [s for s in stems if s not in by_stem]
    if unknown:
        raise DataError(f"stems not found in {dirs[0]}: {unknown[:SHOWN]}")
    if not stems:
        raise DataError(f"{folder}: no stems chosen")
    return [by_stem[s] for s in stems]


def list_stems(folder: str | os.PathLike) -> list[str]:
    """Sorted stems of ``folder/images`` (an empty folder gives ``[]``)."""
    return sorted(index_by_stem(Path(folder) / "images"))


def find_test_root(root: str | os.PathLike) -> Path:
    """``ROOT/TestDataset`` when it exists, else ``ROOT`` itself (already a TestDataset folder)."""
    root = Path(root)
    if (root / TEST).is_dir():
        return root / TEST
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (expected PraNet layout ROOT/{TEST}/<name>)")
    return root


def list_test_sets(root: str | os.PathLike, datasets: Sequence[str] | None = None) -> list[str]:
    """Test-set names under ``root`` (folders with ``masks/``, sorted), or ``datasets`` after checking each."""
    base = find_test_root(root)
    found = sorted(p.name for p in base.iterdir() if (p / "masks").is_dir())
    if datasets is None:
        if not found:
            raise DataError(f"{base}: no test sets (folders with masks/) found")
        return found
    missing = [d for d in datasets if d not in found]
    if missing:
        raise DataError(f"{base}: test set(s) {missing} not found; available: {found}")
    return list(datasets)


def dataset_folders(root: str | os.PathLike) -> dict[str, Path]:
    """``{"TrainDataset": ..., "<test set>": ...}`` for the set folders that exist under ``root``."""
    root = Path(root)
    found = {TRAIN: train_folder(root)} if train_folder(root).is_dir() else {}
    if (root / TEST).is_dir():
        found.update({d.name: d for d in sorted((root / TEST).iterdir()) if d.is_dir()})
    if not found:
        raise DataError(f"{root}: no {TRAIN}/ or {TEST}/<name>/ folders (PraNet layout)")
    return found


def data_root(cfg) -> Path:
    """The dataset root of ``cfg``: in the ``fast`` profile a synthetic set is built there when it
    holds no training images; otherwise it must hold ``TrainDataset/images`` and ``TestDataset/``."""
    root = Path(cfg.data_dir)
    if cfg.profile == "fast" and not has_train_images(root):
        return ensure_synthetic(cfg)
    for folder in (train_folder(root) / "images", root / TEST):
        if not folder.is_dir():
            raise DataError(f"dataset root {root} has no {folder.relative_to(root)}/ (PraNet layout expected; "
                            "build it with `kdas-lab data ...`, or use the fast profile for synthetic data)")
    return root
