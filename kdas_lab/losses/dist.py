"""DIST (relation-based KD with Pearson correlation), intra-class term: ``DISTLoss``.

Source: Huang et al., "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022. DIST matches
``1 - pearson`` between student and teacher probabilities, (a) inter-class: across the classes
of each instance, (b) intra-class: across the instances (for segmentation: all pixels of the
batch) for each class. Here the head has ONE channel: a softmax over one channel is the constant 1,
and even the two-class Bernoulli vector ``[1 - p, p]`` of a pixel has Pearson correlation +-1 with
any other such vector, so the inter-class term is degenerate and is left out. We keep the
intra-class term on ``p = sigmoid(z / T)`` over all ``B*H*W`` pixels, for both heads::

    L_DIST = T^2 * sum_{h in P1, P2} (1 - pearson(p_s,h.flatten(), p_t,h.flatten()))

with ``T = cfg.temperature`` (default KDAS's 2; DIST's segmentation setting uses T = 1).
Total: ``(1 - alpha) * (seg1 + seg2) + alpha * L_DIST``.
Shapes: logits ``(B, 1, H, W)``. Components: ``seg``, ``dist``.
"""
from __future__ import annotations

from typing import Any

import torch

from .base import DistillationLoss


def pearson(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of two flattened tensors (cosine of the centred vectors); scalar."""
    a, b = a.flatten(), b.flatten()
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm() + eps)


def intra_class_relation(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                         temperature: float = 1.0) -> torch.Tensor:
    """``1 - pearson(sigmoid(z_s / T), sigmoid(z_t / T))`` over all pixels of the batch."""
    return 1 - pearson(torch.sigmoid(student_logits / temperature), torch.sigmoid(teacher_logits / temperature))


class DISTLoss(DistillationLoss):
    """DIST's intra-class relation (Huang et al., NeurIPS 2022) on both heads, times ``T^2``.

    Formula: ``L_DIST = T^2 * sum_{h in P1, P2} (1 - pearson(sigmoid(z_s,h / T), sigmoid(z_t,h / T)))``,
    the correlation taken over all ``B*H*W`` pixels of the batch (the inter-class term is degenerate for a
    one-channel head and left out); ``total = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * L_DIST``.

    Args:
        temperature: ``T`` (default KDAS's 2; DIST's segmentation setting uses 1).
        alpha: weight of the distillation term; ``1 - alpha`` weighs the segmentation loss of both heads.
        legacy_bce: the published (unweighted, batch-mean) BCE in the segmentation loss
            (:class:`~kdas_lab.losses.structure.StructureLoss`).

    Shape:
        student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, H, W)``; ``mask`` ``(B, 1, H, W)``
        -> scalar ``total``. Components: ``seg``, ``dist``.
    """

    name = "dist"
    teacher_fields = ("p1", "p2")  # what it reads of the teacher output (a teacher cache serves these)

    def __init__(self, temperature: float = 2.0, alpha: float = 0.3, legacy_bce: bool = False):
        super().__init__(alpha=alpha, legacy_bce=legacy_bce)
        self.temperature = float(temperature)

    def distill_term(self, student: Any, teacher: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t = self.temperature
        loss = sum(intra_class_relation(getattr(student, h), getattr(teacher, h), t) for h in ("p1", "p2")) * t**2
        return loss, {"dist": loss}
