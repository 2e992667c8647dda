"""Ablation runner: arms x seeds, resumable, with seed statistics and paired confidence intervals.

- :mod:`~kdas_lab.ablation.arms`: arm definitions, presets and the YAML grid format;
- :mod:`~kdas_lab.ablation.runner`: ``run_ablation`` trains and evaluates every (arm, seed);
- :mod:`~kdas_lab.ablation.stats`: mean, std, paired difference to no-KD with a t interval;
- :mod:`~kdas_lab.ablation.tables`: ``runs.csv`` / ``summary.csv`` / ``metrics.json`` files;
- :mod:`~kdas_lab.ablation.plots`: ``plot_arms``.
"""
from kdas_lab.ablation.arms import ARMS, PRESETS, Arm, Grid, get_arm, load_grid, parse_grid, preset_grid
from kdas_lab.ablation.plots import plot_arms
from kdas_lab.ablation.runner import AblationResult, run_ablation
from kdas_lab.ablation.stats import arm_summary, paired_difference, t_interval
from kdas_lab.ablation.tables import load_runs

__all__ = ["ARMS", "PRESETS", "Arm", "Grid", "get_arm", "load_grid", "parse_grid", "preset_grid",
           "plot_arms", "AblationResult", "run_ablation", "paired_difference", "arm_summary",
           "t_interval", "load_runs"]
