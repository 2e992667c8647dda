"""Pixel-wise Hinton KD for a single-channel (binary) segmentation head: ``KDLoss``.

Source: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (2015), applied per
pixel as in the segmentation KD literature. A one-logit head defines a Bernoulli distribution per
pixel, ``p = sigmoid(z / T)``, so the softened KL is::

    KL(p_t || p_s) = p_t log(p_t / p_s) + (1 - p_t) log((1 - p_t) / (1 - p_s))
    L_KD = T^2 * (mean_pixels KL(P1) + mean_pixels KL(P2))

computed with ``logsigmoid`` for stability (``log p = logsigmoid(z/T)``, ``log(1-p) = logsigmoid(-z/T)``).
Total: ``(1 - alpha) * (seg1 + seg2) + alpha * L_KD`` (cfg.alpha, cfg.temperature). ``T`` defaults to
KDAS's 2; the segmentation KD literature uses T = 1 (``--set temperature=1``).
Shapes: logits ``(B, 1, H, W)``. Components: ``seg``, ``kd``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import DistillationLoss


def bernoulli_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-pixel ``KL(Bern(sigmoid(z_t/T)) || Bern(sigmoid(z_s/T)))``, same shape as the inputs."""
    zs, zt = student_logits / temperature, teacher_logits / temperature
    log_ps, log_1ms = F.logsigmoid(zs), F.logsigmoid(-zs)
    log_pt, log_1mt = F.logsigmoid(zt), F.logsigmoid(-zt)
    return log_pt.exp() * (log_pt - log_ps) + log_1mt.exp() * (log_1mt - log_1ms)


class KDLoss(DistillationLoss):
    """Pixel-wise Hinton KD (Hinton, Vinyals & Dean, 2015) for a one-logit head, on both heads, times ``T^2``.

    Formula: with ``p = sigmoid(z / T)`` per pixel,
    ``KL(p_t || p_s) = p_t log(p_t / p_s) + (1 - p_t) log((1 - p_t) / (1 - p_s))`` (via ``logsigmoid``),
    ``L_KD = T^2 * (mean_pixels KL(P1) + mean_pixels KL(P2))``;
    ``total = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * L_KD``.

    Args:
        temperature: ``T`` (default KDAS's 2; the segmentation KD literature uses 1).
        alpha: weight of the distillation term; ``1 - alpha`` weighs the segmentation loss of both heads.
        legacy_bce: the published (unweighted, batch-mean) BCE in the segmentation loss
            (:class:`~kdas_lab.losses.structure.StructureLoss`).

    Shape:
        student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, H, W)``; ``mask`` ``(B, 1, H, W)``
        -> scalar ``total``. Components: ``seg``, ``kd``.
    """

    name = "kd"
    teacher_fields = ("p1", "p2")  # what it reads of the teacher output (a teacher cache serves these)

    def __init__(self, temperature: float = 2.0, alpha: float = 0.3, legacy_bce: bool = False):
        super().__init__(alpha=alpha, legacy_bce=legacy_bce)
        self.temperature = float(temperature)

    def distill_term(self, student: Any, teacher: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t = self.temperature
        kd = sum(bernoulli_kl(getattr(student, h), getattr(teacher, h), t).mean() for h in ("p1", "p2")) * t**2
        return kd, {"kd": kd}
