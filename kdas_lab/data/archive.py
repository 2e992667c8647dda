"""Safe archive extraction and checksums.

``safe_extract`` refuses absolute paths, ``..`` entries (zip-slip) and links (zip and tar), extracts
into a temporary sibling folder and renames it into place only when everything was read, so a
truncated or corrupt archive leaves nothing behind. ``building_tree`` is the atomic dataset build:
it refuses to replace a folder that holds the working directory, a source or something not built by
kdas_lab, cleans what a killed build left, and records every file's sha256 in ``kdas_data.json``.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from kdas_lab.atomic import clean_stale
from kdas_lab.data.integrity import record_hashes
from kdas_lab.data.io import DataError
from kdas_lab.data.io import sha256_file as sha256_file  # re-exported (its home: kdas_lab.data.io)
from kdas_lab.data.manifest import MANIFEST, has_manifest

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


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
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise DataError(f"archive {archive} has a link entry {info.filename!r}: refusing to extract")
            for info in infos:
                zf.extract(info, tmp)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataError(f"archive {archive} is truncated or corrupt ({exc}); get a fresh copy") from exc


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
        raise DataError(f"archive {archive} is truncated or corrupt ({exc}); get a fresh copy") from exc


def _mkdtemp(prefix: str, parent: Path) -> Path:
    """A fresh folder named ``PREFIX<pid>-XXXXXXXX`` (pid: see :func:`kdas_lab.atomic.clean_stale`)
    with the umask's permissions (``mkdtemp`` alone gives 0700 to the finished dataset)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    return tmp


def check_replaceable(out: Path, keep: tuple = ()) -> None:
    """Refuse to replace ``out`` when it is not a folder kdas_lab built (no ``kdas_data.json``) or
    when it holds the working directory or any path of ``keep`` (the sources of the build)."""
    if not out.exists():
        return
    where = out.resolve()
    if not out.is_dir():
        raise DataError(f"{out} is a file, not a dataset folder: refusing to replace it")
    for path in (Path.cwd(), *(Path(k) for k in keep if k is not None)):
        p = path.expanduser().resolve()
        if p == where or where in p.parents:
            what = "the working directory" if path == Path.cwd() else f"the source {path}"
            raise DataError(f"refusing to replace {out}: it contains {what}; choose another --out")
    if any(out.iterdir()) and not has_manifest(out):
        raise DataError(f"refusing to replace {out}: it holds files but no {MANIFEST}, so kdas_lab did "
                        f"not build it; remove it yourself or choose another --out")


@contextmanager
def building_tree(out: Path, keep: tuple = ()) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out`` to build in; on success the sha256 of every file
    goes into ``kdas_data.json`` and the folder replaces ``out`` (:func:`replace_tree`); on any error
    it is deleted, so ``out`` is never half-written. ``keep``: paths that must survive (sources)."""
    out = Path(out)
    check_replaceable(out, keep)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out.parent, out.name)
    tmp = _mkdtemp(f"{out.name}.tmp-", out.parent)
    try:
        yield tmp
        if has_manifest(tmp):
            record_hashes(tmp)
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
    old = _mkdtemp(f"{out.name}.old-", out.parent)
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
    tmp = _mkdtemp(f".{dest.name}.tmp-", dest.parent)
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
