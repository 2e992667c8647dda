"""The parts a :class:`~kdas_lab.train.loop.Trainer` is assembled from, built in the open.

:func:`build_parts` decides, from the config and the run's modules, three things the trainer only uses:

- ``teacher_outputs`` (:mod:`kdas_lab.train.teacher_outputs`): None when no loss term reads the teacher;
  else the teacher-output cache (``cfg.teacher_cache``, when exact) or the live teacher under no_grad
  (compiled when the compile wrapper is active);
- ``device_data`` (:mod:`kdas_lab.train.device_data`): the training set held on the device, or None
  (batches come from the DataLoader);
- ``compile_guard`` (:mod:`kdas_lab.train.compiled`): the compile wrapper (inactive = eager).

Each decision logs its one line, in this order: teacher cache, device data, compile.
:func:`~kdas_lab.train.train_model` calls it and passes the parts to the trainer; the bench builds its
own (a hand-filled cache) and times the same :meth:`~kdas_lab.train.loop.Trainer.train_step`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from kdas_lab.config import Config
from kdas_lab.train import compiled, device_data, precision, teacher_cache
from kdas_lab.train.builders import Loaders, is_distilling
from kdas_lab.train.device_data import DeviceData
from kdas_lab.train.distributed import DistInfo
from kdas_lab.train.teacher_outputs import CachedTeacher, LiveTeacher, TeacherOutputs


class Parts(NamedTuple):
    """Keyword arguments of :class:`~kdas_lab.train.loop.Trainer` (``Trainer(..., **parts._asdict())``)."""

    teacher_outputs: TeacherOutputs | None
    device_data: DeviceData | None
    compile_guard: compiled.CompileGuard


def build_parts(cfg: Config, *, teacher: torch.nn.Module | None, loss: torch.nn.Module, loaders: Loaders,
                device: torch.device, info: DistInfo = DistInfo(), show_progress: bool = True) -> Parts:
    """The parts of a run of ``cfg`` training with ``loss`` (and ``teacher``) on ``loaders.train``."""
    progress = show_progress and info.is_main
    distilling = is_distilling(teacher, loss)
    dataset = loaders.train.dataset
    cache = None
    if cfg.teacher_cache:
        cache = teacher_cache.for_run(cfg, teacher=teacher, loss=loss, distilling=distilling, dataset=dataset,
                                      device=device, amp_dtype=precision.amp_dtype(cfg, device),
                                      memory_format=precision.memory_format(cfg), distributed=info.enabled,
                                      is_main=info.is_main, progress=progress)
    on_device = device_data.for_run(cfg, dataset, device, is_main=info.is_main, progress=progress)
    live = distilling and cache is None
    guard = compiled.for_run(cfg, device, compile_teacher=live, is_main=info.is_main)
    outputs: TeacherOutputs | None = None
    if cache is not None:
        outputs = CachedTeacher(cache, device)
    elif live:
        outputs = LiveTeacher(guard.wrap(teacher))
    return Parts(outputs, on_device, guard)
