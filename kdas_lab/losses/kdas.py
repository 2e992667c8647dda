"""KDAS objective (Trinh et al., ICME 2024, arXiv 2312.08555): ``KDASLoss``.

``L_KDAS = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * (at_weight * L_AT + sgm_weight * L_SGM)``

Two modes (KDAS: Trinh et al., ICME 2024, arXiv:2312.08555, and its published code):

``"kdas"`` (the method as described, bugs fixed):
    L_AT  = T^2 * sum_{h in P1, P2} KL_rows(softmax(A(P_t,h) / T) || softmax(A(P_s,h) / T))
    L_SGM = sum_{h in P1, P2} MSE(P_s,h + P_s,h^T, P_t,h + P_t,h^T)
    with ``A(P) = softmax(P P^T / sqrt(S), dim=-1) @ P`` (row attention, same for both networks,
    computed per sample over the S rows of the S x S logit map; see ``row_attention.py``), forward KL
    with the teacher as target, per-row "batchmean" normalisation, teacher detached (constants),
    true per-pixel weighted BCE unless ``legacy_bce=True``. Works at batch size 1. ``sgm_heads="p1"``
    (``Config.sgm_heads``) keeps L_SGM on P1 only, as the published code does; the default "both"
    applies it to both heads, as the paper's symmetric guidance of both predictions reads.

``"kdas-official"`` (the published code's arithmetic, kept to study it):
    kd_h  = KLDivLoss(reduction="mean")(softmax(P_s,h) / T, SDPA(P_t,h, P_t,h, P_t,h) / T)
    L_AT  = (kd1 + kd2) * T^2        # student term is the constant 1/T: zero gradient;
                                     # negative teacher values make it (and the total) NaN
    L_SGM = MSE(P1_s + P1_s^T, P1_t + P1_t^T)   # P1 only, via squeeze(): fails at batch size 1
    segmentation with the legacy (unweighted) BCE by default.
    Student gradients therefore equal those of
    ``(1-alpha)(seg1 + seg2) + alpha * sgm_weight * L_SGM``. Warns once per process.

The published training loop also clamps every gradient element to [-0.5, 0.5]; that is the
trainer's job (``Config.clip_mode = "value"``, ``clip_value = 0.5``), not this module's.

Variant (never the default; ``sgm_space="prob"``, arm ``kdas_sgm_prob``): L_SGM on probabilities,
    ``MSE(sigma(P_s) + sigma(P_s)^T, sigma(P_t) + sigma(P_t)^T)``, bounded by 4 per pixel whatever the
    logits' scale (the method's MSE on raw logits reaches 30-100 with from-scratch teachers).

Shapes: student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, S, S)``; mask ``(B, 1, S, S)``.
Components (detached, unweighted): ``seg`` (seg1 + seg2), ``at`` (L_AT), ``sgm`` (L_SGM).
"""
from __future__ import annotations

import warnings
from typing import Any

import torch

from kdas_lab.config import SGM_HEADS  # "p1": the SGM on P1 only, as the published code (still batch-safe)

from .base import DistillationLoss
from .row_attention import (
    at_term,
    official_kl,
    official_sgm,
    official_student_attention,
    official_teacher_attention,
    sgm_loss,
)

KDAS_MODES = ("kdas", "kdas-official")
SGM_SPACES = ("logits", "prob")
_official_warned = False


class KDASOfficialWarning(UserWarning):
    """Emitted once per process when the published (buggy) KDAS objective is used."""


def _warn_official_once() -> None:
    global _official_warned
    if not _official_warned:
        _official_warned = True
        warnings.warn(
            "kdas-official reproduces the published KDAS code: its attention term has zero gradient and "
            "is NaN when teacher attention values are negative (so the logged total is NaN), SGM uses P1 "
            "only and breaks at batch size 1, BCE is unweighted. Use method 'kdas' for the fixed version.",
            KDASOfficialWarning, stacklevel=3)


