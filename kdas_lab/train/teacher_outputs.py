"""Where a distillation step gets the teacher's outputs: one call, ``teacher_outputs(images, keys, size)``.

- :class:`LiveTeacher`: the frozen teacher's forward (eager or compiled) under ``torch.no_grad``.
- :class:`CachedTeacher`: the maps of a :class:`~kdas_lab.train.teacher_cache.TeacherCache`, looked up
  by ``keys = (stems, views or None)`` at ``size``; no teacher forward.

Built outside the trainer (:func:`kdas_lab.train.parts.build_parts`, the bench) and passed to it; the
trainer calls it inside its autocast context and casts the result to fp32 for the loss.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from kdas_lab.train.teacher_cache import CachedTeacherOutput, TeacherCache


class TeacherOutputs(Protocol):
    def __call__(self, images: torch.Tensor, keys: tuple | None, size: int) -> Any:
        """The teacher's outputs for ``images`` ``(B, 3, size, size)`` (``keys``: ``(stems, views)``)."""


class LiveTeacher:
    """The teacher's ``forward`` (the module, or its compiled wrapper) under ``torch.no_grad``."""

    def __init__(self, forward: Callable[[torch.Tensor], Any]):
        self.forward = forward

    def __call__(self, images: torch.Tensor, keys: tuple | None = None, size: int | None = None) -> Any:
        with torch.no_grad():
            return self.forward(images)


class CachedTeacher:
    """The cached P1/P2 of the samples ``keys = (stems, views)`` at ``size``, moved to ``device``."""

    def __init__(self, cache: TeacherCache, device: torch.device):
        self.cache, self.device = cache, device

    def __call__(self, images: torch.Tensor, keys: tuple | None, size: int) -> CachedTeacherOutput:
        if keys is None:
            raise ValueError("a teacher cache needs the batch's keys (stems, views); train_step(..., keys=...)")
        return self.cache.lookup(*keys, size, self.device)  # p1, p2 (B, 1, s, s)
