"""Summary of a timed training run (``scripts/gpu_check.sh``): images/s, epoch times, validation curve.

``python -m kdas_lab.bench.training_run RUN_DIR [--json OUT]`` reads ``RUN_DIR/history.csv`` (one
row per epoch, :mod:`kdas_lab.train.history`) and prints one JSON object: per-epoch ``time_s``,
``train_s``, ``images_per_s`` and ``val_meanDic``, the first epoch (warm-up: compilation, cache
building) apart from the median of the later ones, and the best validation mean Dice.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import pandas as pd

from kdas_lab.atomic import write_text_atomic


def _clean(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def run_summary(run_dir: str | Path) -> dict:
    """The summary of ``run_dir``'s ``history.csv`` (see the module docstring)."""
    hist = pd.read_csv(Path(run_dir) / "history.csv")
    if hist.empty:
        raise ValueError(f"{run_dir}/history.csv holds no epoch")
    epochs = [{"epoch": int(r.epoch), "time_s": float(r.time), "train_s": float(r.train_time),
               "images_per_s": float(r.images_per_s), "val_meanDic": _clean(float(r.val_meanDic))}
              for r in hist.itertuples()]
    steady = epochs[1:] or epochs  # the first epoch carries the warm-up
    val = hist["val_meanDic"].dropna()
    return {"run": str(run_dir), "epochs_done": len(epochs), "epochs": epochs,
            "first_epoch_s": epochs[0]["time_s"],
            "steady_epoch_s_median": statistics.median(e["time_s"] for e in steady),
            "steady_images_per_s_median": statistics.median(e["images_per_s"] for e in steady),
            "best_val_meanDic": float(val.max()) if len(val) else None,
            "best_epoch": int(hist.loc[val.idxmax(), "epoch"]) if len(val) else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kdas_lab.bench.training_run", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    a = p.parse_args(argv)
    summary = run_summary(a.run_dir)
    text = json.dumps(summary, indent=2)
    print(text)
    if a.json is not None:
        write_text_atomic(a.json, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