class KDASLoss(DistillationLoss):
    """KDAS loss (Trinh et al., ICME 2024, arXiv:2312.08555), mode ``"kdas"`` (fixed) or ``"kdas-official"``.

    Formula: ``total = (1 - alpha) * (seg(P1) + seg(P2)) + alpha * (at_weight * L_AT + sgm_weight * L_SGM)``.
    Mode ``"kdas"``: ``L_AT = sum_{h in P1, P2} T^2 * row_kl(A(P_s,h), A(P_t,h), T)``
    (:func:`~kdas_lab.losses.row_attention.at_term`, ``A(P) = softmax(P P^T / sqrt(S)) P`` per row),
    ``L_SGM = sum_h MSE(P_s,h + P_s,h^T, P_t,h + P_t,h^T)`` (P1 only with ``sgm_heads="p1"``; on
    ``sigmoid(P)`` with ``sgm_space="prob"``). Mode ``"kdas-official"``: the published code's arithmetic
    (its attention term has zero student gradient and may be NaN; SGM on P1 only, fails at batch size 1).

    Args:
        mode: ``"kdas"`` or ``"kdas-official"``.
        temperature: ``T`` of the attention term (> 0; default 2).
        alpha: weight of the distillation part; ``1 - alpha`` weighs the segmentation loss of both heads.
        legacy_bce: the published (unweighted, batch-mean) BCE; None picks the mode's default
            (``False`` for ``kdas``, ``True`` for ``kdas-official``).
        at_weight, sgm_weight: scale ``L_AT`` / ``L_SGM`` inside the alpha part (ablations; 1.0 = the method).
        sgm_space: ``"logits"`` (the method) or ``"prob"`` (a variant; ``kdas`` only).
        sgm_heads: ``"both"`` or ``"p1"`` (as the published code; ``kdas`` only).
        targets, mix_lambda: the segmentation part's targets (:class:`DistillationLoss`; a variant unless
            ``"mask"``; ``kdas`` only).

    Shape:
        student / teacher outputs with ``p1``, ``p2`` logits ``(B, 1, S, S)`` (square: SGM transposes them);
        ``mask`` ``(B, 1, S, S)`` -> scalar ``total``. Components: ``seg``, ``at``, ``sgm``.
    """

    teacher_fields = ("p1", "p2")  # what it reads of the teacher output (a teacher cache serves these)

    def __init__(self, mode: str = "kdas", temperature: float = 2.0, alpha: float = 0.3,
                 legacy_bce: bool | None = None, at_weight: float = 1.0, sgm_weight: float = 1.0,
                 sgm_space: str = "logits", sgm_heads: str = "both", targets: str = "mask", mix_lambda: float = 0.5):
        if mode not in KDAS_MODES:
            raise ValueError(f"KDASLoss: unknown mode {mode!r}; valid modes: {', '.join(KDAS_MODES)}")
        if sgm_space not in SGM_SPACES or (sgm_space != "logits" and mode != "kdas"):
            raise ValueError(f"KDASLoss: sgm_space must be one of {', '.join(SGM_SPACES)} "
                             f"('prob' only with mode 'kdas'), got {sgm_space!r}")
        if sgm_heads not in SGM_HEADS or (sgm_heads != "both" and mode != "kdas"):
            raise ValueError(f"KDASLoss: sgm_heads must be one of {', '.join(SGM_HEADS)} "
                             f"('p1' only with mode 'kdas'; kdas-official is always P1), got {sgm_heads!r}")
        if temperature <= 0:
            raise ValueError(f"KDASLoss: temperature must be > 0, got {temperature}")
        official = mode == "kdas-official"
        if targets != "mask" and mode != "kdas":
            raise ValueError(f"KDASLoss: targets {targets!r} only with mode 'kdas' (kdas-official is as published)")
        super().__init__(alpha=alpha, legacy_bce=official if legacy_bce is None else bool(legacy_bce),
                         targets=targets, mix_lambda=mix_lambda)
        self.mode = mode
        self.name = mode
        self.temperature = float(temperature)
        self.at_weight = float(at_weight)
        self.sgm_weight = float(sgm_weight)
        self.sgm_space = sgm_space
        self.sgm_heads = sgm_heads
        if official:
            _warn_official_once()

    def distill_term(self, student: Any, teacher: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.mode == "kdas":
            at, sgm = self._fixed_terms(student, teacher)
        else:
            at, sgm = self._official_terms(student, teacher)
        return self.at_weight * at + self.sgm_weight * sgm, {"at": at, "sgm": sgm}

    def part_weights(self) -> dict[str, float]:
        return {"at": self.at_weight, "sgm": self.sgm_weight}

    def _fixed_terms(self, student: Any, teacher: Any) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.temperature
        at = student.p1.new_zeros(())
        sgm = student.p1.new_zeros(())
        for head in ("p1", "p2"):
            p_s, p_t = getattr(student, head), getattr(teacher, head)  # (B, 1, S, S)
            if p_s.shape != p_t.shape:
                raise ValueError(f"KDAS: student {head} {tuple(p_s.shape)} != teacher {head} {tuple(p_t.shape)}")
            at = at + at_term(p_s, p_t, t)  # T^2 * row_kl(A(P_s), A(P_t), T)
            if self.sgm_heads == "p1" and head == "p2":
                continue
            if self.sgm_space == "prob":
                p_s, p_t = torch.sigmoid(p_s), torch.sigmoid(p_t)  # (B, 1, S, S) in [0, 1]
            sgm = sgm + sgm_loss(p_s, p_t)
        return at, sgm

    def _official_terms(self, student: Any, teacher: Any) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.temperature
        kd = [official_kl(official_student_attention(getattr(student, h), t),
                          official_teacher_attention(getattr(teacher, h), t)) for h in ("p1", "p2")]
        at = (kd[0] + kd[1]) * t**2
        sgm = official_sgm(student.p1, teacher.p1)
        return at, sgm

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, temperature={self.temperature}, alpha={self.alpha}, "
                f"legacy_bce={self.legacy_bce}, at_weight={self.at_weight}, sgm_weight={self.sgm_weight}, "
                f"sgm_space={self.sgm_space!r}, sgm_heads={self.sgm_heads!r}")
