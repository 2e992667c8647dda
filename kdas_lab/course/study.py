"""Precomputed studies for notebook 04: small CSVs under ``docs/results/`` in the ablation's formats.

``<name>_runs.csv`` holds the tidy runs (``kdas_lab.ablation.stats.RUN_COLUMNS``: arm, seed, dataset,
metric, value) and ``<name>_summary.csv`` the per (arm, dataset, metric) statistics
(``SUMMARY_COLUMNS``); a missing summary is computed from the runs with ``ablation.arm_summary``.
Every statistic is per test set: nothing here pools test sets.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from kdas_lab.ablation.stats import SUMMARY_COLUMNS, arm_summary, check_runs

RESULTS_DIR = Path("docs/results")  # relative to the project root (notebook_setup's working directory)


class Study(NamedTuple):
    runs: pd.DataFrame  # arm, seed, dataset, metric, value
    summary: pd.DataFrame  # SUMMARY_COLUMNS
    source: str  # where it came from, for printing


def study_files(name: str, results_dir: str | os.PathLike = RESULTS_DIR) -> tuple[Path, Path]:
    d = Path(results_dir)
    return d / f"{name}_runs.csv", d / f"{name}_summary.csv"


def study_available(name: str, results_dir: str | os.PathLike = RESULTS_DIR) -> bool:
    return study_files(name, results_dir)[0].is_file()


def load_study(name: str = "laptop_study", results_dir: str | os.PathLike = RESULTS_DIR,
               baseline: str = "no_kd") -> Study:
    """The precomputed study ``name``; raises FileNotFoundError naming the missing runs file."""
    runs_path, summary_path = study_files(name, results_dir)
    if not runs_path.is_file():
        raise FileNotFoundError(f"{runs_path}: no precomputed study {name!r} (run the grid: RUN_GRID = True)")
    runs = check_runs(pd.read_csv(runs_path, dtype={"arm": str, "dataset": str, "metric": str}))
    if summary_path.is_file():
        summary = pd.read_csv(summary_path, dtype={"arm": str, "dataset": str, "metric": str})
        missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns and c != "note"]
        if missing:
            raise ValueError(f"{summary_path}: lacks columns {missing}; expected {SUMMARY_COLUMNS}")
        source = f"{runs_path} and {summary_path}"
    else:
        summary, source = arm_summary(runs, baseline=baseline), f"{runs_path} (summary computed here)"
    return Study(runs, summary, source)


def test_set_names(runs: pd.DataFrame) -> list[str]:
    """The test sets of a runs table (``val`` is the best validation Dice, not a test set)."""
    return [d for d in dict.fromkeys(runs["dataset"]) if d != "val"]


def per_test_set(summary: pd.DataFrame, metric: str = "meanDic",
                 columns: tuple[str, ...] = ("mean", "std")) -> pd.DataFrame:
    """One row per arm, one column pair per test set: the summary of ``metric``, never pooled."""
    s = summary[(summary["metric"] == metric) & (summary["dataset"] != "val")]
    wide = s.pivot_table(index="arm", columns="dataset", values=list(columns), sort=False)
    return wide.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)


def wide_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, seed, test set), one column per metric (for the results explorer)."""
    wide = (runs[runs["dataset"] != "val"]
            .pivot_table(index=["arm", "seed", "dataset"], columns="metric", values="value")
            .reset_index().rename_axis(columns=None))
    wide["seed"] = wide["seed"].astype(str)
    return wide


def gains(summary: pd.DataFrame, metric: str = "meanDic") -> pd.DataFrame:
    """Per arm and test set: the mean over seeds, the paired difference to the baseline and its interval."""
    return per_test_set(summary, metric, columns=("mean", "diff", "diff_ci_low", "diff_ci_high"))


def conclusion(summary: pd.DataFrame, arm: str, label: str, metric: str = "meanDic") -> str:
    """One sentence of ``arm``'s paired difference to the baseline on every test set, with its interval."""
    rows = summary[(summary["arm"] == arm) & (summary["metric"] == metric) & (summary["dataset"] != "val")]
    parts = [f"{r.dataset} {r.diff:+.3f} [{r.diff_ci_low:+.3f}, {r.diff_ci_high:+.3f}]" for r in rows.itertuples()]
    return f"{label}, {arm} vs no_kd ({int(rows['n_paired'].min())} paired seeds): " + "; ".join(parts)
