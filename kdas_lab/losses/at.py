"""Attention transfer on backbone stages: ``ATLoss``.

Source: Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017 (activation-based
AT, p = 2). For a feature map ``F (B, C, h, w)`` the spatial attention map is
``a(F) = normalize_L2(mean_c F^p).flatten()`` (B, h*w). Loss per stage:
``mean_{b, i} (a_s - a_t)^2``; summed over backbone stages 2-4 (``features.stages[1:]``, strides
8/16/32; channel counts may differ, the channel mean removes them). If spatial sizes differ the
teacher's map is bilinearly resized to the student's size before normalising.
``L_AT = beta / 2 * sum_stages`` with ``beta = cfg.extra["at_beta"]`` (default 1000: the authors' reference
code's constant on the mean above; the paper states beta as 10^3 divided by the map size and batch).
Total: ``(1 - alpha) * (seg1 + seg2) + alpha * L_AT``. Components: ``seg``, ``at``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import DistillationLoss


def spatial_attention(feat: torch.Tensor, p: float = 2.0, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``normalize(mean_c |F|^p)`` flattened: ``(B, C, h, w)`` -> ``(B, h*w)`` (resized to ``size`` first)."""
    amap = feat.abs().pow(p).mean(dim=1, keepdim=True)  # (B, 1, h, w)
    if size is not None and tuple(amap.shape[-2:]) != tuple(size):
        amap = F.interpolate(amap, size=size, mode="bilinear", align_corners=False)
    return F.normalize(amap.flatten(1), dim=1)  # (B, h*w)


def at_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """``mean((a(F_s) - a(F_t))^2)`` with the teacher map resized to the student's size."""
    a_s = spatial_attention(student_feat, p)
    a_t = spatial_attention(teacher_feat, p, size=tuple(student_feat.shape[-2:]))
    return (a_s - a_t).pow(2).mean()


class ATLoss(DistillationLoss):
    """Attention transfer on backbone stages 2-4 (Zagoruyko & Komodakis, ICLR 2017, activation-based AT).

    Formula, per stage ``F (B, C, h, w)``: ``a(F) = normalize_L2(mean_c |F|^p)`` flattened ``(B, h*w)``
    (the teacher's map resized to the student's ``h, w`` first), ``at = mean_{b, i} (a_s - a_t)^2``;
    ``L_AT = beta / 2 * sum_stages at``; ``total = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * L_AT``.

    Args:
        alpha: weight of the distillation term; ``1 - alpha`` weighs the segmentation loss of both heads.
        legacy_bce: the published (unweighted, batch-mean) BCE in the segmentation loss
            (:class:`~kdas_lab.losses.structure.StructureLoss`).
        beta: scale of the summed stage terms (default 1000, the authors' reference code; ``cfg.extra["at_beta"]``).
        p: exponent of the activation map (2 as published).
        stages: indices into ``features.stages`` (default ``(1, 2, 3)``: stages 2-4, strides 8/16/32).

    Shape:
        student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, H, W)`` and ``features.stages[i]``
        ``(B, C_i, h_i, w_i)`` (channel counts may differ); ``mask`` ``(B, 1, H, W)`` -> scalar ``total``.
        Components: ``seg``, ``at``.
    """

    name = "at"
    teacher_fields = ("features",)

    def __init__(self, alpha: float = 0.3, legacy_bce: bool = False, beta: float = 1000.0, p: float = 2.0,
                 stages: tuple[int, ...] = (1, 2, 3)):
        super().__init__(alpha=alpha, legacy_bce=legacy_bce)
        self.beta, self.p, self.stages = float(beta), float(p), tuple(stages)

    def distill_term(self, student: Any, teacher: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s_stages, t_stages = student.features.stages, teacher.features.stages
        loss = sum(at_loss(s_stages[i], t_stages[i], self.p) for i in self.stages) * (self.beta / 2)
        return loss, {"at": loss}
