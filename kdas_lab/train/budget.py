"""Time budget of a training run (``Config.time_budget_s``): stop before an epoch that would overrun it."""
from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from kdas_lab.train.distributed import DistInfo, broadcast_flag


def out_of_time(budget_s: float | None, fit_start: float, epoch_time: float, epoch: int, last_epoch: int,
                info: DistInfo, device: torch.device) -> bool:
    """True when another epoch as long as the last one would end after ``budget_s`` seconds of
    ``fit`` (every rank stops together); one log line when it stops. Resume continues the run."""
    if budget_s is None or epoch >= last_epoch:
        return False
    elapsed = time.perf_counter() - fit_start
    stop = broadcast_flag(elapsed + epoch_time > budget_s, info, device)
    if stop and info.is_main:
        tqdm.write(f"time_budget_s={budget_s:g}: stopping after epoch {epoch} ({elapsed:.1f} s used, "
                   f"an epoch takes {epoch_time:.1f} s); --resume continues the run")
    return stop
