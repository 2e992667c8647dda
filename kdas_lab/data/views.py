"""Finite augmentation: the 8 dihedral views (flips and right-angle rotations) of a square image.

View ``v`` (0..7) rotates by ``(v % 4) * 90`` degrees counter-clockwise (``torch.rot90`` on the
last two dims), then, for ``v >= 4``, flips left-right. View 0 is the identity. Because the set is
finite, the teacher's output for (image, view) is a fixed function and can be cached
(:mod:`kdas_lab.train.teacher_cache`). Pure data movement: exact for any dtype.
"""
from __future__ import annotations

import torch

N_VIEWS = 8


def apply_view(t: torch.Tensor, view: int) -> torch.Tensor:
    """View ``view`` of ``(..., S, S)`` (image ``(3, S, S)``, mask ``(1, S, S)`` or a batch)."""
    if not 0 <= int(view) < N_VIEWS:
        raise ValueError(f"view must be in 0..{N_VIEWS - 1}, got {view}")
    if t.shape[-1] != t.shape[-2]:
        raise ValueError(f"dihedral views need square images, got {tuple(t.shape[-2:])}")
    out = torch.rot90(t, int(view) % 4, dims=(-2, -1))  # (..., S, S)
    if view >= 4:
        out = torch.flip(out, dims=(-1,))
    return out.contiguous()


def apply_views(batch: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """Sample ``i`` of ``batch (B, C, S, S)`` shown as view ``views[i]`` (``views``: int ``(B,)``)."""
    if views.shape != batch.shape[:1]:
        raise ValueError(f"views {tuple(views.shape)} does not match batch size {batch.shape[0]}")
    out = torch.empty_like(batch)  # (B, C, S, S)
    views_cpu = views.cpu()
    for v in torch.unique(views_cpu).tolist():
        idx = (views_cpu == v).nonzero()[:, 0].to(batch.device)  # (k,)
        out[idx] = apply_view(batch[idx], v)  # (k, C, S, S)
    return out


def draw_views(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` views drawn uniformly from ``generator`` (int64 ``(n,)``, on the CPU)."""
    return torch.randint(N_VIEWS, (n,), generator=generator)
