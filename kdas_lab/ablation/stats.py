"""Seed statistics for the ablation: mean, std and paired differences with a t confidence interval.

For one arm, dataset and metric we have one value per seed, ``x_1 .. x_n``.

- ``mean = sum(x) / n``, ``std`` = sample standard deviation (``ddof=1``).
- 95 % confidence interval of a mean (Student t, ``n - 1`` degrees of freedom):
  ``mean +- t_{0.975, n-1} * std / sqrt(n)``.
- Difference to the baseline (the no-KD student) is *paired by seed*: seed ``s`` of an arm and
  seed ``s`` of the baseline share the data split and initial weights where the trainer seeds
  them, so ``d_s = x_s(arm) - x_s(baseline)`` over the seeds both have, and the interval is the t
  interval of the mean of ``d``. Pairing removes the seed-to-seed variance both arms share.
- With ``n = 1`` a standard deviation and interval do not exist: they are NaN and the ``note``
  column says so (no crash). The interval assumes seeds are independent and the differences
  roughly normal; with 3 seeds it is wide, which is the honest answer.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

RUN_COLUMNS = ["arm", "seed", "dataset", "metric", "value"]
SUMMARY_COLUMNS = ["arm", "dataset", "metric", "n", "mean", "std", "ci_low", "ci_high",
                   "n_paired", "diff", "diff_ci_low", "diff_ci_high", "note"]


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t confidence interval of the mean; NaN bounds for n < 2."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(sps.t.ppf(0.5 + confidence / 2, df=x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def paired_difference(arm: pd.Series, baseline: pd.Series, confidence: float = 0.95) -> dict:
    """Mean and t interval of ``arm[s] - baseline[s]`` over the seeds ``s`` (index) both have."""
    common = arm.index.intersection(baseline.index)
    d = (arm.loc[common] - baseline.loc[common]).to_numpy(dtype=float)
    mean, lo, hi = t_interval(d, confidence)
    return {"n_paired": int(len(common)), "diff": mean, "diff_ci_low": lo, "diff_ci_high": hi}


def check_runs(runs: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise ValueError(f"runs table lacks columns {missing}; expected {RUN_COLUMNS}")
    dup = runs.duplicated(["arm", "seed", "dataset", "metric"])
    if dup.any():
        raise ValueError(f"runs table has {int(dup.sum())} duplicated (arm, seed, dataset, metric) rows")
    return runs


def arm_summary(runs: pd.DataFrame, baseline: str = "no_kd", confidence: float = 0.95) -> pd.DataFrame:
    """One row per (arm, dataset, metric): n seeds, mean, std, CI, paired diff to ``baseline``.

    Arm order follows first appearance in ``runs``. If ``baseline`` has no runs the difference
    columns are NaN and ``note`` says why.
    """
    check_runs(runs)
    arm_order = list(dict.fromkeys(runs["arm"]))
    rows = []
    for (arm, dataset, metric), g in runs.groupby(["arm", "dataset", "metric"], sort=False):
        values = g.set_index("seed")["value"].astype(float)
        mean, lo, hi = t_interval(values.to_numpy(), confidence)
        notes = []
        if len(values) < 2:
            notes.append("n=1 seed: no std or confidence interval")
        base = runs[(runs["arm"] == baseline) & (runs["dataset"] == dataset) & (runs["metric"] == metric)]
        if arm == baseline:
            diff = {"n_paired": len(values), "diff": 0.0, "diff_ci_low": math.nan, "diff_ci_high": math.nan}
        elif base.empty:
            diff = {"n_paired": 0, "diff": math.nan, "diff_ci_low": math.nan, "diff_ci_high": math.nan}
            notes.append(f"no baseline {baseline!r} runs")
        else:
            diff = paired_difference(values, base.set_index("seed")["value"].astype(float), confidence)
            if diff["n_paired"] < 2:
                notes.append("fewer than 2 paired seeds: no difference interval")
        rows.append({"arm": arm, "dataset": dataset, "metric": metric, "n": len(values), "mean": mean,
                     "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                     "ci_low": lo, "ci_high": hi, **diff, "note": "; ".join(notes)})
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out["arm"] = pd.Categorical(out["arm"], categories=arm_order, ordered=True)
    out = out.sort_values(["dataset", "metric", "arm"], kind="stable").reset_index(drop=True)
    out["arm"] = out["arm"].astype(str)
    return out


def paired_seeds(runs: pd.DataFrame, arm: str, baseline: str = "no_kd", metric: str = "meanDic") -> pd.DataFrame:
    """One row per (test set, seed) both arms ran: the arm's value, the baseline's and their difference
    (the numbers behind the summary's paired ``diff``)."""
    sel = runs[(runs["metric"] == metric) & (runs["dataset"] != "val")]
    a = sel[sel["arm"] == arm].set_index(["dataset", "seed"])["value"]
    b = sel[sel["arm"] == baseline].set_index(["dataset", "seed"])["value"]
    out = pd.DataFrame({arm: a, baseline: b}).dropna()
    out["diff"] = out[arm] - out[baseline]
    return out.sort_index()
