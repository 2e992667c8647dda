"""Safe archive extraction and checksums.

``safe_extract`` refuses absolute paths and ``..`` entries (zip-slip), extracts into a temporary
sibling folder and renames it into place only when everything was read, so a truncated or corrupt
archive leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from typing import Iterator
from pathlib import Path, PurePosixPath

from kdas_lab.data.io import DataError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_archive(path: str | os.PathLike) -> bool:
    name = Path(path).name.lower()
    return any(name.endswith(s) for s in ARCHIVE_SUFFIXES)


def check_member_name(archive: Path, name: str) -> None:
    """Raise if an archive entry would land outside the extraction folder."""
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in parts:
        raise DataError(f"archive {archive} has an unsafe entry {name!r} (absolute path or '..'): refusing to extract")


def _extract_zip(archive: Path, tmp: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                check_member_name(archive, info.filename)
            for info in infos:
                zf.extract(info, tmp)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataError(f"archive {archive} is truncated or corrupt ({exc}); download it again") from exc


def _extract_tar(archive: Path, tmp: Path) -> None:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                check_member_name(archive, m.name)
                if m.issym() or m.islnk():
                    raise DataError(f"archive {archive} has a link entry {m.name!r}: refusing to extract")
            tf.extractall(tmp, members=members, filter="data")
    except (tarfile.TarError, EOFError) as exc:
        raise DataError(f"archive {archive} is truncated or corrupt ({exc}); download it again") from exc


@contextmanager
def building_tree(out: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out`` to build in; on success it replaces ``out``
    (:func:`replace_tree`), on any error it is deleted, so ``out`` is never half-written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        replace_tree(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_tree(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out`` (same file system), replacing an old ``out``.

    The old tree is moved aside first and deleted only once the new one is in place, so an
    interruption never leaves ``out`` half-written.
    """
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{out.name}.old-", dir=out.parent))
    os.replace(out, old / out.name)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract ``archive`` (zip / tar[.gz]) to ``dest`` (must not exist) atomically; return ``dest``."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DataError(f"archive {archive} does not exist")
    if dest.exists():
        raise DataError(f"extraction target {dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        if archive.name.lower().endswith(".zip"):
            _extract_zip(archive, tmp)
        elif is_archive(archive):
            _extract_tar(archive, tmp)
        else:
            raise DataError(f"{archive}: unknown archive type (expected {', '.join(ARCHIVE_SUFFIXES)})")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
