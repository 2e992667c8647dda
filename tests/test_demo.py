"""``kdas-lab demo`` end to end at toy size: three models, table, CSV and figures."""
from pathlib import Path

import pandas as pd
import pytest

from kdas_lab.config import Config


def test_demo_config_defaults_and_flags_win():
    import argparse

    from kdas_lab.cli.demo import demo_config_from_args, register
    from kdas_lab.config import DEMO_OVERRIDES

    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    parser = sub.choices["demo"]
    cfg = demo_config_from_args(parser.parse_args([]))
    assert cfg.profile == "fast" and cfg.image_size == DEMO_OVERRIDES["image_size"]
    assert cfg.epochs == DEMO_OVERRIDES["epochs"] and cfg.data_dir == DEMO_OVERRIDES["data_dir"]
    cfg = demo_config_from_args(parser.parse_args(["--epochs", "1", "--image-size", "64", "--set", "seed=3"]))
    assert (cfg.epochs, cfg.image_size, cfg.seed) == (1, 64, 3)
    assert cfg.synthetic_train == DEMO_OVERRIDES["synthetic_train"]
    cfg = demo_config_from_args(parser.parse_args(["--profile", "course"]))
    assert cfg.profile == "course" and cfg.image_size == Config.from_profile("course").image_size


@pytest.mark.slow
def test_run_demo_tiny(tmp_path):
    from kdas_lab.course.demo import run_demo

    cfg = Config.from_profile("fast", data_dir=tmp_path / "syn", device="cpu", epochs=1, batch_size=4,
                              max_steps_per_epoch=1, synthetic_train=12, synthetic_test=2, val_fraction=0.25,
                              labelled_fraction=0.25, labelled_per_batch=2,
                              teacher="polyp_pvt_b0")  # a B0 "teacher" keeps the test fast
    table = run_demo(cfg, tmp_path / "demo", show_progress=False, efficiency_size=64)
    assert table["model"].tolist() == ["teacher", "student_none", "student_kdas", "student_pseudo"]
    assert {"parameters", "MACs", "meanDice", "meanIoU", "latency_ms", "vs_student_none", "why"} <= set(table.columns)
    assert table["parameters"].tolist() == [3_650_740] * 4  # exact B0 count from the spec
    assert table.set_index("model").at["student_none", "vs_student_none"] == 0.0
    assert table["meanDice"].between(0, 1).all()
    saved = pd.read_csv(tmp_path / "demo" / "results.csv")
    assert saved["model"].tolist() == table["model"].tolist()
    for name in ("results.png", "curves.png", "overlays.png", "results_per_dataset.csv", "teacher/best.pt",
                 "student_kdas/history.csv", "student_none/steps.csv", "student_pseudo/steps.csv"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert not [p for p in Path(tmp_path / "demo").iterdir() if ".tmp" in p.name]


def test_differences_to_the_plain_student_by_hand():
    from kdas_lab.course.demo import differences

    table = pd.DataFrame({"model": ["teacher", "student_kdas", "student_none"], "meanDice": [0.8, 0.55, 0.5]})
    assert differences(table) == "meanDice vs the plain student: teacher +0.3000, student_kdas +0.0500"


def test_run_demo_refuses_missing_real_data(tmp_path):
    from kdas_lab.course.demo import run_demo
    from kdas_lab.data.io import DataError

    cfg = Config.from_profile("course", data_dir=tmp_path / "absent")
    with pytest.raises(DataError, match="absent has no TrainDataset/images"):
        run_demo(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "absent").exists()
