"""What a path that is not a readable file really is, in one line (standard library only)."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def not_a_file(path: str | os.PathLike) -> str | None:
    """None for a regular file (symlinks followed); else what ``path`` is instead."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symlink loop"
        if exc.errno == errno.ENOENT:
            return "is a broken symlink" if os.path.islink(path) else "not found"
        return exc.strerror or type(exc).__name__
    if stat.S_ISREG(mode):
        return None
    return "is a directory, not a file" if stat.S_ISDIR(mode) else "is not a regular file"


def require_files(paths: list[Path], what: str) -> None:
    """Raise ``FileNotFoundError`` naming every path in ``paths`` that is not a regular file and what it is."""
    bad = [f"{p} {why}" for p in paths if (why := not_a_file(p)) is not None]
    if bad:
        raise FileNotFoundError(f"{what}: {'; '.join(bad)}")
