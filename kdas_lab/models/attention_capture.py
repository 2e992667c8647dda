"""Capture PVTv2 self-attention maps with removable hooks (for visualisation and analysis).

PVTv2 uses *spatial-reduction attention*: queries come from every token of the stage's
``H x W`` grid, keys/values from a map reduced by a strided conv (``sr_ratio`` 8/4/2/1 for stages
1-4), so one query's attention is a ``h_kv x w_kv`` image. timm's fused attention
(``F.scaled_dot_product_attention``) never materialises the matrix, so while capturing we set
``fused_attn = False`` on the hooked modules (restored on exit) and hook the ``attn_drop`` module,
whose input is exactly ``softmax(q k^T * scale)``. ``model.forward`` itself is not changed.

Usage::

    with AttentionCapture(model, stages=(0, 3)) as cap:
        model(x)
    m = cap.maps["stages.0.blocks.1"]     # AttentionMap(attn (B, heads, Nq, Nkv), q_size, kv_size)
    img = cap.query_map("stages.0.blocks.1", qy=10, qx=12)   # (B, h_kv, w_kv), mean over heads
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch import nn


class AttentionMap(NamedTuple):
    attn: torch.Tensor  # (B, heads, N_query, N_kv), rows sum to 1
    q_size: tuple[int, int]  # query grid (H, W): N_query = H * W
    kv_size: tuple[int, int]  # key/value grid (h, w): N_kv = h * w


def _backbone_of(model: nn.Module) -> nn.Module:
    return model.backbone if hasattr(model, "backbone") else model


def find_attention_modules(model: nn.Module, stages: Iterable[int] | None = None,
                           blocks: Iterable[int] | None = None) -> dict[str, nn.Module]:
    """``{"stages.i.blocks.j": timm Attention}`` of a PolypPVT (or a bare timm PVTv2)."""
    backbone = _backbone_of(model)
    if not hasattr(backbone, "stages"):
        raise TypeError(f"{type(model).__name__} has no PVTv2 backbone with 'stages'")
    n_stages = len(backbone.stages)
    stages = list(range(n_stages)) if stages is None else list(stages)
    bad = [s for s in stages if not 0 <= s < n_stages]
    if bad:
        raise ValueError(f"stages {bad} do not exist; the backbone has stages 0..{n_stages - 1}")
    found = {}
    for s in stages:
        stage_blocks = backbone.stages[s].blocks
        idx = list(range(len(stage_blocks))) if blocks is None else [b for b in blocks if b < len(stage_blocks)]
        for b in idx:
            found[f"stages.{s}.blocks.{b}"] = stage_blocks[b].attn
    return found


def kv_grid(attn_module: nn.Module, q_size: tuple[int, int]) -> tuple[int, int]:
    """Key/value grid of a PVTv2 attention for a query grid ``q_size``."""
    h, w = q_size
    if getattr(attn_module, "pool", None) is not None:  # linear variant: adaptive pool to 7x7
        return (7, 7)
    sr = attn_module.sr
    if sr is None:
        return (h, w)
    k, s = sr.kernel_size, sr.stride
    return ((h + 2 * sr.padding[0] - k[0]) // s[0] + 1, (w + 2 * sr.padding[1] - k[1]) // s[1] + 1)


class AttentionCapture:
    """Context manager recording the softmax attention of chosen PVTv2 stages / blocks.

    ``maps`` holds the latest forward's :class:`AttentionMap` per module name. ``detach=True``
    (default) stores detached tensors; ``to_cpu=True`` moves them to the CPU.
    """

    def __init__(self, model: nn.Module, stages: Iterable[int] | None = None,
                 blocks: Iterable[int] | None = None, detach: bool = True, to_cpu: bool = False) -> None:
        self.modules = find_attention_modules(model, stages, blocks)
        self.detach, self.to_cpu = detach, to_cpu
        self.maps: dict[str, AttentionMap] = {}
        self._handles: list = []
        self._fused: dict[str, bool] = {}
        self._q_size: dict[str, tuple[int, int]] = {}

    # hooks -------------------------------------------------------------------------------
    def _pre_hook(self, name: str):
        def hook(module, args):
            self._q_size[name] = tuple(int(v) for v in args[1])  # forward(x, feat_size)
        return hook

    def _drop_hook(self, name: str, module: nn.Module):
        def hook(_drop, args, _out):
            a = args[0]  # (B, heads, Nq, Nkv) softmax attention
            if self.detach:
                a = a.detach()
            if self.to_cpu:
                a = a.cpu()
            q_size = self._q_size[name]
            kv = kv_grid(module, q_size)
            if a.shape[-1] != kv[0] * kv[1] or a.shape[-2] != q_size[0] * q_size[1]:
                raise RuntimeError(f"{name}: attention {tuple(a.shape)} does not match grids {q_size} / {kv}")
            self.maps[name] = AttentionMap(a, q_size, kv)
        return hook

    def __enter__(self) -> AttentionCapture:
        try:
            for name, m in self.modules.items():
                self._fused[name] = m.fused_attn
                m.fused_attn = False
                self._handles.append(m.register_forward_pre_hook(self._pre_hook(name)))
                self._handles.append(m.attn_drop.register_forward_hook(self._drop_hook(name, m)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook and restore ``fused_attn`` (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for name, fused in self._fused.items():
            self.modules[name].fused_attn = fused
        self._fused.clear()

    # views -------------------------------------------------------------------------------
    def query_map(self, name: str, qy: int, qx: int, head: int | None = None) -> torch.Tensor:
        """Attention of the query at grid cell ``(qy, qx)`` as an image ``(B, h_kv, w_kv)``
        (one head, or the mean over heads when ``head`` is None)."""
        m = self.maps[name]
        h, w = m.q_size
        if not (0 <= qy < h and 0 <= qx < w):
            raise IndexError(f"query ({qy}, {qx}) outside the {h}x{w} grid of {name}")
        row = m.attn[:, :, qy * w + qx]  # (B, heads, Nkv)
        row = row.mean(dim=1) if head is None else row[:, head]  # (B, Nkv)
        return row.reshape(row.shape[0], *m.kv_size)  # (B, h_kv, w_kv)


class attention_fusion:
    """Context manager switching timm's fused attention on/off for every PVTv2 attention module
    of ``model`` (restored on exit). ``enabled=False`` materialises the attention matrix, which
    ``torch.utils.flop_counter`` needs to count the attention matmuls (the fused CPU kernel is not
    counted): with it off, MACs at 352x352 are 1.90 G (B0) and 10.84 G (B2) as published.
    """

    def __init__(self, model: nn.Module, enabled: bool = False) -> None:
        self.modules = find_attention_modules(model)
        self.enabled = enabled
        self._saved: dict[str, bool] = {}

    def __enter__(self) -> attention_fusion:
        for name, m in self.modules.items():
            self._saved[name] = m.fused_attn
            m.fused_attn = self.enabled
        return self

    def __exit__(self, *exc) -> None:
        for name, fused in self._saved.items():
            self.modules[name].fused_attn = fused
        self._saved.clear()


def stage_attention(model: nn.Module, x: torch.Tensor) -> list[tuple[torch.Tensor, tuple[int, int]]]:
    """Self-attention of the last block of each PVT stage for input ``x (B, 3, S, S)``:
    ``[(attn (B, heads, N, Nk), (H, W)), ...]`` for stages 1-4, captured with removable hooks."""
    was_training = model.training
    model.eval()
    try:
        with AttentionCapture(model, to_cpu=True) as cap, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    last: dict[int, str] = {}
    for name in cap.maps:  # "stages.i.blocks.j", in forward order
        last[int(name.split(".")[1])] = name
    return [(cap.maps[last[s]].attn, cap.maps[last[s]].q_size) for s in sorted(last)]
