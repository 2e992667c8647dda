"""Channel-wise distillation: ``CWDLoss``.

Source: Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021. Each
channel's map is turned into a distribution over its spatial positions, ``phi(y) = softmax(y / tau)``
over the h*w locations, and the student matches the teacher with a KL per channel::

    CWD(y_s, y_t) = tau^2 / (B * C) * sum_{b, c} sum_i phi(y_t)_i * (log phi(y_t)_i - log phi(y_s)_i)

Applied to the 1-channel logits P1 and P2 (full resolution) and, when ``features=True``
(``cfg.extra["cwd_features"]``, default True), to the decoder features ``cfm`` and ``sam`` (32
channels in both networks, stride 8). ``L_CWD`` is the plain sum of these 2 (or 4) terms; ``tau``
from ``cfg.extra["cwd_tau"]`` (default 4, the paper's value for segmentation logits).
Total: ``(1 - alpha) * (seg1 + seg2) + alpha * L_CWD``. Shapes ``(B, C, h, w)`` with equal C and h, w.
Components: ``seg``, ``cwd``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import DistillationLoss


def channel_wise_kl(student: torch.Tensor, teacher: torch.Tensor, tau: float = 4.0) -> torch.Tensor:
    """``tau^2 * mean_{b, c} KL(softmax_hw(y_t / tau) || softmax_hw(y_s / tau))``; ``(B, C, h, w)`` x 2 -> scalar."""
    if student.shape != teacher.shape:
        raise ValueError(f"CWD needs equal shapes, got student {tuple(student.shape)} "
                         f"vs teacher {tuple(teacher.shape)}")
    log_s = F.log_softmax(student.flatten(2) / tau, dim=-1)  # (B, C, h*w)
    log_t = F.log_softmax(teacher.flatten(2) / tau, dim=-1)  # (B, C, h*w)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=-1)  # (B, C)
    return kl.mean() * tau**2


class CWDLoss(DistillationLoss):
    """Channel-wise distillation (Shu et al., ICCV 2021) on the logits P1, P2 and the ``cfm``, ``sam`` features.

    Formula: per map pair ``(y_s, y_t)`` of shape ``(B, C, h, w)``,
    ``CWD = tau^2 / (B * C) * sum_{b, c} KL(softmax_hw(y_t / tau) || softmax_hw(y_s / tau))``;
    ``L_CWD`` is the sum over P1, P2 (and ``cfm``, ``sam`` when ``features``);
    ``total = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * L_CWD``.

    Args:
        alpha: weight of the distillation term; ``1 - alpha`` weighs the segmentation loss of both heads.
        legacy_bce: the published (unweighted, batch-mean) BCE in the segmentation loss
            (:class:`~kdas_lab.losses.structure.StructureLoss`).
        tau: the softmax temperature (default 4).
        features: add the decoder features ``cfm`` and ``sam`` (32 channels in both networks, stride 8;
            ``cfg.extra["cwd_features"]``, default True); False: the logits only (a teacher cache can serve it).

    Shape:
        student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, H, W)`` (and ``features.cfm``,
        ``features.sam`` ``(B, 32, h, w)``, equal in both networks); ``mask`` ``(B, 1, H, W)`` -> scalar
        ``total``. Components: ``seg``, ``cwd``.
    """

    name = "cwd"

    def __init__(self, alpha: float = 0.3, legacy_bce: bool = False, tau: float = 4.0, features: bool = True):
        super().__init__(alpha=alpha, legacy_bce=legacy_bce)
        self.tau, self.features = float(tau), bool(features)
        self.teacher_fields = ("p1", "p2", "features") if self.features else ("p1", "p2")

    def distill_term(self, student: Any, teacher: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pairs = [(student.p1, teacher.p1), (student.p2, teacher.p2)]
        if self.features:
            pairs += [(student.features.cfm, teacher.features.cfm), (student.features.sam, teacher.features.sam)]
        loss = sum(channel_wise_kl(s, t, self.tau) for s, t in pairs)
        return loss, {"cwd": loss}
