"""Pieces every training objective shares: ``LossOutput``, the two-head segmentation loss, the
teacher detaching, and ``DistillationLoss``, the ``(1 - alpha) * L_seg + alpha * L_term`` frame.

Outputs are read by attribute only (``out.p1``, ``out.p2``, ``out.features.stages`` / ``.cim`` /
``.cfm`` / ``.sam``), so any NamedTuple with those fields works, e.g. ``kdas_lab.models.PolypOutput``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from .structure import boundary_weight, structure_loss
from .targets import TARGET_MODES, build_targets, teacher_probability


class LossOutput(NamedTuple):
    """``total``: the scalar to backpropagate. ``components``: detached, *unweighted* scalars for
    logging (e.g. ``seg`` = seg(P1) + seg(P2), ``at``, ``sgm``, ``kd``), never used for backward."""

    total: torch.Tensor
    components: dict[str, torch.Tensor]


def detach_tree(obj: Any) -> Any:
    """Detach every tensor in nested NamedTuples / tuples / lists / dicts (teacher = constants)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # NamedTuple
        return type(obj)(*(detach_tree(v) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(detach_tree(v) for v in obj)
    if isinstance(obj, dict):
        return {k: detach_tree(v) for k, v in obj.items()}
    return obj


def seg_both_heads(student: Any, mask: torch.Tensor, legacy_bce: bool = False,
                   labelled: torch.Tensor | None = None) -> torch.Tensor:
    """``structure_loss(P1, G) + structure_loss(P2, G)`` (scalar); mask ``(B, 1, H, W)``.

    ``labelled`` (bool ``(B,)``, label-scarce training): the loss is taken over the labelled samples
    only (their batch mean), and is 0 (still connected to the graph) when none is labelled.
    """
    if labelled is not None:
        if not bool(labelled.any()):
            return student.p1.sum() * 0.0 + student.p2.sum() * 0.0
        student = _Heads(student.p1[labelled], student.p2[labelled])  # (L, 1, H, W) each
        mask = mask[labelled]  # (L, 1, H, W)
    weight = boundary_weight(mask.to(student.p1.dtype))  # (B, 1, H, W), shared by both heads
    return (structure_loss(student.p1, mask, legacy_bce, weight=weight)
            + structure_loss(student.p2, mask, legacy_bce, weight=weight))


def seg_on_targets(student: Any, teacher: Any, mask: torch.Tensor, labelled: torch.Tensor | None,
                   mode: str, mix_lambda: float, legacy_bce: bool = False) -> torch.Tensor:
    """The segmentation loss of both heads against :func:`build_targets` (scalar)."""
    prob = None if mode == "mask" else teacher_probability(detach_tree(teacher))  # (B, 1, H, W)
    targets, used = build_targets(mode, mask, prob, labelled, mix_lambda)
    return seg_both_heads(student, targets, legacy_bce, used)


class _Heads(NamedTuple):
    p1: torch.Tensor
    p2: torch.Tensor


class SegOnlyLoss(nn.Module):
    """Teacher-free objective (method ``"none"``, the Polyp-PVT training loss).

    ``L = structure(P1, G) + structure(P2, G)``; P1, P2 logits ``(B, 1, H, W)``, G ``(B, 1, H, W)``.
    Source: Polyp-PVT training script (Dong et al. 2023). Components: ``{"seg"}``.
    """

    needs_teacher = False

    def __init__(self, legacy_bce: bool = False):
        super().__init__()
        self.legacy_bce = legacy_bce

    def forward(self, student: Any, teacher: Any = None, mask: torch.Tensor | None = None) -> LossOutput:
        if mask is None:
            raise ValueError("SegOnlyLoss.forward(student, teacher, mask): mask is required")
        seg = seg_both_heads(student, mask, self.legacy_bce)
        return LossOutput(seg, {"seg": seg.detach()})


class DistillationLoss(nn.Module):
    """Base class: ``total = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * term``.

    Subclasses implement ``distill_term(student, teacher) -> (term, components)`` where ``teacher``
    is already detached and ``components`` names the (unweighted) parts of ``term``. ``targets``
    (:data:`~kdas_lab.losses.targets.TARGET_MODES`; ``"mask"`` = the method as published) sets what the
    segmentation part compares against, e.g. ``"mix"`` for KDAS terms on top of mixed targets.
    """

    needs_teacher = True
    name = "distill"

    def __init__(self, alpha: float = 0.3, legacy_bce: bool = False, targets: str = "mask",
                 mix_lambda: float = 0.5):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"{type(self).__name__}: alpha must be in [0, 1], got {alpha}")
        if targets not in TARGET_MODES:
            raise ValueError(f"{type(self).__name__}: targets must be one of {', '.join(TARGET_MODES)}, "
                             f"got {targets!r}")
        self.alpha = float(alpha)
        self.legacy_bce = legacy_bce
        self.targets, self.mix_lambda = targets, float(mix_lambda)

    def distill_term(self, student: Any, teacher: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def part_weights(self) -> dict[str, float] | None:
        """Weights of ``distill_term``'s parts inside it (``term = sum w_k * part_k``), or None when the
        term is not such a sum; :meth:`weighted_terms` then reports it whole as ``distill``."""
        return None

    def _seg_and_term(self, student, teacher, mask, labelled):
        if teacher is None:
            raise ValueError(f"loss {self.name!r} needs the teacher's outputs; got teacher=None")
        seg = seg_on_targets(student, teacher, mask, labelled, self.targets, self.mix_lambda, self.legacy_bce)
        term, parts = self.distill_term(student, detach_tree(teacher))
        return seg, term, parts

    def forward(self, student: Any, teacher: Any, mask: torch.Tensor,
                labelled: torch.Tensor | None = None) -> LossOutput:
        """``labelled`` (bool ``(B,)``): the segmentation part uses only these samples' masks; the
        distillation term always uses every sample (label-scarce training)."""
        seg, term, parts = self._seg_and_term(student, teacher, mask, labelled)
        total = (1 - self.alpha) * seg + self.alpha * term
        components = {"seg": seg.detach(), **{k: v.detach() for k, v in parts.items()}}
        return LossOutput(total, components)

    def weighted_terms(self, student: Any, teacher: Any, mask: torch.Tensor,
                       labelled: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The addends of ``total`` with their weights, graph attached (for per-term gradient norms):
        ``{"seg": (1-a) seg, "<part>": a * w_part * part, ...}``; they sum to ``forward(...).total``."""
        seg, term, parts = self._seg_and_term(student, teacher, mask, labelled)
        weights = self.part_weights()
        out = {"seg": (1 - self.alpha) * seg}
        if weights is None:
            out["distill"] = self.alpha * term
        else:
            out.update({k: self.alpha * weights[k] * parts[k] for k in weights})
        return out

    def extra_repr(self) -> str:
        targets = "" if self.targets == "mask" else f", targets={self.targets}, mix_lambda={self.mix_lambda}"
        return f"alpha={self.alpha}, legacy_bce={self.legacy_bce}{targets}"
