"""Gradient clipping and the non-finite guard of the training loop.

The guard looks at gradients (before clipping: clamping by value would turn ``inf`` into 0.5) and at
parameters after the optimizer step, never at the logged loss value: the ``kdas-official`` loss
reproduces the published code, whose logged total is NaN while its gradients are finite.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

CLIP_MODES = ("value", "norm", "none")


class NonFiniteError(RuntimeError):
    """Raised when a gradient or parameter stops being finite; the message says where."""


def clip_gradients(params: list[torch.Tensor], mode: str, value: float) -> None:
    """``value``: clamp every element to ``[-value, value]`` (published); ``norm``: global L2 norm."""
    if mode not in CLIP_MODES:
        raise ValueError(f"unknown clip_mode {mode!r}; valid: {', '.join(CLIP_MODES)}")
    if mode == "value":
        torch.nn.utils.clip_grad_value_(params, value)
    elif mode == "norm":
        torch.nn.utils.clip_grad_norm_(params, value)


def nonfinite_names(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names whose tensor has a NaN or inf: one fused ``_foreach_norm(inf)`` (the max-abs is finite
    iff every element is) and one host sync for the whole list; names only on failure."""
    named = [(n, t) for n, t in named if t is not None and t.is_floating_point() and t.numel()]  # others: finite
    if not named:
        return []
    norms = torch._foreach_norm([t.detach() for _, t in named], float("inf"))  # one 0-d max|x| per tensor
    dev = named[0][1].device
    flags = torch.stack([v.to(dev, torch.float32) for v in norms]).isfinite()  # (T,)
    if bool(flags.all()):
        return []
    return [n for (n, _), ok in zip(named, flags.tolist()) if not ok]


def nonfinite_components(components: dict[str, float]) -> list[str]:
    return [k for k, v in components.items() if not math.isfinite(v)]


def describe(kind: str, names: list[str], components: dict[str, float], where: str) -> str:
    comps = nonfinite_components(components)
    comp_txt = (f"non-finite loss component(s): {', '.join(comps)}" if comps
                else "all loss components were finite (the instability is in the backward pass)")
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"non-finite {kind} at {where}: {comp_txt}; tensors affected: {shown}"
