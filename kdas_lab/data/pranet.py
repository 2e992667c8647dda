"""Build the PraNet layout from the original dataset releases.

``ROOT/TrainDataset/{images,masks}`` (900 Kvasir-SEG + 550 CVC-ClinicDB = 1,450 pairs) and
``ROOT/TestDataset/<set>/{images,masks}`` (Kvasir 100, CVC-ClinicDB 62, optional CVC-ColonDB 380,
ETIS-LaribPolypDB 196, CVC-300 60). The test stems are the lists shipped in ``kdas_lab/data/splits``.

- File names keep the original stems (Kvasir hashes, ClinicDB frame numbers: they never clash).
- Images are lossless: JPEG and PNG bytes are copied as they are (after a full decode: a truncated
  file fails); TIFF / BMP become PNG.
- Masks become binary 0/255 PNG (what they encode: :func:`kdas_lab.data.io.binarize_mask`).
- Everything is built in a ``ROOT.tmp-xxx`` sibling and renamed at the end: an interrupted build
  leaves no half-built ROOT; ``kdas_data.json`` records each file's sha256 for ``verify``.
"""
from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from kdas_lab.data.archive import building_tree, is_archive, safe_extract
from kdas_lab.data.download import download
from kdas_lab.data.io import DataError, copy_atomic, load_image, load_mask, save_png_atomic, sha256_file
from kdas_lab.data.layout import TEST, index_by_stem, pair_by_stem, train_folder
from kdas_lab.data.manifest import write_manifest
from kdas_lab.data.sources import CLINICDB, KVASIR, SOURCES, TEST_SETS, DataSource, pranet_test_stems

IMAGE_DIR_NAMES = ("images", "image", "original", "img", "imgs", "frames")
MASK_DIR_NAMES = ("masks", "mask", "ground truth", "groundtruth", "gt", "labels", "label")
COPY_EXTS = (".jpg", ".jpeg", ".png")  # stored as they are (no re-encode)


def find_layout(root: Path) -> tuple[Path, Path]:
    """Locate the ``(images_dir, masks_dir)`` pair at or below ``root`` (at most 3 levels deep)."""
    candidates = [root] + [p for p in sorted(root.glob("*")) if p.is_dir()]
    candidates += [p for p in sorted(root.glob("*/*")) if p.is_dir()]
    candidates += [p for p in sorted(root.glob("*/*/*")) if p.is_dir()]
    for d in candidates:
        subs = {p.name.lower(): p for p in d.iterdir() if p.is_dir()}
        img = next((subs[n] for n in IMAGE_DIR_NAMES if n in subs), None)
        msk = next((subs[n] for n in MASK_DIR_NAMES if n in subs), None)
        if img is not None and msk is not None:
            return img, msk
    raise DataError(f"{root}: no images/masks folder pair found (looked for one of {IMAGE_DIR_NAMES} "
                    f"beside one of {MASK_DIR_NAMES}, up to 3 levels deep)")


def source_pairs(root: Path) -> dict[str, tuple[Path, Path]]:
    """``{stem: (image, mask)}`` of an original release or PraNet-style folder, strictly paired."""
    dirs = find_layout(root)
    pairs = pair_by_stem(index_by_stem(dirs[0]), index_by_stem(dirs[1], "mask"), ("image", "mask"), dirs)
    return {s: (image, mask) for s, image, mask in pairs}


def install_pair(stem: str, image: Path, mask: Path, out: Path, move: bool = False) -> None:
    """Write one pair into ``out/images`` (lossless) and ``out/masks`` (0/255 PNG); check sizes.
    ``move=True`` renames the JPEG/PNG image instead of copying it (for our own extracted scratch)."""
    m = load_mask(mask)
    if image.suffix.lower() in COPY_EXTS:
        try:
            with Image.open(image) as im:
                im.load()  # full decode (Image.verify() checks nothing for JPEG)
                w, h = im.size
        except Exception as exc:
            raise DataError(f"cannot read image {image}: {exc}") from exc
        dst = out / "images" / f"{stem}{image.suffix.lower()}"
        if move:
            os.replace(image, dst)
        else:
            copy_atomic(image, dst)
    else:
        arr = load_image(image)
        h, w = arr.shape[:2]
        save_png_atomic(arr, out / "images" / f"{stem}.png")
    if (h, w) != m.shape:
        raise DataError(f"size mismatch: image {image} is {w}x{h}, mask {mask} is {m.shape[1]}x{m.shape[0]} (WxH)")
    save_png_atomic(np.where(m, 255, 0).astype(np.uint8), out / "masks" / f"{stem}.png")


def install_pairs(pairs: dict[str, tuple[Path, Path]], out: Path, desc: str = "", workers: int | None = None,
                  progress: bool = True, move: bool = False) -> int:
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(install_pair, s, i, m, out, move) for s, (i, m) in pairs.items()]
        try:
            for job in tqdm(jobs, desc=desc, disable=not progress, leave=False):
                job.result()
        except BaseException:
            for job in jobs:
                job.cancel()
            raise
    return len(pairs)


