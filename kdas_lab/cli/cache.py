"""``kdas-lab cache [--dir DIR] [--teacher CKPT|DIR ...] [--prune]``: the teacher-output caches.

Lists each cache (teacher sha256, name, training size, images x views, bytes) and what a prune would
remove: caches whose teacher is not among the ``--teacher`` checkpoints (given; files or folders
searched for ``*.pt``), caches of an older format, and temp files a killed build left. Nothing is
deleted without ``--prune``; caches without a valid description are listed, never removed (a build
may be writing it).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kdas_lab.atomic import clean_stale


def default_dir() -> Path:
    from kdas_lab.config import Config

    return Path(Config.from_env().data_dir) / ".kdas_cache" / "teacher"


def teacher_shas(paths: list[Path]) -> set[str]:
    """sha256 of each teacher's state_dict (the key the cache is named by); folders: their ``*.pt``."""
    from kdas_lab.models import load_model
    from kdas_lab.train.teacher_cache import state_dict_sha256

    files = [f for p in paths for f in (sorted(p.rglob("*.pt")) if p.is_dir() else [p])]
    return {state_dict_sha256(load_model(f, device="cpu")) for f in files}


def describe(npy: Path, keep: set[str] | None) -> dict:
    """One row: the cache ``npy`` and why it would be pruned (``prune``: "" = kept)."""
    from kdas_lab.train.teacher_cache import FORMAT

    try:
        meta = json.loads(npy.with_suffix(".json").read_text())
        sha, fmt = str(meta["teacher_sha256"]), meta.get("format")
        shape = f"{meta['shape'][0]} x {meta['shape'][1]}"
        row = {"teacher": sha[:12], "name": meta.get("teacher", "?"), "size": meta["size"], "images x views": shape}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {"file": npy.name, "teacher": "?", "name": "?", "size": "?", "images x views": "?",
                "bytes": npy.stat().st_size, "prune": "", "note": "incomplete (no valid .json): listed only"}
    why = ("older format" if fmt != FORMAT else
           "teacher not present" if keep is not None and sha not in keep else "")
    return {"file": npy.name, **row, "bytes": npy.stat().st_size, "prune": why, "note": ""}


def prune(folder: Path, rows: list[dict]) -> None:
    for row in rows:
        if row["prune"]:
            for path in (folder / row["file"], (folder / row["file"]).with_suffix(".json")):
                path.unlink(missing_ok=True)


def _run(args) -> int:
    folder = args.dir or default_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"teacher cache folder {folder} does not exist (pass --dir)")
    keep = teacher_shas(args.teacher) if args.teacher else None
    rows = [describe(p, keep) for p in sorted(folder.glob("*.npy")) if not p.name.startswith(".")]
    if rows:
        print(pd.DataFrame(rows).to_string(index=False))
    else:
        print(f"no teacher caches in {folder}")
    clean_stale(folder, dry_run=not args.prune)  # temp files of killed builds: one line each
    gone = [r for r in rows if r["prune"]]
    if args.prune:
        prune(folder, gone)
    verb = "removed" if args.prune else "would remove (pass --prune)"
    print(f"{verb}: {len(gone)} cache(s), {sum(r['bytes'] for r in gone)} bytes"
          + ("" if keep is not None else "; caches of absent teachers are found only with --teacher"))
    return 0


def register(sub) -> None:
    p = sub.add_parser("cache", help="list the teacher-output caches; --prune removes stale ones")
    p.add_argument("--dir", type=Path, default=None,
                   help="cache folder (default: <KDAS_DATA_DIR>/.kdas_cache/teacher)")
    p.add_argument("--teacher", type=Path, action="append", default=[], metavar="CKPT|DIR",
                   help="teacher checkpoints still in use (repeatable; folders: their *.pt); caches of "
                        "other teachers are pruned")
    p.add_argument("--prune", action="store_true", help="delete what the listing marks (default: dry run)")
    p.set_defaults(func=_run)
