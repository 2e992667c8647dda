"""FitNets hint loss with a trainable 1x1 adapter: ``FitNetLoss``.

Source: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015. A regressor maps the
student's hint layer to the teacher's width and the student matches the teacher's features::

    L_FIT = MSE(adapter(F_s), F_t)       # mean over all elements

Hint: backbone stage ``stage`` (0-based index into ``features.stages``; default 2 = stage 3,
stride 16: 160 channels for B0 vs 320 for B2), ``cfg.extra["fitnet_stage"]``. The adapter is a
1x1 ``nn.Conv2d(C_s, C_t)`` with bias, owned by this module: the trainer must optimise
``loss.parameters()`` too and move the loss to the device. If spatial sizes differ the teacher's
map is bilinearly resized to the student's. Total: ``(1 - alpha) * (seg1 + seg2) + alpha * L_FIT``.
Shapes: ``F_s (B, C_s, h, w)``, ``F_t (B, C_t, h, w)``. Components: ``seg``, ``fitnet``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import DistillationLoss


def hint_loss(adapted_student: torch.Tensor, teacher_feat: torch.Tensor) -> torch.Tensor:
    """``MSE(adapted F_s, F_t)``, the teacher resized to the student's spatial size if needed."""
    if adapted_student.shape[1] != teacher_feat.shape[1]:
        raise ValueError(f"fitnet: adapted student has {adapted_student.shape[1]} channels, "
                         f"teacher has {teacher_feat.shape[1]}")
    if adapted_student.shape[-2:] != teacher_feat.shape[-2:]:
        teacher_feat = F.interpolate(teacher_feat, size=adapted_student.shape[-2:], mode="bilinear",
                                     align_corners=False)
    return F.mse_loss(adapted_student, teacher_feat)


class FitNetLoss(DistillationLoss):
    """FitNets hint (Romero et al., ICLR 2015) on one backbone stage through a trainable 1x1 adapter.

    Formula: ``L_FIT = MSE(adapter(F_s), F_t)`` (mean over elements; the teacher's map bilinearly resized
    to the student's ``h, w`` if they differ); ``total = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * L_FIT``.
    The adapter ``nn.Conv2d(C_s, C_t, 1)`` (with bias) is this module's own parameter: the trainer
    optimises ``loss.parameters()`` too.

    Args:
        student_channels: ``C_s`` of the student's hint stage.
        teacher_channels: ``C_t`` of the teacher's hint stage.
        alpha: weight of the distillation term; ``1 - alpha`` weighs the segmentation loss of both heads.
        legacy_bce: the published (unweighted, batch-mean) BCE in the segmentation loss
            (:class:`~kdas_lab.losses.structure.StructureLoss`).
        stage: index into ``features.stages`` (0-3; default 2 = stage 3, stride 16: 160 channels for B0,
            320 for B2; ``cfg.extra["fitnet_stage"]``).

    Shape:
        student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, H, W)`` and ``features.stages[stage]``
        ``F_s (B, C_s, h, w)``, ``F_t (B, C_t, h', w')``; ``mask`` ``(B, 1, H, W)`` -> scalar ``total``.
        Components: ``seg``, ``fitnet``.
    """

    name = "fitnet"
    teacher_fields = ("features",)

    def __init__(self, student_channels: int, teacher_channels: int, alpha: float = 0.3,
                 legacy_bce: bool = False, stage: int = 2):
        super().__init__(alpha=alpha, legacy_bce=legacy_bce)
        if not 0 <= stage <= 3:
            raise ValueError(f"FitNetLoss: stage must be 0..3 (index into features.stages), got {stage}")
        self.stage = int(stage)
        self.adapter = nn.Conv2d(int(student_channels), int(teacher_channels), kernel_size=1)

    def distill_term(self, student: Any, teacher: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        f_s = student.features.stages[self.stage]  # (B, C_s, h, w)
        f_t = teacher.features.stages[self.stage]  # (B, C_t, h, w)
        if f_s.shape[1] != self.adapter.in_channels:
            raise ValueError(f"fitnet: student stage {self.stage} has {f_s.shape[1]} channels, "
                             f"adapter expects {self.adapter.in_channels}")
        loss = hint_loss(self.adapter(f_s), f_t)
        return loss, {"fitnet": loss}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, stage={self.stage}"
