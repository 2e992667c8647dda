"""KDAS attention maps and the Symmetrical Guiding Module, as small pure functions.

A prediction map ``P`` (logits, ``(B, 1, H, W)``) is read, per sample, as ``H`` tokens (its rows)
of ``W`` features (its columns). Its *row attention* is self-attention with ``Q = K = V = P``::

    A(P) = softmax(P P^T / sqrt(W), dim=-1) @ P          # (B, 1, H, W)

which is what ``F.scaled_dot_product_attention(P, P, P)`` computes on a 4-D map (the leading
``(B, 1)`` are batch dims). The published code applies it to the teacher only; the fixed ``kdas``
method applies the *same* function to both networks, so that the KL compares like with like.

Fixed method (``kdas``)::

    q_t = softmax(A(P_t) / T, dim=-1), log q_s = log_softmax(A(P_s) / T, dim=-1)     # per row
    KL  = sum_{rows, j} q_t * (log q_t - log q_s) / (number of rows = B * H)   # "batchmean" per row
    L_AT  = T^2 * (KL(P1) + KL(P2))                      # at_term per head, summed
    L_SGM = MSE(P1_s + P1_s^T, P1_t + P1_t^T) + MSE(P2_s + P2_s^T, P2_t + P2_t^T)

Published arithmetic (``kdas-official``, the KDAS authors' released code) lives in the ``official_*`` functions.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F


def _check_map(p: torch.Tensor, what: str) -> None:
    if p.dim() != 4:
        raise ValueError(f"{what}: expected a map of shape (B, C, H, W), got {tuple(p.shape)}")


def row_attention(p: torch.Tensor) -> torch.Tensor:
    """``softmax(P P^T / sqrt(W), dim=-1) @ P`` per sample and channel. ``(B, C, H, W)`` -> same."""
    _check_map(p, "row_attention")
    scores = p @ p.transpose(-2, -1) / math.sqrt(p.shape[-1])  # (B, C, H, H)
    return torch.softmax(scores, dim=-1) @ p  # (B, C, H, W)


def row_kl(student_att: torch.Tensor, teacher_att: torch.Tensor, temperature: float) -> torch.Tensor:
    """Forward KL(teacher || student) of row distributions at temperature T, averaged over rows.

    Each row of the last dim becomes a distribution ``softmax(x / T)``; the per-row KLs are summed
    and divided by the number of rows (``B * C * H``), the "batchmean" convention applied per row.
    Not multiplied by ``T^2`` (the caller does). ``(B, C, H, W)`` x 2 -> scalar.
    """
    if student_att.shape != teacher_att.shape:
        raise ValueError(f"row_kl: student {tuple(student_att.shape)} vs teacher {tuple(teacher_att.shape)}")
    log_q_s = F.log_softmax(student_att / temperature, dim=-1)  # (B, C, H, W)
    log_q_t = F.log_softmax(teacher_att / temperature, dim=-1)  # (B, C, H, W)
    kl = (log_q_t.exp() * (log_q_t - log_q_s)).sum()
    rows = student_att.numel() // student_att.shape[-1]
    return kl / rows


def attention_kl(student_att: torch.Tensor, teacher_att: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * row_kl(student_att, teacher_att, T)``: the attention term on given attention maps.
    ``(B, C, H, W)`` x 2 -> scalar."""
    return row_kl(student_att, teacher_att, temperature) * temperature**2


def at_term(p_s: torch.Tensor, p_t: torch.Tensor, temperature: float, *,
            teacher_att: torch.Tensor | None = None) -> torch.Tensor:
    """KDAS's attention term on one head: ``L_AT = T^2 * row_kl(A(P_s), A(P_t), T)``.

    The one place this formula is written (``KDASLoss`` mode ``kdas`` sums it over P1 and P2;
    :mod:`kdas_lab.course.term_fit` fits maps with it). ``teacher_att``: ``A(P_t)`` when already computed
    (a constant target reused over many steps). ``(B, C, H, W)`` logit maps x 2 -> scalar.
    """
    a_t = row_attention(p_t) if teacher_att is None else teacher_att
    return attention_kl(row_attention(p_s), a_t, temperature)


def symmetrize(p: torch.Tensor) -> torch.Tensor:
    """``P + P^T`` over the two spatial dims; needs square maps. ``(B, C, S, S)`` -> same."""
    _check_map(p, "symmetrize")
    if p.shape[-1] != p.shape[-2]:
        raise ValueError(
            f"SGM needs square prediction maps (P + P^T), got H x W = {p.shape[-2]} x {p.shape[-1]}; "
            "train KDAS on square crops/resizes")
    return p + p.transpose(-2, -1)


def sgm_loss(student_map: torch.Tensor, teacher_map: torch.Tensor) -> torch.Tensor:
    """Symmetrical Guiding Module: ``MSE(P_s + P_s^T, P_t + P_t^T)`` (mean over elements)."""
    return F.mse_loss(symmetrize(student_map), symmetrize(teacher_map))


# --- the published code's arithmetic (kdas-official) -------------------------------------------

def official_teacher_attention(p_t: torch.Tensor, temperature: float) -> torch.Tensor:
    """Published teacher term ``SDPA(P_t, P_t, P_t) / T`` (logit-valued, may be negative)."""
    _check_map(p_t, "official_teacher_attention")
    return F.scaled_dot_product_attention(p_t, p_t, p_t) / temperature  # (B, 1, S, S)


def official_student_attention(p_s: torch.Tensor, temperature: float) -> torch.Tensor:
    """Published student term ``softmax(P_s) / T`` with no ``dim``: PyTorch picks dim 1 for a 4-D
    tensor, the single channel, so this is the constant ``1/T`` and its gradient is exactly zero.
    We write ``dim=1`` explicitly (same arithmetic, no deprecation warning)."""
    _check_map(p_s, "official_student_attention")
    return torch.softmax(p_s, dim=1) / temperature  # (B, 1, S, S), all 1/T


def official_kl(student_term: torch.Tensor, teacher_term: torch.Tensor) -> torch.Tensor:
    """``nn.KLDivLoss(reduction="mean")(student_term, teacher_term)``: elementwise
    ``xlogy(t, t) - t * s`` averaged over all elements; NaN wherever the target is negative."""
    with warnings.catch_warnings():  # PyTorch warns that 'mean' is not 'batchmean' on every call
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides", category=UserWarning)
        return F.kl_div(student_term, teacher_term, reduction="mean")


def official_sgm(p_s: torch.Tensor, p_t: torch.Tensor) -> torch.Tensor:
    """Published SGM on P1: ``MSE(s + s.transpose(1, 2), t + t.transpose(1, 2))`` after
    ``squeeze()`` to ``(B, S, S)``. At batch size 1 ``squeeze()`` gives ``(S, S)`` and the
    published ``transpose(1, 2)`` raises; we raise a clear error instead."""
    if p_s.shape[0] == 1:
        raise ValueError(
            "kdas-official reproduces the published code, whose SGM calls squeeze() then transpose(1, 2): "
            "it breaks at batch size 1 (e.g. the last batch of an epoch). Use method 'kdas', or --set drop_last=true")
    if p_s.dim() != 4 or p_s.shape[1] != 1 or p_s.shape[-1] != p_s.shape[-2]:
        raise ValueError(f"kdas-official SGM expects square (B, 1, S, S) maps, got {tuple(p_s.shape)}")
    s, t = p_s.squeeze(), p_t.squeeze()  # (B, S, S)
    return F.mse_loss(s + s.transpose(1, 2), t + t.transpose(1, 2))
