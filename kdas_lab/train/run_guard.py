"""Guards of a training run folder, checked before any work starts.

- A folder that already holds a run (``last.pt``, ``best.pt``, ``history.csv``, ``steps.csv``) is
  continued only with ``resume``; started again only with ``overwrite_run`` (its run files are
  deleted first, so nothing of the old run mixes with the new one).
- ``resume`` compares the configuration stored in ``last.pt`` with this one: any difference is
  refused unless its field is named in ``allow_change`` (e.g. ``epochs`` to extend a run); allowed
  changes are printed and appended to ``resume.log``. Runtime fields
  (:data:`~kdas_lab.config.RUNTIME_FIELDS`: device, workers, threads, paths, ...) may always differ (the
  data's content is compared by the fingerprint); ``method`` never may (the checkpoint holds that method's
  loss state), so ``--allow-change method`` is refused before anything is compared or logged.
- The teacher must be the architecture the configuration names.
- Temp files a killed run left in the folder are removed (:func:`kdas_lab.atomic.clean_stale`).
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from pathlib import Path

from kdas_lab.atomic import clean_stale, write_text_atomic
from kdas_lab.config import RUNTIME_FIELDS, Config, config_changes
from kdas_lab.models import read_checkpoint

RUN_FILES = ("last.pt", "best.pt", "history.csv", "steps.csv", "resume.log")
FIXED_FIELDS = ("method",)  # a resumed run keeps these whatever --allow-change says


class RunFolderError(ValueError):
    """The run folder does not allow what was asked (the message says which flag to use)."""


def _progress(path: Path) -> str:
    try:
        ckpt = read_checkpoint(path, meta_only=True)
        return f", epoch {ckpt['epoch']} of {ckpt['config']['epochs']} done"
    except Exception:  # only decorates the message
        return ""


def prepare_run(cfg: Config, out_dir, *, resume: bool, overwrite_run: bool = True,
                allow_change: Iterable[str] = (), is_main: bool = True) -> None:
    """Apply the guards above to ``out_dir`` for a run of ``cfg``."""
    out_dir = Path(out_dir)
    allow = set(allow_change)
    unknown = sorted(allow - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        raise RunFolderError(f"--allow-change {','.join(unknown)}: not configuration fields")
    fixed = sorted(allow & set(FIXED_FIELDS))
    if fixed:
        raise RunFolderError(f"--allow-change {','.join(fixed)}: a resumed run cannot change its "
                             f"{', '.join(fixed)} (the checkpoint holds that method's loss and optimizer "
                             f"state); start a new run (another --out, or --overwrite-run)")
    if allow and not resume:
        raise RunFolderError("--allow-change only applies to --resume")
    if is_main:
        clean_stale(out_dir)
    existing = [f for f in RUN_FILES if (out_dir / f).exists()]
    if resume:
        check_resume_config(out_dir / "last.pt", cfg, allow, log=is_main)
    elif existing:
        if not overwrite_run:
            raise RunFolderError(f"{out_dir} already holds a run ({', '.join(existing)}"
                                 f"{_progress(out_dir / 'last.pt')}): pass --resume to continue it, or "
                                 f"--overwrite-run to delete it and start again")
        if is_main:
            for name in existing:
                (out_dir / name).unlink()


def check_resume_config(path: Path, cfg: Config, allow: set[str], log: bool = True) -> None:
    """Refuse to resume ``path`` with a configuration that differs outside ``allow``."""

    if not path.is_file():
        return  # the trainer says there is nothing to resume
    ckpt = read_checkpoint(path, meta_only=True)
    stored = ckpt.get("config")
    if not isinstance(stored, dict):
        raise RunFolderError(f"--resume: {path} stores no configuration to compare with; start a new run")
    changes = config_changes(stored, cfg.to_dict(), ignore=RUNTIME_FIELDS)
    shown = {k: f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items()}
    refused = [shown[k] for k in changes if k not in allow]
    if refused:
        raise RunFolderError(f"--resume: the configuration differs from the run in {path.parent}: "
                             f"{'; '.join(refused)}. Resume with the run's settings, or allow the change "
                             f"explicitly: --allow-change {','.join(k for k in changes if k not in allow)}")
    if changes and log:
        line = f"resumed after epoch {ckpt.get('epoch')} with " + "; ".join(shown.values())
        print(f"note: {line}", file=sys.stderr)
        old = (path.parent / "resume.log").read_text() if (path.parent / "resume.log").is_file() else ""
        write_text_atomic(path.parent / "resume.log", old + line + "\n")


def check_teacher(teacher, expected: str, given=None) -> None:
    """The loaded teacher must be ``expected`` (``cfg.teacher``): the stored config must not lie."""
    name = getattr(teacher, "name", None)
    if teacher is None or name is None or name == expected:
        return
    what = f"--teacher {given}" if given is not None and not hasattr(given, "parameters") else "the teacher model"
    raise RunFolderError(f"{what} is {name}, but the configuration's teacher is {expected}; "
                         f"pass --set teacher={name} if that is the teacher you mean")
