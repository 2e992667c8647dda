"""The real training step, timed: a :class:`~kdas_lab.train.loop.Trainer` without a dataset.

:func:`step_trainer` assembles the trainer a run would use (same precision, optimizer, clipping,
non-finite checks and step logging) around given modules and parts, with a stand-in loader of
``n_train`` samples (it only sets the step counts of the learning-rate schedule; batches are passed to
:meth:`~kdas_lab.train.loop.Trainer.train_step` directly). :func:`time_step` times that step (it is given
``trainer.train_step`` and the device, not the trainer).
Used by the bench (:mod:`kdas_lab.bench.distill_step`) and open to time estimates (a course's
``estimate_seconds``) so they time the step training runs.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from kdas_lab.config import Config
from kdas_lab.runtime import synchronize
from kdas_lab.train.builders import Loaders
from kdas_lab.train.compiled import CompileGuard
from kdas_lab.train.loop import Trainer
from kdas_lab.train.teacher_outputs import TeacherOutputs


def step_trainer(cfg: Config, *, student: torch.nn.Module, loss: torch.nn.Module, device: torch.device,
                 teacher: torch.nn.Module | None = None, teacher_outputs: TeacherOutputs | None = None,
                 compile_guard: CompileGuard | None = None, n_train: int | None = None,
                 out_dir=None) -> Trainer:
    """A trainer for :meth:`~Trainer.train_step` calls on caller-made batches (``out_dir`` is never
    written unless ``fit`` is called; default: a temp path)."""
    n = n_train or cfg.batch_size
    loader = DataLoader(range(n), batch_size=cfg.batch_size)  # read for its length only
    loaders = Loaders(loader, None, torch.Generator(), None, [])
    out_dir = out_dir or Path(tempfile.gettempdir()) / "kdas_step_timing_unused"
    return Trainer(cfg, out_dir=out_dir, student=student, loss=loss, device=device, loaders=loaders,
                   teacher=teacher, show_progress=False,
                   teacher_outputs=teacher_outputs, compile_guard=compile_guard)


def time_step(train_step: Callable[..., Any], device: torch.device, images: torch.Tensor, masks: torch.Tensor,
              size: int, *, keys: tuple | None = None, warmup: int = 1, steps: int = 1) -> float:
    """Median seconds of ``steps`` calls of ``train_step`` (a trainer's :meth:`~Trainer.train_step`) at
    ``size`` on ``device`` after ``warmup`` untimed ones."""
    return statistics.median(step_times(train_step, device, images, masks, size, keys=keys, warmup=warmup,
                                        steps=steps))


def step_times(train_step: Callable[..., Any], device: torch.device, images: torch.Tensor, masks: torch.Tensor,
               size: int, *, keys: tuple | None = None, warmup: int = 1, steps: int = 1) -> list[float]:
    """Seconds of each of ``steps`` calls of ``train_step`` after ``warmup`` untimed ones (see :func:`time_step`)."""
    times = []
    for i in range(warmup + steps):
        synchronize(device)
        t0 = time.perf_counter()
        train_step(images, masks, size, epoch=1, keys=keys)
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times
