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
    """Attention transfer (p=2) on stages 2-4, weighted ``beta / 2`` (see module docstring)."""

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
