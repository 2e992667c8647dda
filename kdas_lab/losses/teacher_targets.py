"""``TeacherTargetLoss`` (method ``"targets"``): the segmentation loss alone, on targets built from the
masks and the teacher's prediction (:mod:`kdas_lab.losses.targets` has the table and the sources)."""
from __future__ import annotations

from typing import Any

import torch

from kdas_lab.losses.base import LossOutput, seg_on_targets
from kdas_lab.losses.targets import TARGET_MODES


class TeacherTargetLoss(torch.nn.Module):
    """Segmentation loss on targets built from the mask and the teacher (method ``"targets"``).

    ``L = mean_b [structure(P1_S, Y_b) + structure(P2_S, Y_b)]`` with ``Y_b`` from :func:`build_targets`.
    Args: ``mode`` (one of ``TARGET_MODES`` but ``mask``), ``mix_lambda`` (the mask's share in ``mix``),
    ``legacy_bce``. Shape: student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, H, W)``, mask
    ``(B, 1, H, W)``, ``labelled`` bool ``(B,)`` or None -> ``LossOutput`` with component ``seg``.
    """

    needs_teacher = True
    teacher_fields = ("p1", "p2")  # a teacher-output cache can serve it

    def __init__(self, mode: str = "pseudo", mix_lambda: float = 0.5, legacy_bce: bool = False):
        super().__init__()
        if mode not in TARGET_MODES or mode == "mask":
            raise ValueError(f"TeacherTargetLoss: mode must be one of {', '.join(TARGET_MODES[1:])}, got {mode!r}")
        self.mode, self.mix_lambda, self.legacy_bce = mode, float(mix_lambda), legacy_bce

    def forward(self, student: Any, teacher: Any, mask: torch.Tensor,
                labelled: torch.Tensor | None = None) -> LossOutput:
        if teacher is None:
            raise ValueError("loss 'targets' needs the teacher's outputs; got teacher=None")
        seg = seg_on_targets(student, teacher, mask, labelled, self.mode, self.mix_lambda, self.legacy_bce)
        return LossOutput(seg, {"seg": seg.detach()})

    def extra_repr(self) -> str:
        return f"mode={self.mode}, mix_lambda={self.mix_lambda}, legacy_bce={self.legacy_bce}"
