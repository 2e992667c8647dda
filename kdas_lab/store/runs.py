"""Run folders: reading what made a run, setting a run aside, replacing a model only once its successor exists."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from kdas_lab.models import read_checkpoint
from kdas_lab.store.fingerprint import Fingerprint


def read_fingerprint(path: str | Path) -> Fingerprint | None:
    """The fingerprint a study marker (``.json``) or checkpoint (``.pt``) records; None when it records none
    or cannot be read (the run then counts as another experiment)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else read_checkpoint(path, meta_only=True)
    except (OSError, ValueError):
        return None
    return Fingerprint.from_dict(data.get("fingerprint")) if isinstance(data, dict) else None


def recorded_differences(path: Path, expected: Fingerprint, *, config: bool = True) -> list[str]:
    """What the run recorded at ``path`` (marker or checkpoint) differs in from ``expected``, as
    ``recorded -> now`` phrases (empty: the same experiment); ``config``: see :meth:`Fingerprint.differences`."""
    recorded = read_fingerprint(path)
    return expected.differences(None) if recorded is None else recorded.differences(expected, config=config)


def reusable(path: Path, expected: Fingerprint, *, recipe: bool = True) -> bool:
    """Does the checkpoint at ``path`` exist and record ``expected``? ``recipe=False`` compares only the
    teacher, the data and the profile (a study's student, trained with the study's recipe). A mismatch
    is printed with what differs."""
    if not Path(path).is_file():
        return False
    differs = recorded_differences(path, expected, config=recipe)
    if differs:
        print(f"not reusing {path} (recorded -> now: {'; '.join(differs[:3])}{' ...' if len(differs) > 3 else ''})")
    return not differs


def set_aside(rdir: Path) -> Path:
    """Move the run folder ``rdir`` to ``<parent>/replaced/<name>.<n>`` (the first free n); returns the new path."""
    target_dir = rdir.parent / "replaced"
    target_dir.mkdir(exist_ok=True)
    n = 1
    while (target_dir / f"{rdir.name}.{n}").exists():
        n += 1
    return rdir.rename(target_dir / f"{rdir.name}.{n}")


def staging_dir(target: Path) -> Path:
    """Where a model that will replace ``target`` is trained (a sibling, so the swap is a rename)."""
    return target.with_name(target.name + ".new")


def replace_dir(new: Path, target: Path) -> Path:
    """Put the finished run ``new`` in place of ``target``: the old run is removed only after the new one is
    there (an interrupt before this call leaves ``target`` untouched). Returns ``target``."""
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old)  # a leftover of an interrupted earlier swap: target or new holds the run
    if target.exists():
        target.rename(old)
    new.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return target
