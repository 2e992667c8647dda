"""End to end: `kdas-lab ablate --preset fast` on tiny synthetic data; resumability; teacher reuse."""
import argparse

import pandas as pd
import pytest
import torch

from kdas_lab.ablation import load_runs, run_ablation
from kdas_lab.ablation.arms import preset_grid
from kdas_lab.cli import ablate as cli_ablate
from kdas_lab.config import Config

pytestmark = pytest.mark.slow

TINY = ["--device", "cpu", "--epochs", "1", "--batch-size", "2",
        "--set", "max_steps_per_epoch=2", "--set", "synthetic_train=6", "--set", "synthetic_test=2",
        "--set", "teacher=polyp_pvt_b0",  # a B0 teacher keeps this pipeline test cheap
        "--no-progress"]


def _args(argv):
    p = argparse.ArgumentParser()
    cli_ablate.register(p.add_subparsers())
    return p.parse_args(["ablate", *argv])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """64 px tensors are too small for two threads: one is ~5x faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ablation_dir(tmp_path_factory, one_thread):
    """One CLI run of the fast preset (2 arms x 2 seeds) shared by the tests below."""
    root = tmp_path_factory.mktemp("abl")
    args = _args(["--preset", "fast", "--profile", "fast", "--data", str(root / "syn"),
                  "--out", str(root / "out"), *TINY])
    assert args.func(args) == 0
    return root


def test_cli_fast_preset_writes_both_tables(ablation_dir, capsys):
    out = ablation_dir / "out"
    runs = load_runs(out)
    assert set(runs["arm"]) == {"no_kd", "kdas"} and set(runs["seed"]) == {0, 1}
    assert {"val", "Synthetic"} <= set(runs["dataset"])
    assert {"meanDic", "meanIoU", "MAE"} <= set(runs.loc[runs["dataset"] == "Synthetic", "metric"])
    assert runs["value"].notna().all()
    assert (runs.groupby(["arm", "dataset", "metric"]).size() == 2).all()  # one row per seed
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary["arm"] == "kdas") & (summary["dataset"] == "Synthetic")
                  & (summary["metric"] == "meanDic")].iloc[0]
    assert row["n"] == 2 and row["n_paired"] == 2 and row["diff_ci_low"] <= row["diff"] <= row["diff_ci_high"]
    assert (out / "teacher" / "best.pt").is_file() and (out / "grid.json").is_file()
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_resume_skips_finished_runs_and_reuses_teacher(ablation_dir, monkeypatch):
    out = ablation_dir / "out"
    before = (out / "runs.csv").read_text()
    cfg = Config.from_profile("fast", data_dir=ablation_dir / "syn", device="cpu", epochs=1, batch_size=2,
                              max_steps_per_epoch=2, synthetic_train=6, synthetic_test=2,
                              teacher="polyp_pvt_b0")  # the settings of the CLI run (resume compares them)
    grid = preset_grid("fast")
    res = run_ablation(cfg, grid, out, progress=False)
    assert (len(res.trained), len(res.skipped)) == (0, 4)
    assert (out / "runs.csv").read_text() == before

    import kdas_lab.train

    def no_teacher_training(*a, **k):
        raise AssertionError("the teacher must be reused, not retrained")

    monkeypatch.setattr(kdas_lab.train, "train_teacher", no_teacher_training)
    (out / "runs" / "kdas" / "seed1" / "metrics.json").unlink()
    res = run_ablation(cfg, grid, out, progress=False)
    assert res.trained == [("kdas", 1)] and len(res.skipped) == 3
    assert len(load_runs(out)) == len(pd.read_csv(pd.io.common.StringIO(before)))


def test_unknown_arm_is_a_clear_error(ablation_dir):
    args = _args(["--preset", "fast", "--arms", "no_kd,kdas_typo", "--out", str(ablation_dir / "x"), *TINY])
    with pytest.raises(ValueError, match="unknown arm 'kdas_typo'; valid arms: no_kd, kdas"):
        args.func(args)
    assert not (ablation_dir / "x").exists()


@pytest.mark.parametrize("preset", ["laptop", "laptop-scarce"])
def test_laptop_presets_run_on_tiny_settings(preset, tmp_path):
    """The CPU study presets end to end at 64 px: dihedral views, the teacher-output cache, and
    (laptop-scarce) 10 % of the masks; the teacher trains on every label for its recipe's epochs."""
    from kdas_lab.data import build_synthetic

    data = build_synthetic(tmp_path / "syn", n_train=10, n_test=2, size=64, seed=0)
    args = _args(["--preset", preset, "--arms", "no_kd,kdas", "--seeds", "1", "--data", str(data),
                  "--out", str(tmp_path / "out"), "--image-size", "64", "--set", 'teacher_recipe={"epochs": 2}',
                  # the profile's teacher recipe grows its images up to 128 px: replaced by this one
                  "--set", "val_fraction=0.2", *TINY])
    assert args.func(args) == 0
    runs = load_runs(tmp_path / "out")
    assert set(runs["arm"]) == {"no_kd", "kdas"} and runs["value"].notna().all()
    assert list((data / ".kdas_cache" / "teacher").glob("*.npy"))  # the KDAS arm read cached teacher maps
    scores = pd.read_csv(tmp_path / "out" / "teacher.csv")  # the teacher, evaluated like the students
    assert set(scores["dataset"]) == {"Synthetic"} and scores["value"].notna().all()
    teacher = pd.read_csv(tmp_path / "out" / "teacher" / "history.csv")
    assert len(teacher) == 2
    import json

    run_cfg = json.loads((tmp_path / "out" / "runs" / "kdas" / "seed0" / "metrics.json").read_text())["config"]
    assert run_cfg["augment_mode"] == "dihedral" and run_cfg["teacher_cache"] is True
    assert run_cfg["labelled_fraction"] == (0.1 if preset == "laptop-scarce" else 1.0)
