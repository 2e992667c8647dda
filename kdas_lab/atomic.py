"""Never a half-written file: write to a temporary sibling, then ``os.replace`` it into place.

Used for every file kdas_lab writes (checkpoints, CSV/JSON tables, PNG masks and figures, caches,
ONNX exports): the writers below for text, CSV, JSON, torch checkpoints and figures, and
:func:`atomic_path` for any other writer. Standard library only at import, so the data tools can use
it without importing torch. :func:`clean_stale` removes what a killed process left behind.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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


def write_csv_atomic(df, dst: str | os.PathLike, index: bool = False) -> Path:
    """A pandas ``DataFrame`` as CSV (without its index unless ``index``)."""
    return write_text_atomic(dst, df.to_csv(index=index))


def write_json_atomic(obj: Any, dst: str | os.PathLike) -> Path:
    """``obj`` as indented JSON (values JSON cannot hold written with ``str``), newline-terminated."""
    return write_text_atomic(dst, json.dumps(obj, indent=2, default=str) + "\n")


def torch_save_atomic(obj: Any, dst: str | os.PathLike) -> Path:
    """``torch.save``; a failed write (full disk: torch says only ``enforce fail at inline_container.cc``)
    is an ``OSError`` naming ``dst``."""
    import torch  # noqa: PLC0415 (lazy: the data tools and the CLI's start-up do without torch)

    with atomic_path(dst) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:
            free = shutil.disk_usage(Path(dst).parent).free / 2**20
            cause = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise OSError(errno.EIO, f"checkpoint not written ({cause}; {free:.0f} MiB free on that disk)",
                          str(dst)) from exc
    return Path(dst)


def save_figure(fig, dst: str | os.PathLike, dpi: int = 110, **savefig_kwargs: Any) -> Path:
    """A matplotlib figure, format from the suffix (``bbox_inches="tight"`` unless given)."""
    with atomic_path(dst) as tmp:
        fig.savefig(tmp, dpi=dpi, **{"bbox_inches": "tight", **savefig_kwargs})
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


def clean_stale(folder: str | os.PathLike, name: str | None = None, dry_run: bool = False) -> list[str]:
    """Delete the temporary files and folders a killed kdas_lab process left in ``folder`` (only those
    for ``name`` when given; ``dry_run``: only say so); those of unknown owner are reported, not
    touched. Prints one line for each to stderr and returns the lines."""
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
        elif dry_run and not _alive(int(pid)):
            notes.append(f"note: would remove {entry}, left by a killed run (process {pid})")
        elif not _alive(int(pid)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            notes.append(f"note: removed {entry}, left by a killed run (process {pid})")
    for line in notes:
        print(line, file=sys.stderr)
    return notes
