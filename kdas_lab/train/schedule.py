"""Learning-rate schedules, applied per optimizer step.

``lr_at(step, total_steps, base_lr, schedule)`` is a pure function so tests can check the values by
hand; :func:`apply_lr` writes it into an optimizer's parameter groups. The state of the schedule is
just the global step, which the trainer saves in its checkpoints.

- ``constant`` (published KDAS / Polyp-PVT recipe): ``lr = base``.
- ``cosine``: ``lr = base * 0.5 * (1 + cos(pi * step / total))``.
- ``poly``: ``lr = base * (1 - step / total) ** 0.9``.

``warmup_steps = W > 0`` multiplies the first ``W`` steps by ``(step + 1) / W`` (linear warm-up, used by
the from-scratch ``laptop`` recipe); the decay then runs over the remaining ``total - W`` steps.
"""
from __future__ import annotations

import math

import torch

SCHEDULES = ("constant", "cosine", "poly")
POLY_POWER = 0.9


def lr_at(step: int, total_steps: int, base_lr: float, schedule: str = "constant",
          warmup_steps: int = 0) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr_schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    warmup_steps = min(warmup_steps, total_steps - 1)
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    progress = min(max(step - warmup_steps, 0), decay_steps) / decay_steps  # in [0, 1]
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * (1.0 - progress) ** POLY_POWER


def apply_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
