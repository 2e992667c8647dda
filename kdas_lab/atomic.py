"""Never a half-written file: write to a temporary sibling, then ``os.replace`` it into place.

Used for every file kdas_lab writes (checkpoints, CSV/JSON tables, PNG masks and figures, caches,
ONNX exports). Standard library only, so the data tools can use it without importing torch.
:func:`clean_stale` removes what a killed process left behind.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
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
    except OSError as exc:  # name the file the user asked for, not the temp name
        if exc.filename in (None, str(tmp), tmp):
            raise OSError(exc.errno, exc.strerror or str(exc), str(dst)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(dst: str | os.PathLike, text: str) -> Path:
    with atomic_path(dst) as tmp:
        tmp.write_text(text)
    return Path(dst)


# Temporary names carry the writer's process id, so a later run can tell the leftovers of a killed
# process (safe to delete) from the work of a live one: ``.NAME.PID-HEX.tmp[.suffix]`` (files, above),
# ``NAME.tmp-PID-XXXX`` / ``NAME.old-PID-XXXX`` / ``.NAME.tmp-PID-XXXX`` (folders, data builds).
_TEMP = re.compile(r"^\.?(?P<name>.+?)\.(?:(?P<pid>\d+)-[0-9a-f]{8}\.tmp|(?:tmp|old)-(?:(?P<dpid>\d+)-)?[a-z0-9_]{8}$)")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: exists, another user's
        return True
    return True


def clean_stale(folder: str | os.PathLike, name: str | None = None) -> list[str]:
    """Delete the temporary files and folders a killed kdas_lab process left in ``folder`` (only those
    for ``name`` when given); those of unknown owner are reported, not touched. Prints one line for
    each to stderr and returns the lines."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    notes = []
    for entry in sorted(folder.iterdir()):
        m = _TEMP.match(entry.name)
        if not m or (name is not None and m["name"] != name):
            continue
        pid = m["pid"] or m["dpid"]
        if pid is None:
            notes.append(f"note: {entry} looks like the leftover of an interrupted run; remove it by hand")
        elif not _alive(int(pid)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            notes.append(f"note: removed {entry}, left by a killed run (process {pid})")
    for line in notes:
        print(line, file=sys.stderr)
    return notes
