"""The teacher's answers as targets of the segmentation (structure) loss.

The teacher's prediction is what it is scored on: ``t = sigmoid(P1_T + P2_T)`` ``(B, 1, H, W)``. Per
sample, with ``G`` its mask when the sample is labelled::

    mode         labelled sample               unlabelled sample
    mask         G                             (not used: excluded from the loss)
    pseudo       G                             [t > 0.5]       (hard pseudo-label)
    pseudo_soft  G                             t               (soft target)
    mix          lam * G + (1 - lam) * t       t

and the loss is ``mean over the used samples of structure(P1_S, target) + structure(P2_S, target)``:
every sample weighs the same (per-sample normalisation), whether its target is a mask or the teacher's.
Sources: self-training / pseudo-labelling (Lee 2013; Xie et al., Noisy Student, CVPR 2020) and
label-teacher mixing as in Hinton et al. 2015, here through the structure loss the metric rewards.
"""
from __future__ import annotations

from typing import Any

import torch

from kdas_lab.config import TARGET_MODES


def teacher_probability(teacher: Any) -> torch.Tensor:
    """``sigmoid(P1 + P2)`` of the teacher's outputs ``(B, 1, H, W)``: its prediction as evaluated."""
    return torch.sigmoid(teacher.p1 + teacher.p2)


def build_targets(mode: str, mask: torch.Tensor, teacher_prob: torch.Tensor | None,
                  labelled: torch.Tensor | None = None,
                  mix_lambda: float = 0.5) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(targets (B, 1, H, W), used (B,) bool or None = every sample)`` for ``mode`` (table above).

    ``labelled`` (bool ``(B,)``; None = every sample labelled) says whose ``mask`` may be read.
    """
    if mode not in TARGET_MODES:
        raise ValueError(f"unknown target mode {mode!r}; valid modes: {', '.join(TARGET_MODES)}")
    if not 0.0 <= mix_lambda <= 1.0:
        raise ValueError(f"mix_lambda must be in [0, 1], got {mix_lambda}")
    if mode == "mask":
        return mask, labelled
    if teacher_prob is None:
        raise ValueError(f"target mode {mode!r} needs the teacher's outputs")
    unlabelled_target = (teacher_prob > 0.5).to(mask.dtype) if mode == "pseudo" else teacher_prob  # (B, 1, H, W)
    labelled_target = mix_lambda * mask + (1 - mix_lambda) * teacher_prob if mode == "mix" else mask
    if labelled is None:
        return labelled_target, None
    pick = labelled.view(-1, 1, 1, 1)  # (B, 1, 1, 1)
    return torch.where(pick, labelled_target, unlabelled_target), None  # (B, 1, H, W)
