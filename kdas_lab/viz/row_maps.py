"""Prediction maps as the KDAS row attention sees them (notebooks 02 and 03): one ``(S, S)`` map at a time.

``A(P) = softmax(P P^T / sqrt(S)) P`` (:func:`kdas_lab.losses.row_attention.row_attention`) mixes the rows
of a logit map ``P``; the helpers here give its row-to-row weights, the entropy of ``softmax(A(P) / T)``
per row, how banded ("striped") ``A(P)`` is, and an *ideal teacher* built from a mask.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from kdas_lab.losses.row_attention import row_attention


def as_map(p: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``(S, S)``, ``(1, S, S)`` or ``(1, 1, S, S)`` -> ``(S, S)`` detached tensor (float32 unless float64)."""
    t = torch.as_tensor(p).detach()
    t = t if t.dtype == torch.float64 else t.float()
    while t.dim() > 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2:
        raise ValueError(f"expected one 2-D map, got shape {tuple(torch.as_tensor(p).shape)}")
    return t


def map4(p: torch.Tensor) -> torch.Tensor:
    """``(S, S)`` -> ``(1, 1, S, S)``."""
    return p.reshape(1, 1, *p.shape[-2:])


def to_grid(p: torch.Tensor | np.ndarray, size: int) -> torch.Tensor:
    """Area-average a map to ``(size, size)`` (logits or a mask). ``(.., H, W)`` -> ``(size, size)``."""
    return F.adaptive_avg_pool2d(map4(as_map(p)), size)[0, 0]


def ideal_teacher(mask: torch.Tensor | np.ndarray, margin: float = 8.0) -> torch.Tensor:
    """Logits of a perfect, confident teacher: ``+margin`` where ``mask > 0.5``, ``-margin`` elsewhere."""
    m = as_map(mask)
    return torch.where(m > 0.5, margin, -margin)


# ----------------------------------------------------------------------------- row attention of a map
def row_weights(p: torch.Tensor) -> torch.Tensor:
    """The row-to-row weights ``softmax(P P^T / sqrt(S))`` of ``A(P)``. ``(S, S)`` -> ``(S, S)``."""
    p = as_map(p)
    return torch.softmax(p @ p.T / math.sqrt(p.shape[-1]), dim=-1)


def row_entropies(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """Entropy (nats) of each row distribution ``softmax(A(P) / T)``. ``(S, S)`` -> ``(S,)``."""
    q = torch.softmax(row_attention(map4(as_map(p)))[0, 0] / temperature, dim=-1)
    return -(q * q.clamp_min(1e-12).log()).sum(-1)


def entropy_table(maps: Mapping[str, torch.Tensor], temperatures: Sequence[float],
                  rows: torch.Tensor | None = None) -> pd.DataFrame:
    """Mean row entropy of ``softmax(A(P) / T)`` per map (columns) and temperature (index); with a
    boolean ``rows`` selection (e.g. rows crossing the polyp) also the mean over those rows."""
    out: dict[str, dict[float, float]] = {}
    for name, p in maps.items():
        h = {t: row_entropies(p, t) for t in temperatures}
        out[f"{name}: all rows"] = {t: float(v.mean()) for t, v in h.items()}
        if rows is not None and bool(rows.any()):
            out[f"{name}: polyp rows"] = {t: float(v[rows].mean()) for t, v in h.items()}
    return pd.DataFrame(out).rename_axis("T")


def stripe_stats(p: torch.Tensor) -> dict[str, float]:
    """How ``A(P)`` is banded. ``max_weight``: mean over rows of the largest row-to-row weight (``1/S``
    = uniform, 1 = one-hot); ``std_down_columns`` / ``std_along_rows``: mean std of ``A(P)`` down each
    column / along each row (a small first = vertical stripes, every row alike); ``distinct_rows`` of
    ``A(P)`` and of ``P`` (rounded to 0.01; fewer in ``A`` = rows merged into horizontal bands)."""
    p = as_map(p)
    a = row_attention(map4(p))[0, 0]
    return {"max_weight": float(row_weights(p).max(-1).values.mean()), "uniform_weight": 1.0 / p.shape[0],
            "std_down_columns": float(a.std(0).mean()), "std_along_rows": float(a.std(1).mean()),
            "distinct_rows_A": int(torch.unique(a.round(decimals=2), dim=0).shape[0]),
            "distinct_rows_P": int(torch.unique(p.round(decimals=2), dim=0).shape[0])}
