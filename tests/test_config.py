from pathlib import Path

import pytest
import torch

from kdas_lab.config import PROFILES, Config
from kdas_lab.runtime import resolve_device


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_build(profile):
    cfg = Config.from_profile(profile)
    assert cfg.profile == profile
    assert all(s % 32 == 0 for s in cfg.train_sizes())


def test_paper_profile_is_the_published_recipe():
    cfg = Config.from_profile("paper")
    assert (cfg.image_size, cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay) == (352, 99, 16, 1e-4, 1e-4)
    assert cfg.train_sizes() == [256, 352, 448]
    assert (cfg.lr_schedule, cfg.clip_mode, cfg.clip_value, cfg.augment) == ("constant", "value", 0.5, False)
    assert (cfg.temperature, cfg.alpha, cfg.legacy_bce) == (2.0, 0.3, True)
    # the documented deviations and choices (config docstring, README, docs/paper_profile.md)
    assert cfg.amp is False  # fp32 like the published code; bf16 only with amp=True
    assert cfg.val_fraction == 0.1 and cfg.pretrained_backbone is None
    assert Config.from_profile("paper", amp=True).amp is True


def test_unknown_profile_lists_valid():
    with pytest.raises(ValueError, match="fast, laptop, course, paper"):
        Config.from_profile("huge")


def test_from_env(monkeypatch):
    monkeypatch.setenv("KDAS_FAST", "1")
    monkeypatch.setenv("KDAS_DATA_DIR", "/tmp/polyps")
    monkeypatch.setenv("KDAS_DEVICE", "cpu")
    cfg = Config.from_env()
    assert (cfg.profile, cfg.data_dir, cfg.device) == ("fast", Path("/tmp/polyps"), "cpu")
    monkeypatch.setenv("KDAS_FAST", "0")
    assert Config.from_env().profile == "course"
    assert Config.from_env(epochs=3).epochs == 3


def test_dict_round_trip_and_replace():
    cfg = Config.from_profile("fast", seed=7)
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(alpha=0.5).alpha == 0.5
    with pytest.raises(ValueError, match="unknown config fields"):
        cfg.replace(alhpa=0.5)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_epoch_sizes_resize_the_first_epochs_only():
    cfg = Config.from_profile("fast", image_size=128, multiscale=(0.75, 1.0), epoch_sizes=[64, 96])
    assert [cfg.train_sizes(e) for e in (1, 2, 3)] == [[64, 64], [64, 96], [96, 128]]
    assert cfg.train_sizes() == [96, 128]  # no epoch: the full size
    assert cfg.replace(epochs=3).size_passes() == {64: 3, 96: 2, 128: 1}
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="epoch_sizes must be a list of positive multiples of 32"):
        cfg.replace(epoch_sizes=[100])


def test_each_field_carries_its_rules():
    import dataclasses

    fields = {f.name: f.metadata for f in dataclasses.fields(Config)}
    assert fields["lr_schedule"]["choices"] == ("constant", "cosine", "poly")
    assert fields["alpha"]["rule"].text == "in [0, 1]" and fields["alpha"]["rule"].ok(1.0)
    assert not fields["image_size"]["rule"].ok(100)
    with pytest.raises(ValueError, match=r"^Config: clip_mode must be one of value, norm, none, got 'abs'$"):
        Config(clip_mode="abs")


def test_runtime_fields_are_declared_with_the_field():
    from kdas_lab.config import RUNTIME_FIELDS

    assert set(RUNTIME_FIELDS) == {"data_dir", "out_dir", "device", "num_workers", "threads", "time_budget_s",
                                   "teacher_cache", "teacher_cache_dir", "compile", "compile_backend", "compile_mode",
                                   "device_data", "device_data_max_fraction"}


def test_teacher_recipe_applies_to_the_teacher_only():
    cfg = Config.from_profile("laptop")
    teacher = cfg.for_teacher()
    assert (cfg.epochs, cfg.lr, cfg.threads) == (4, 1e-3, 1)
    assert (teacher.epochs, teacher.lr, teacher.batch_size, teacher.threads) == (22, 7e-4, 16, None)
    assert teacher.epoch_sizes == (64,) * 5 + (96,) * 5 and teacher.method == "none"
    assert cfg.with_teacher(lr=1e-4).for_teacher().lr == 1e-4
    assert Config.from_profile("fast").for_teacher().epochs == Config.from_profile("fast").epochs  # None: as students


def test_config_changes_reads_records_of_other_versions():
    from kdas_lab.config import config_changes

    now = Config.from_profile("fast").to_dict()
    old = {k: v for k, v in now.items() if k != "compile_backend"}  # a field added since: its default
    old["teacher_set"] = {"lr": 7e-4}  # a field since removed: not compared
    assert config_changes(old, now) == {}
    assert config_changes({**old, "lr": 1.0}, now) == {"lr": (1.0, now["lr"])}
    assert config_changes({**old, "lr": 1.0}, now, ignore=("lr",)) == {}
