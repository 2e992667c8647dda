"""Figures for an ablation summary (matplotlib)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def plot_arms(summary: pd.DataFrame, metric: str = "meanDic", datasets: list[str] | None = None,
              baseline: str = "no_kd") -> Figure:
    """Two panels for ``metric``: mean +- std over seeds per arm, and the paired difference to
    ``baseline`` with its 95 % t interval (missing intervals, e.g. one seed, are drawn as points).

    Bars are grouped by arm, one colour per dataset. Returns the figure (not shown).
    """
    if metric not in set(summary["metric"]):
        raise ValueError(f"metric {metric!r} not in summary; available: {sorted(set(summary['metric']))}")
    s = summary[summary["metric"] == metric]
    all_sets = list(dict.fromkeys(s["dataset"]))
    datasets = datasets or all_sets
    unknown = set(datasets) - set(all_sets)
    if unknown:
        raise ValueError(f"datasets {sorted(unknown)} not in summary; available: {all_sets}")
    arms = list(dict.fromkeys(s["arm"]))
    others = [a for a in arms if a != baseline]
    fig = Figure(figsize=(max(6.0, 1.1 * len(arms) * 2), 3.6), layout="constrained")
    ax_mean, ax_diff = fig.subplots(1, 2, width_ratios=[len(arms), max(1, len(others))])
    width = 0.8 / len(datasets)
    for i, ds in enumerate(datasets):
        d = s[s["dataset"] == ds].set_index("arm")
        x = np.arange(len(arms)) + (i - (len(datasets) - 1) / 2) * width
        ax_mean.bar(x, d.reindex(arms)["mean"], width, yerr=d.reindex(arms)["std"].fillna(0.0),
                    capsize=2, label=ds)
        if others:
            dd = d.reindex(others)
            xo = np.arange(len(others)) + (i - (len(datasets) - 1) / 2) * width
            err = np.vstack([dd["diff"] - dd["diff_ci_low"], dd["diff_ci_high"] - dd["diff"]])
            ax_diff.errorbar(xo, dd["diff"], yerr=np.nan_to_num(err), fmt="o", capsize=3, label=ds)
    ax_mean.set_xticks(range(len(arms)), arms, rotation=45, ha="right")
    ax_mean.set_ylabel(f"{metric} (mean ± std over seeds)")
    ax_mean.legend(fontsize="small")
    ax_diff.axhline(0.0, color="grey", lw=0.8)
    ax_diff.set_xticks(range(len(others)), others, rotation=45, ha="right")
    ax_diff.set_ylabel(f"Δ{metric} vs {baseline} (95 % CI)")
    if not others:
        ax_diff.set_title(f"no arm besides {baseline}", fontsize="small")
    return fig
