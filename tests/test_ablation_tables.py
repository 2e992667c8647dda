"""Run markers, runs.csv loading and atomic writes of the ablation directory."""
import pandas as pd
import pytest

from kdas_lab.ablation import load_runs
from kdas_lab.ablation.tables import collect_runs, read_marker, run_dir, write_marker
from kdas_lab.atomic import write_csv_atomic


def test_markers_round_trip_and_collect(tmp_path):
    recs = [{"dataset": "val", "metric": "meanDic", "value": 0.25},
            {"dataset": "Kvasir", "metric": "MAE", "value": None}]
    for arm, seed in (("kdas", 1), ("no_kd", 0)):
        write_marker(run_dir(tmp_path, arm, seed), arm, seed, recs, {"train_seconds": 1.5})
    runs = collect_runs(tmp_path)
    assert list(runs.columns) == ["arm", "seed", "dataset", "metric", "value"]
    assert runs[["arm", "seed"]].drop_duplicates().values.tolist() == [["kdas", 1], ["no_kd", 0]]
    assert runs["value"].isna().sum() == 2 and (runs["value"] == 0.25).sum() == 2
    assert collect_runs(tmp_path / "empty").empty


def test_bad_record_and_damaged_marker(tmp_path):
    with pytest.raises(ValueError, match="exactly dataset, metric, value"):
        write_marker(tmp_path, "a", 0, [{"dataset": "v", "value": 1.0}], {})
    (tmp_path / "metrics.json").write_text('{"arm": "a", "seed": 0, "rec')
    with pytest.raises(ValueError, match=r"metrics.json: unreadable run marker.*delete it"):
        read_marker(tmp_path / "metrics.json")


def test_load_runs_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="runs.csv does not exist"):
        load_runs(tmp_path)
    write_csv_atomic(pd.DataFrame({"arm": ["a"], "value": [1.0]}), tmp_path / "runs.csv")
    with pytest.raises(ValueError, match=r"runs.csv: runs table lacks columns"):
        load_runs(tmp_path)
    good = pd.DataFrame({"arm": ["a"], "seed": [0], "dataset": ["val"], "metric": ["meanDic"], "value": [0.5]})
    write_csv_atomic(good, tmp_path / "runs.csv")
    pd.testing.assert_frame_equal(load_runs(tmp_path / "runs.csv"), good)
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]  # no temporary left behind
