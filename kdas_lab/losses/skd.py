"""Structured knowledge distillation (pixel-wise + pair-wise): ``SKDLoss``.

Source: Liu et al., "Structured Knowledge Distillation for Semantic Segmentation", CVPR 2019
(the holistic, adversarial term is left out: it needs a discriminator network).

- Pixel-wise: per-pixel KL of the class distributions at T = 1. With a one-logit head the class
  distribution is Bernoulli(sigmoid(z)): ``L_pi = mean_pixels KL(P1) + mean_pixels KL(P2)``.
- Pair-wise: on the decoder feature ``cfm (B, 32, h, w)``, max-pool into nodes of
  ``k x k`` pixels (``k = max(1, int(min(h, w) * scale))``, ``ceil_mode``), L2-normalise each
  node's feature vector, affinity ``a_ij = cos(f_i, f_j)`` (N x N for N nodes), and
  ``L_pa = mean_b sum_ij (a^s_ij - a^t_ij)^2 / N^2``.

``L_SKD = pixel_weight * L_pi + pair_weight * L_pa`` with ``cfg.extra`` keys ``skd_pixel_weight``
(default 10), ``skd_pair_weight`` (default 1), ``skd_scale`` (default 0.5, the pooling scale). The
weights follow the reference code's scale (pixel term x 10); unlike that code, which divides by a detached
norm, ``F.normalize`` here passes gradients through the node norms.
Total: ``(1 - alpha) * (seg1 + seg2) + alpha * L_SKD``. Components: ``seg``, ``skd``, ``skd_pixel``,
``skd_pair``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .base import DistillationLoss
from .kd import bernoulli_kl


def pooled_affinity(feat: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """Cosine-similarity matrix of max-pooled node features: ``(B, C, h, w)`` -> ``(B, N, N)``."""
    k = max(1, int(min(feat.shape[-2:]) * scale))
    nodes = F.max_pool2d(feat, kernel_size=k, stride=k, ceil_mode=True).flatten(2)  # (B, C, N)
    nodes = F.normalize(nodes, dim=1)  # unit vectors per node
    return nodes.transpose(1, 2) @ nodes  # (B, N, N)


def pairwise_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """``mean_b sum_ij (a^s_ij - a^t_ij)^2 / N^2`` between pooled affinities (channels may differ)."""
    if student_feat.shape[-2:] != teacher_feat.shape[-2:]:
        teacher_feat = F.interpolate(teacher_feat, size=student_feat.shape[-2:], mode="bilinear", align_corners=False)
    a_s, a_t = pooled_affinity(student_feat, scale), pooled_affinity(teacher_feat, scale)
    return (a_s - a_t).pow(2).mean()  # mean over B and N^2 entries


class SKDLoss(DistillationLoss):
    """Structured KD (Liu et al., CVPR 2019), pixel-wise + pair-wise terms (the adversarial one left out).

    Formula: ``L_pi = mean_pixels KL(P1) + mean_pixels KL(P2)`` (Bernoulli KL at T = 1);
    ``L_pa = mean_b sum_ij (a^s_ij - a^t_ij)^2 / N^2`` with ``a_ij = cos(f_i, f_j)`` over the ``N`` nodes of
    ``cfm`` max-pooled in ``k x k`` cells (``k = max(1, int(min(h, w) * scale))``);
    ``L_SKD = pixel_weight * L_pi + pair_weight * L_pa``;
    ``total = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * L_SKD``.

    Args:
        alpha: weight of the distillation term; ``1 - alpha`` weighs the segmentation loss of both heads.
        legacy_bce: the published (unweighted, batch-mean) BCE in the segmentation loss
            (:class:`~kdas_lab.losses.structure.StructureLoss`).
        pixel_weight: weight of ``L_pi`` (default 10, the reference code's scale; ``cfg.extra["skd_pixel_weight"]``).
        pair_weight: weight of ``L_pa`` (default 1; ``cfg.extra["skd_pair_weight"]``).
        scale: pooling scale in (0, 1] (default 0.5; ``cfg.extra["skd_scale"]``).

    Shape:
        student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, H, W)`` and ``features.cfm``
        ``(B, C, h, w)`` (channels may differ); ``mask`` ``(B, 1, H, W)`` -> scalar ``total``.
        Components: ``seg``, ``skd``, ``skd_pixel``, ``skd_pair``.
    """

    name = "skd"
    teacher_fields = ("features",)

    def __init__(self, alpha: float = 0.3, legacy_bce: bool = False, pixel_weight: float = 10.0,
                 pair_weight: float = 1.0, scale: float = 0.5):
        super().__init__(alpha=alpha, legacy_bce=legacy_bce)
        if not 0 < scale <= 1 or math.isnan(scale):
            raise ValueError(f"SKDLoss: scale must be in (0, 1], got {scale}")
        self.pixel_weight, self.pair_weight, self.scale = float(pixel_weight), float(pair_weight), float(scale)

    def distill_term(self, student: Any, teacher: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pixel = sum(bernoulli_kl(getattr(student, h), getattr(teacher, h)).mean() for h in ("p1", "p2"))
        pair = pairwise_loss(student.features.cfm, teacher.features.cfm, self.scale)
        loss = self.pixel_weight * pixel + self.pair_weight * pair
        return loss, {"skd": loss, "skd_pixel": pixel, "skd_pair": pair}
