"""Training history: one row per optimizer step and one per epoch, as pandas DataFrames.

Per-epoch columns: ``epoch, step, lr, loss_<component>... (epoch means), val_meanDic, time``.
Per-step columns: ``epoch, step, size, lr, loss_<component>...``. Both are written atomically
as CSV (temporary file + ``os.replace``), and travel in checkpoints as plain dicts of lists.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from kdas_lab.atomic import write_csv_atomic


class EpochMeter:
    """Running means of the loss components over one epoch (NaN propagates, on purpose)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def update(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] += float(v)
            self.counts[k] += 1

    def means(self) -> dict[str, float]:
        return {k: (self.sums[k] / self.counts[k] if self.counts[k] else math.nan) for k in self.sums}


class History:
    """Accumulates step rows and epoch rows; ``to_state``/``from_state`` for checkpoints."""

    def __init__(self, epochs: list[dict[str, Any]] | None = None, steps: list[dict[str, Any]] | None = None):
        self.epoch_rows: list[dict[str, Any]] = list(epochs or [])
        self.step_rows: list[dict[str, Any]] = list(steps or [])

    def add_step(self, row: dict[str, Any]) -> None:
        self.step_rows.append(dict(row))

    def add_epoch(self, row: dict[str, Any]) -> None:
        self.epoch_rows.append(dict(row))

    @property
    def epochs(self) -> pd.DataFrame:
        return pd.DataFrame(self.epoch_rows)

    @property
    def steps(self) -> pd.DataFrame:
        return pd.DataFrame(self.step_rows)

    def save(self, out_dir: str | os.PathLike) -> tuple[Path, Path]:
        out_dir = Path(out_dir)
        return (write_csv_atomic(self.epochs, out_dir / "history.csv"),
                write_csv_atomic(self.steps, out_dir / "steps.csv"))

    def to_state(self) -> dict[str, list[dict[str, Any]]]:
        return {"epochs": [dict(r) for r in self.epoch_rows], "steps": [dict(r) for r in self.step_rows]}

    @classmethod
    def from_state(cls, state: dict[str, list[dict[str, Any]]]) -> History:
        return cls(state.get("epochs"), state.get("steps"))
