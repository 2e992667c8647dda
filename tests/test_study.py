"""kdas_lab.course.study (notebook 04's precomputed study) and the results explorer, with two test sets:
every statistic stays per test set."""
import numpy as np
import pandas as pd
import pytest

from kdas_lab.ablation import arm_summary
from kdas_lab.course import study
from kdas_lab.viz.widgets import results_explorer


def make_runs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for arm, shift in (("no_kd", 0.0), ("kdas", 0.05)):
        for seed in range(3):
            for dataset, level in (("val", 0.7), ("Kvasir", 0.8), ("CVC-ClinicDB", 0.6)):
                for metric in ("meanDic", "MAE"):
                    rows.append({"arm": arm, "seed": seed, "dataset": dataset, "metric": metric,
                                 "value": level + shift + 0.01 * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_load_study_reads_the_ablation_csvs(tmp_path):
    runs = make_runs()
    runs.to_csv(tmp_path / "demo_runs.csv", index=False)
    assert not study.study_available("demo", tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="RUN_GRID"):
        study.load_study("demo", tmp_path / "nope")
    computed = study.load_study("demo", tmp_path)  # no summary file: computed from the runs
    assert "computed here" in computed.source
    arm_summary(runs).to_csv(tmp_path / "demo_summary.csv", index=False)
    loaded = study.load_study("demo", tmp_path)
    pd.testing.assert_frame_equal(loaded.runs, runs)
    assert np.allclose(loaded.summary["mean"], computed.summary["mean"])
    assert study.test_set_names(runs) == ["Kvasir", "CVC-ClinicDB"]
    table = study.per_test_set(loaded.summary)
    for d in ("Kvasir", "CVC-ClinicDB"):
        expected = runs[(runs.arm == "kdas") & (runs.dataset == d) & (runs.metric == "meanDic")]["value"]
        assert table.loc["kdas", (d, "mean")] == pytest.approx(expected.mean())
        assert table.loc["kdas", (d, "std")] == pytest.approx(expected.std(ddof=1))
    pd.DataFrame({"arm": ["x"]}).to_csv(tmp_path / "bad_runs.csv", index=False)
    with pytest.raises(ValueError, match="lacks columns"):
        study.load_study("bad", tmp_path)


def test_results_explorer_never_pools_test_sets():
    runs = make_runs()
    wide = study.wide_runs(runs)
    assert set(wide["dataset"]) == {"Kvasir", "CVC-ClinicDB"}
    ex = results_explorer(wide, render=False)
    ex.controls["by"].value, ex.controls["metric"].value = "arm", "meanDic"
    for d in ("Kvasir", "CVC-ClinicDB"):
        ex.controls["dataset"].value = d
        sel = runs[(runs.arm == "kdas") & (runs.dataset == d) & (runs.metric == "meanDic")]["value"]
        assert ex.state["table"].loc["kdas", "mean"] == pytest.approx(sel.mean())
        assert ex.state["table"].loc["kdas", "std"] == pytest.approx(sel.std(ddof=1))  # seeds only
        assert ex.state["table"].loc["kdas", "n"] == 3
    ex.controls["by"].value = "dataset"  # grouping by test set shows every test set
    assert set(ex.state["table"].index) == {"Kvasir", "CVC-ClinicDB"}


def test_paired_seeds_pairs_by_seed_and_drops_unpaired():
    from kdas_lab.ablation.stats import paired_seeds

    runs = pd.DataFrame({"arm": ["no_kd", "no_kd", "pseudo", "pseudo", "pseudo", "pseudo"],
                         "seed": [0, 1, 1, 0, 2, 0], "dataset": ["K", "K", "K", "K", "K", "val"],
                         "metric": "meanDic", "value": [0.5, 0.6, 0.7, 0.9, 0.1, 0.3]})
    got = paired_seeds(runs, "pseudo")
    assert list(got.index) == [("K", 0), ("K", 1)]  # seed 2 has no baseline; val is not a test set
    assert got["diff"].round(6).tolist() == [0.4, 0.1]


def test_gains_and_conclusion_read_the_paired_columns():
    from kdas_lab.course.study import conclusion, gains

    runs = pd.DataFrame({"arm": ["no_kd"] * 3 + ["pseudo"] * 3, "seed": [0, 1, 2] * 2, "dataset": "Kvasir",
                         "metric": "meanDic", "value": [0.5, 0.6, 0.7, 0.6, 0.8, 0.8]})
    s = arm_summary(runs)
    assert gains(s).loc["pseudo", ("Kvasir", "diff")] == pytest.approx(0.4 / 3)
    line = conclusion(s, "pseudo", "2 % labels")
    assert line.startswith("2 % labels, pseudo vs no_kd (3 paired seeds): Kvasir +0.133 [")
