"""What made a model: one fingerprint for every checkpoint and every study run.

A fingerprint holds the four things that decide what a training run produces:

- ``config``: the run's :class:`~kdas_lab.config.Config` as a dict, less the runtime fields
  (:data:`~kdas_lab.config.RUNTIME_FIELDS`: where it runs and how fast, not what it computes; the data path
  among them, as the data is named by its content key) and the teacher's recipe (a teacher run has it
  applied; a student's teacher is named by its weights);
- ``teacher``: :func:`state_dict_sha256` of the teacher's weights, or None for a run without one;
- ``data``: :func:`data_key` of the dataset folder;
- ``profile``: the profile the config came from.

Two runs with equal fingerprints are the same experiment. The study runner, ``--resume`` and the
course compare fingerprints before they reuse anything (:meth:`Fingerprint.differences` says what
differs, one short phrase per difference).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kdas_lab.config import RUNTIME_FIELDS, config_changes

NOT_RECORDED = (*RUNTIME_FIELDS, "teacher_recipe")  # Config fields a fingerprint leaves out (module docstring)


def state_dict_sha256(model: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of ``model.state_dict()`` (a teacher's identity:
    the same weights saved twice, or loaded from two copies of a file, give the same digest)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_key(root: str | os.PathLike) -> str:
    """A short content key of a dataset folder: sha256 over every file's relative path and size.
    Hidden files and folders (``.kdas_cache``, ``.ipynb_checkpoints``) are not data and do not count."""
    root = Path(root)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            h.update(f"{rel.as_posix()}|{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def short(sha: str | None) -> str:
    """The 12-character name of a teacher in tables and messages (``"none"`` without a teacher)."""
    return "none" if sha is None else sha[:12]


@dataclass(frozen=True)
class Fingerprint:
    config: dict[str, Any]
    teacher: str | None
    data: str
    profile: str

    @classmethod
    def of(cls, cfg, teacher: str | None, data: str) -> Fingerprint:
        """The fingerprint of a run of ``cfg`` (a Config) with teacher digest ``teacher`` on data ``data``."""
        config = {k: v for k, v in cfg.to_dict().items() if k not in NOT_RECORDED}
        return cls(config=config, teacher=teacher, data=data, profile=cfg.profile)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "teacher": self.teacher, "data": self.data, "profile": self.profile}

    @classmethod
    def from_dict(cls, d: Any) -> Fingerprint | None:
        """None for anything that is not a recorded fingerprint (e.g. a run older than fingerprints)."""
        if not isinstance(d, dict) or set(d) != {"config", "teacher", "data", "profile"}:
            return None
        return cls(config=dict(d["config"]), teacher=d["teacher"], data=d["data"], profile=d["profile"])

    def differences(self, other: Fingerprint | None, *, config: bool = True) -> list[str]:
        """What differs from ``other`` (empty: the same experiment), e.g. ``teacher 3f2a... -> 9c1b...``;
        ``config=False`` compares only the teacher, the data and the profile."""
        if other is None:
            return ["no fingerprint recorded"]
        out = []
        if self.teacher != other.teacher:
            out.append(f"teacher {short(self.teacher)} -> {short(other.teacher)}")
        if self.data != other.data:
            out.append(f"data {self.data} -> {other.data}")
        if self.profile != other.profile:
            out.append(f"profile {self.profile} -> {other.profile}")
        if not config:
            return out
        changes = config_changes(self.config, other.config, ignore=NOT_RECORDED)
        return out + [f"{key} {a!r} -> {b!r}" for key, (a, b) in sorted(changes.items())]


def resume_refusal(recorded: Fingerprint | None, current: Fingerprint, allow: set[str]) -> str | None:
    """Why a run recorded as ``recorded`` may not be resumed as ``current`` (None: it may). Only the teacher
    and the data are judged here (the config is the run guard's); ``allow`` may name ``teacher`` or
    ``data_dir`` to accept a change."""
    if recorded is None:
        return None  # a checkpoint from before fingerprints: the run guard's config check is all there is
    if recorded.teacher != current.teacher and "teacher" not in allow:
        return (f"it was trained with teacher {short(recorded.teacher)}, this run has {short(current.teacher)} "
                "(--allow-change teacher to continue with another teacher)")
    if recorded.data != current.data and "data_dir" not in allow:
        return (f"it was trained on data {recorded.data}, this data folder is {current.data} "
                "(--allow-change data_dir to continue on other data)")
    return None
