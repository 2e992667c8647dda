"""Seed statistics of the ablation on hand-computed numbers."""
import math

import matplotlib
import pandas as pd
import pytest

from kdas_lab.ablation import arm_summary, plot_arms
from kdas_lab.ablation.stats import paired_difference, t_interval

matplotlib.use("Agg")


@pytest.mark.parametrize("values, expected", [
    # mean 3, s = sqrt(2.5), se = s/sqrt(5) = 0.70711, t(0.975, 4) = 2.776445 -> half 1.963243
    ([1, 2, 3, 4, 5], (3.0, 1.036757, 4.963243)),
    # mean 3, s = sqrt(2), se = 1, t(0.975, 1) = 12.706205
    ([2, 4], (3.0, -9.706205, 15.706205)),
    # zero spread -> zero-width interval
    ([0.5, 0.5, 0.5], (0.5, 0.5, 0.5)),
])
def test_t_interval_known_samples(values, expected):
    assert t_interval(values) == pytest.approx(expected, abs=1e-6)


def test_t_interval_single_value_is_nan_not_crash():
    mean, lo, hi = t_interval([0.7])
    assert mean == 0.7 and math.isnan(lo) and math.isnan(hi)


def test_paired_difference_matches_seeds_by_index():
    arm = pd.Series({0: 0.5, 1: 0.7, 2: 0.6, 3: 0.9})  # seed 3 has no baseline partner: ignored
    base = pd.Series({2: 0.6, 0: 0.4, 1: 0.5})
    # d = [0.1, 0.2, 0.0]: mean 0.1, s 0.1, se 0.057735, t(0.975, 2) = 4.302653 -> half 0.248414
    out = paired_difference(arm, base)
    assert out["n_paired"] == 3
    assert (out["diff"], out["diff_ci_low"], out["diff_ci_high"]) == pytest.approx(
        (0.1, -0.148414, 0.348414), abs=1e-6)


def _runs(rows):
    return pd.DataFrame(rows, columns=["arm", "seed", "dataset", "metric", "value"])


def test_arm_summary_table_and_notes():
    runs = _runs([
        ("no_kd", 0, "Kvasir", "meanDic", 0.4), ("no_kd", 1, "Kvasir", "meanDic", 0.5),
        ("no_kd", 2, "Kvasir", "meanDic", 0.6),
        ("kdas", 0, "Kvasir", "meanDic", 0.5), ("kdas", 1, "Kvasir", "meanDic", 0.7),
        ("kdas", 2, "Kvasir", "meanDic", 0.6),
        ("kd", 0, "Kvasir", "meanDic", 0.45),
    ])
    s = arm_summary(runs).set_index("arm")
    assert list(s.index) == ["no_kd", "kdas", "kd"]  # order of first appearance
    assert s.loc["kdas", "mean"] == pytest.approx(0.6)
    assert s.loc["kdas", "std"] == pytest.approx(0.1)
    assert s.loc["kdas", ["diff", "diff_ci_low", "diff_ci_high"]].tolist() == pytest.approx(
        [0.1, -0.148414, 0.348414], abs=1e-6)
    assert s.loc["no_kd", "diff"] == 0.0
    assert s.loc["kd", "n"] == 1 and math.isnan(s.loc["kd", "std"]) and math.isnan(s.loc["kd", "diff_ci_low"])
    assert s.loc["kd", "diff"] == pytest.approx(0.05)
    assert "n=1 seed" in s.loc["kd", "note"] and "fewer than 2 paired" in s.loc["kd", "note"]


def test_arm_summary_without_baseline_gives_nan_and_note():
    s = arm_summary(_runs([("kdas", 0, "val", "meanDic", 0.5), ("kdas", 1, "val", "meanDic", 0.7)]))
    assert math.isnan(s.loc[0, "diff"]) and "no baseline 'no_kd'" in s.loc[0, "note"]


def test_arm_summary_rejects_duplicates_and_missing_columns():
    with pytest.raises(ValueError, match="duplicated"):
        arm_summary(_runs([("kdas", 0, "val", "meanDic", 0.5), ("kdas", 0, "val", "meanDic", 0.6)]))
    with pytest.raises(ValueError, match="lacks columns"):
        arm_summary(pd.DataFrame({"arm": ["a"], "value": [1.0]}))


def test_plot_arms_draws_both_panels():
    runs = _runs([(a, s, ds, "meanDic", v) for a, off in (("no_kd", 0.0), ("kdas", 0.1))
                  for s in (0, 1) for ds, v in (("Kvasir", 0.5 + off + s / 10), ("val", 0.4 + off))])
    fig = plot_arms(arm_summary(runs), "meanDic")
    ax_mean, ax_diff = fig.axes
    assert len(ax_mean.patches) == 4  # 2 arms x 2 datasets
    assert [t.get_text() for t in ax_diff.get_xticklabels()] == ["kdas"]
    with pytest.raises(ValueError, match="not in summary"):
        plot_arms(arm_summary(runs), "maxEm")


def test_markdown_summary_by_hand():
    import pandas as pd

    from kdas_lab.ablation.stats import arm_summary
    from kdas_lab.ablation.tables import markdown_summary

    runs = pd.DataFrame([{"arm": a, "seed": s, "dataset": "Kvasir", "metric": "meanDic", "value": v}
                         for a, vals in (("no_kd", (0.5, 0.6)), ("kdas", (0.6, 0.8))) for s, v in enumerate(vals)])
    teacher = pd.DataFrame([{"dataset": "Kvasir", "metric": "meanDic", "value": 0.9}])
    text = markdown_summary(arm_summary(runs), teacher=teacher, digits=2)
    lines = text.splitlines()
    assert lines[0] == "| arm | n | Kvasir |" and lines[2] == "| teacher (B2) | 1 | 0.90 |"
    assert lines[3] == "| no_kd | 2 | 0.55 ± 0.07 |"
    # differences 0.1 and 0.2: mean 0.15, sd 0.0707, t(0.975, 1) = 12.706 -> half-width 0.635
    assert lines[4] == "| kdas | 2 | 0.70 ± 0.14; Δ +0.15 [-0.49, 0.79] |"