def _install(pairs: dict, out: Path, desc: str, workers, progress: bool, folder: Path, scratch: Path,
             src) -> int:
    """:func:`install_pairs`; errors name ``archive.zip:entry`` rather than our scratch copy."""
    move = folder.is_relative_to(scratch)
    try:
        return install_pairs(pairs, out, desc, workers, progress, move)
    except DataError as exc:
        if not move:
            raise
        raise DataError(str(exc).replace(f"{scratch / Path(folder).relative_to(scratch).parts[0]}/",
                                         f"{src}:")) from exc


def resolve_source(src: str | os.PathLike, source: DataSource, scratch: Path, download_dir: Path,
                   progress: bool = True) -> tuple[Path, dict]:
    """URL / archive / folder -> an extracted folder, plus provenance for the manifest."""
    text = str(src)
    info: dict = {"source": text}
    if text.startswith(("http://", "https://")):
        name = text.rstrip("/").rsplit("/", 1)[-1] or f"{source.key}.zip"
        sha = source.sha256 if source.urls and text == source.urls[0] else None
        path = download(text, download_dir / name, sha256=sha, landing_page=source.landing_page,
                        flag=source.key, progress=progress)
        info["sha256_verified"] = sha is not None
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise DataError(f"--{source.key} {path}: no such file or folder (get it from {source.landing_page})")
    if path.is_dir():
        return path, info
    if not is_archive(path):
        raise DataError(f"--{source.key} {path}: expected an https URL, a .zip/.tar archive or a folder")
    digest = sha256_file(path)
    info["sha256"] = digest
    if source.sha256 and digest != source.sha256:
        info["note"] = "sha256 differs from the official release (a repackaged copy?)"
    return safe_extract(path, scratch / source.key), info


def _select(pairs: dict, source: DataSource, allow_partial: bool) -> tuple[dict, dict]:
    """Split a Kvasir / ClinicDB release into (train, test) by the shipped PraNet lists."""
    test_stems = pranet_test_stems(source.key)
    missing = [s for s in test_stems if s not in pairs]
    problems = []
    if source.n_images and len(pairs) != source.n_images:
        problems.append(f"{len(pairs)} pairs found, the release has {source.n_images}")
    if missing:
        problems.append(f"{len(missing)} PraNet test stems missing, e.g. {missing[:5]}")
    if problems and not allow_partial:
        raise DataError(f"{source.name}: " + "; ".join(problems) + " (use --allow-partial to build anyway)")
    test_set = set(test_stems)
    test = {s: pairs[s] for s in test_stems if s in pairs}
    train = {s: p for s, p in pairs.items() if s not in test_set}
    return train, test


def build_pranet(out: str | os.PathLike, kvasir: str | os.PathLike, clinicdb: str | os.PathLike, *,
                 colondb=None, etis=None, cvc300=None, download_dir: str | os.PathLike | None = None,
                 allow_partial: bool = False, overwrite: bool = False, workers: int | None = None,
                 progress: bool = True) -> Path:
    """Build the PraNet layout at ``out`` from the original releases (URL, archive or folder each)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists (pass --overwrite to rebuild it)")
    given = {KVASIR: kvasir, CLINICDB: clinicdb, **dict(zip(TEST_SETS[2:], (colondb, etis, cvc300)))}
    for source, src in given.items():  # fail on a missing local path before any work
        if src is not None and not str(src).startswith(("http://", "https://")) and not Path(src).expanduser().exists():
            raise DataError(f"--{source.key} {src}: no such file or folder (get it from {source.landing_page})")
    download_dir = Path(download_dir) if download_dir else out.parent / "downloads"
    manifest: dict = {"kind": "pranet", "sources": {}, "counts": {}, "allow_partial": allow_partial}
    local = tuple(Path(s) for s in given.values() if s is not None and not str(s).startswith(("http://", "https://")))
    with building_tree(out, keep=(*local, download_dir)) as tmp:
        scratch = tmp / "_sources"
        train_dir, test_root = train_folder(tmp), tmp / TEST
        for source, src in ((KVASIR, kvasir), (CLINICDB, clinicdb)):
            folder, info = resolve_source(src, source, scratch, download_dir, progress)
            train, test = _select(source_pairs(folder), source, allow_partial)
            _install(train, train_dir, f"{source.name} train", workers, progress, folder, scratch, src)
            _install(test, test_root / source.name, f"{source.name} test", workers, progress, folder, scratch, src)
            manifest["sources"][source.key] = info
            manifest["counts"][source.name] = {"train": len(train), "test": len(test)}
        for source, src in zip(TEST_SETS[2:], (colondb, etis, cvc300)):
            if src is None:
                continue
            folder, info = resolve_source(src, source, scratch, download_dir, progress)
            pairs = source_pairs(folder)
            if source.n_test and len(pairs) != source.n_test and not allow_partial:
                raise DataError(f"{source.name}: {len(pairs)} pairs in {folder}, expected {source.n_test} "
                                "(use --allow-partial to build anyway)")
            _install(pairs, test_root / source.name, source.name, workers, progress, folder, scratch, src)
            manifest["sources"][source.key] = info
            manifest["counts"][source.name] = {"test": len(pairs)}
        shutil.rmtree(scratch, ignore_errors=True)
        write_manifest(tmp, manifest)
    return out


__all__ = ["build_pranet", "find_layout", "source_pairs", "install_pair", "install_pairs", "resolve_source", "SOURCES"]
