"""Training: one loop for the teacher and for every distillation method, with exact resume and DDP.

- :func:`train_model` builds the model, the frozen teacher, the loss (``kdas_lab.losses.create_loss``),
  the loaders and the run's parts (:func:`~kdas_lab.train.parts.build_parts`: teacher outputs, device
  data, compile wrapper), passes them to :class:`~kdas_lab.train.loop.Trainer` and runs it;
  :func:`train_teacher` and :func:`distill` are the two everyday wrappers.
- ``out_dir`` receives ``last.pt`` (full resume state), ``best.pt`` (best validation mean Dice),
  ``history.csv`` (one row per epoch) and ``steps.csv`` (one row per optimizer step).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from kdas_lab.config import Config
from kdas_lab.losses import create_loss
from kdas_lab.models import create_model
from kdas_lab.runtime import resolve_device, seed_everything
from kdas_lab.store import (
    Fingerprint,
    data_key,
    read_fingerprint,
    replace_dir,
    resume_refusal,
    reusable,
    staging_dir,
    state_dict_sha256,
)
from kdas_lab.train import run_guard
from kdas_lab.train.builders import build_loaders, is_distilling, load_teacher
from kdas_lab.train.distributed import DistInfo, cleanup, init_distributed
from kdas_lab.train.loop import Trainer, TrainResult
from kdas_lab.train.numerics import NonFiniteError
from kdas_lab.train.parts import Parts, build_parts

__all__ = ["train_model", "train_teacher", "ensure_teacher", "distill", "Trainer", "TrainResult", "NonFiniteError",
           "DistInfo", "PaperRecipeWarning", "Parts", "build_parts"]


class PaperRecipeWarning(UserWarning):
    """The ``paper`` profile trains a network the published recipe would not (random backbone)."""


def train_model(cfg: Config, *, out_dir, teacher=None, student_name: str | None = None,
                resume: bool = False, show_progress: bool = True, loss: torch.nn.Module | None = None,
                student: torch.nn.Module | None = None, stop_after: int | None = None,
                overwrite_run: bool = True, allow_change=(), provenance: dict | None = None) -> TrainResult:
    """Train ``student_name`` (default ``cfg.student``) with the loss ``cfg.method``.

    ``teacher``: None, a model, or a checkpoint path (needed when the loss has ``needs_teacher``).
    ``loss`` / ``student`` let tests and notebooks pass their own module instead of building one.
    ``stop_after=k`` stops after epoch k as if interrupted (continue later with ``resume=True``).
    ``provenance``: how the caller made the run, recorded in its checkpoints (the course's).
    ``overwrite_run`` / ``allow_change``: see :mod:`kdas_lab.train.run_guard` (the CLI refuses by default).
    Under ``torchrun`` (``WORLD_SIZE > 1``) the process group is joined here and left at the end.
    """

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    info, device = init_distributed(device)
    try:
        run_guard.prepare_run(cfg, out_dir, resume=resume, overwrite_run=overwrite_run,
                              allow_change=allow_change, is_main=info.is_main)
        seed_everything(cfg.seed + info.rank)
        if student is None:
            if cfg.profile == "paper" and cfg.pretrained_backbone is None and info.is_main:
                warnings.warn("profile 'paper' without pretrained_backbone: the backbone starts from random "
                              "weights, the published runs start from ImageNet PVTv2 (--set pretrained_backbone="
                              "imagenet or a pvt_v2_bX.pth path); expect far lower scores than the paper's",
                              PaperRecipeWarning, stacklevel=2)
            student = create_model(student_name or cfg.student, pretrained_backbone=cfg.pretrained_backbone,
                                   drop_path_rate=cfg.drop_path_rate)
        student = student.to(device)
        teacher_model = load_teacher(teacher, device, channels_last=cfg.channels_last)
        run_guard.check_teacher(teacher_model, cfg.teacher, teacher)
        if loss is None:
            loss = create_loss(cfg.method, cfg, student=student, teacher=teacher_model)
        if getattr(loss, "needs_teacher", False) and teacher_model is None:
            raise ValueError(f"method {cfg.method!r} distils from a teacher: pass --teacher CKPT")
        distilling = is_distilling(teacher_model, loss)
        fingerprint = Fingerprint.of(cfg, state_dict_sha256(teacher_model) if distilling else None,
                                     data_key(cfg.data_dir))
        if resume:
            _check_resume_origin(Path(out_dir) / "last.pt", fingerprint, set(allow_change))
        loaders = build_loaders(cfg, info, device, distilling=distilling)
        parts = build_parts(cfg, teacher=teacher_model, loss=loss, loaders=loaders, device=device, info=info,
                            show_progress=show_progress)  # teacher outputs, device data, compile wrapper
        trainer = Trainer(cfg, out_dir=out_dir, student=student, loss=loss, device=device, loaders=loaders,
                          teacher=teacher_model, info=info, show_progress=show_progress,
                          fingerprint=fingerprint, provenance=provenance, **parts._asdict())
        return trainer.fit(resume=resume, stop_after=stop_after)
    finally:
        cleanup(info)


def _check_resume_origin(last: Path, fingerprint: Fingerprint, allow: set[str]) -> None:
    """Refuse to resume ``last`` with another teacher or other data than it was trained with."""
    why = resume_refusal(read_fingerprint(last), fingerprint, allow)
    if why is not None:
        raise run_guard.RunFolderError(f"--resume {last}: {why}")


def train_teacher(cfg: Config, out_dir, *, resume: bool = False, **kwargs) -> TrainResult:
    """Train ``cfg.teacher`` (Polyp-PVT, PVTv2-B2) with ``cfg.teacher_recipe`` applied: the segmentation loss
    alone, on every label (:meth:`~kdas_lab.config.Config.for_teacher`)."""
    cfg = cfg.for_teacher()  # what runs is what the checkpoint records
    return train_model(cfg, out_dir=out_dir, student_name=cfg.teacher, resume=resume, **kwargs)


def ensure_teacher(cfg: Config, out_dir, *, retrain: bool = False, progress: bool = True,
                   before_training=None, provenance: dict | None = None) -> tuple[Path, str]:
    """The teacher of ``cfg`` in ``out_dir``: ``(best.pt, "cached")`` when it records the fingerprint
    :func:`train_teacher` would give it now, else ``(best.pt, "trained")`` after training one beside it
    (``<out_dir>.new``, resumed if an interrupted one of the same fingerprint is there) that replaces it only on
    success. ``before_training()`` is called just before training (e.g. to print a notice); ``provenance`` is
    recorded in the checkpoints of a teacher trained here."""
    out_dir = Path(out_dir)
    expected = Fingerprint.of(cfg.for_teacher(), None, data_key(cfg.data_dir))
    if not retrain and reusable(out_dir / "best.pt", expected):
        return out_dir / "best.pt", "cached"
    if before_training is not None:
        before_training()
    staged = staging_dir(out_dir)
    resume = (staged / "last.pt").is_file() and read_fingerprint(staged / "last.pt") == expected
    train_teacher(cfg, staged, resume=resume, show_progress=progress, overwrite_run=True, provenance=provenance)
    return replace_dir(staged, out_dir) / "best.pt", "trained"


def distill(cfg: Config, teacher, out_dir, *, resume: bool = False, **kwargs) -> TrainResult:
    """Distil ``teacher`` (model or checkpoint path) into ``cfg.student`` with the loss ``cfg.method``."""
    return train_model(cfg, out_dir=out_dir, teacher=teacher, student_name=cfg.student,
                       resume=resume, **kwargs)


