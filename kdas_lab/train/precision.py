"""Numeric format of a run: autocast dtype, the autocast context, memory format, fp32 loss inputs.

Pure functions of ``(cfg, device)``, shared by the trainer and the parts built for it
(:mod:`kdas_lab.train.parts`: the teacher cache runs the teacher under the same autocast).
"""
from __future__ import annotations

import contextlib

import torch

from kdas_lab.config import Config


def amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA by default, off on CPU unless ``cfg.amp`` is True; None = fp32."""
    enabled = cfg.amp if cfg.amp is not None else device.type == "cuda"
    if not enabled:
        return None
    return torch.float16 if cfg.amp_dtype == "float16" else torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype`` on ``device``'s type; a no-op context for None (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def memory_format(cfg: Config) -> torch.memory_format:
    """``channels_last`` when ``cfg.channels_last``, else contiguous."""
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


def float32_outputs(obj):
    """Cast the tensors of a (nested) NamedTuple of outputs to fp32 so losses run in full precision."""
    if isinstance(obj, torch.Tensor):
        return obj.float()
    if isinstance(obj, tuple):
        items = [float32_outputs(o) for o in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    return obj
