"""``create_loss(method, cfg, student, teacher)``: the training objective named ``method``, configured
from ``cfg`` (the ``cfg.extra`` keys it reads are listed in :mod:`kdas_lab.losses`)."""
from __future__ import annotations

import torch
from torch import nn

from kdas_lab.config import Config
from kdas_lab.losses.at import ATLoss
from kdas_lab.losses.base import SegOnlyLoss
from kdas_lab.losses.cwd import CWDLoss
from kdas_lab.losses.dist import DISTLoss
from kdas_lab.losses.fitnet import FitNetLoss
from kdas_lab.losses.kd import KDLoss
from kdas_lab.losses.kdas import KDAS_MODES, KDASLoss
from kdas_lab.losses.skd import SKDLoss
from kdas_lab.losses.teacher_targets import TeacherTargetLoss

LOSS_METHODS = ("none", "kdas", "kdas-official", "kd", "at", "cwd", "skd", "dist", "fitnet", "targets")
# methods whose segmentation part can read the teacher-built targets of cfg.targets
TARGET_METHODS = ("targets", "kdas")


def stage_widths(model: nn.Module) -> tuple[int, ...]:
    """Channel widths of the 4 backbone stages: the model's ``stage_channels`` (:class:`PolypPVT`), else
    from one tiny forward pass (64 x 64, no grad, eval mode restored afterwards)."""
    if hasattr(model, "stage_channels"):
        return tuple(int(c) for c in model.stage_channels)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 64, 64, device=device))
    finally:
        model.train(was_training)
    return tuple(int(f.shape[1]) for f in out.features.stages)


def _fitnet(extra: dict, student: nn.Module | None, teacher: nn.Module | None, common: dict) -> FitNetLoss:
    stage = int(extra.get("fitnet_stage", 2))
    if "fitnet_channels" in extra:
        c_s, c_t = (int(c) for c in extra["fitnet_channels"])
    elif isinstance(student, nn.Module) and isinstance(teacher, nn.Module):
        c_s, c_t = stage_widths(student)[stage], stage_widths(teacher)[stage]
    else:
        raise ValueError("create_loss('fitnet') needs the student and teacher models (to size its 1x1 adapter) "
                         "or cfg.extra['fitnet_channels'] = (C_student, C_teacher)")
    loss = FitNetLoss(c_s, c_t, stage=stage, **common)
    param = next(student.parameters(), None) if student is not None else None
    return loss.to(param.device) if param is not None else loss


def create_loss(method: str, cfg: Config, student: nn.Module | None = None,
                teacher: nn.Module | None = None) -> nn.Module:
    """The training objective named ``method`` (one of ``LOSS_METHODS``) configured from ``cfg``.

    ``student`` / ``teacher`` models are only needed by ``fitnet`` (adapter widths; the adapter is
    placed on the student's device). The trainer should still call ``loss.to(device)`` and add
    ``loss.parameters()`` to its optimizer.
    """
    if method not in LOSS_METHODS:
        raise ValueError(f"unknown loss method {method!r}; valid methods: {', '.join(LOSS_METHODS)}")
    targets = cfg.targets
    if method == "targets" and targets == "mask":
        raise ValueError("method 'targets' needs cfg.targets = pseudo, pseudo_soft or mix "
                         "(the teacher's answers as targets)")
    if targets != "mask" and method not in TARGET_METHODS:
        raise ValueError(f"targets={targets!r} applies to the methods {', '.join(TARGET_METHODS)}, not {method!r}")
    extra = dict(cfg.extra or {})
    common = {"alpha": float(cfg.alpha), "legacy_bce": bool(cfg.legacy_bce)}
    temperature = float(cfg.temperature)
    if method == "none":
        return SegOnlyLoss(legacy_bce=bool(cfg.legacy_bce))
    if method == "targets":
        return TeacherTargetLoss(mode=targets, mix_lambda=float(cfg.mix_lambda), legacy_bce=common["legacy_bce"])
    if method in KDAS_MODES:
        return KDASLoss(mode=method, temperature=temperature, alpha=common["alpha"],
                        legacy_bce=True if method == "kdas-official" else common["legacy_bce"],
                        at_weight=float(extra.get("at_weight", 1.0)), sgm_weight=float(extra.get("sgm_weight", 1.0)),
                        sgm_space=str(extra.get("sgm_space", "logits")),
                        sgm_heads=cfg.sgm_heads if method == "kdas" else "both",
                        targets=targets, mix_lambda=float(cfg.mix_lambda))
    if method == "kd":
        return KDLoss(temperature=temperature, **common)
    if method == "dist":
        return DISTLoss(temperature=temperature, **common)
    if method == "at":
        return ATLoss(beta=float(extra.get("at_beta", 1000.0)), p=float(extra.get("at_p", 2.0)), **common)
    if method == "cwd":
        return CWDLoss(tau=float(extra.get("cwd_tau", 4.0)), features=bool(extra.get("cwd_features", True)), **common)
    if method == "skd":
        return SKDLoss(pixel_weight=float(extra.get("skd_pixel_weight", 10.0)),
                       pair_weight=float(extra.get("skd_pair_weight", 1.0)),
                       scale=float(extra.get("skd_scale", 0.5)), **common)
    return _fitnet(extra, student, teacher, common)
