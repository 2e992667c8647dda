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
