"""``Config.device_data``: device-resident batches equal the DataLoader's (samples, views, generator), resume exact."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from kdas_lab.config import Config
from kdas_lab.losses import create_loss
from kdas_lab.models import create_model
from kdas_lab.train import device_data as dd
from kdas_lab.train.builders import build_loaders
from kdas_lab.train.distributed import DistInfo
from kdas_lab.train.loop import Trainer
from kdas_lab.train.parts import build_parts


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, one_thread):
    from kdas_lab.data import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", n_train=7, n_test=2, size=64, seed=0)


def tiny_cfg(root, **kw):
    base = dict(data_dir=Path(root), device="cpu", epochs=2, batch_size=2, max_steps_per_epoch=None,
                val_fraction=0.2, num_workers=0, student="polyp_pvt_b0", augment=True, augment_mode="dihedral")
    return Config.from_profile("fast", **{**base, **kw})


def cpu_trainer(cfg, tmp_path):
    cpu = torch.device("cpu")
    loss, loaders = create_loss("none", cfg), build_loaders(cfg, DistInfo(), cpu)
    parts = build_parts(cfg, teacher=None, loss=loss, loaders=loaders, device=cpu, show_progress=False)
    return Trainer(cfg, out_dir=tmp_path, student=create_model("polyp_pvt_b0"), loss=loss,
                   device=cpu, loaders=loaders, show_progress=False, **parts._asdict())


def recorded_batches(cfg, tmp_path, epochs=2):
    """Every (images, masks, stems, views) the trainer would train on, over ``epochs`` epochs."""
    trainer = cpu_trainer(cfg, tmp_path)
    seen = []
    trainer.train_step = lambda images, masks, size, epoch, labelled=None, keys=None: seen.append(
        (images.clone(), masks.clone())) or {"total": 0.0}
    for epoch in range(1, epochs + 1):
        trainer.train_epoch(epoch)
    return trainer, seen


@pytest.mark.parametrize("cache", [True, False])
def test_device_batches_equal_the_dataloader_batches(data_root, tmp_path, cache):
    on, a = recorded_batches(tiny_cfg(data_root, device_data=True, cache=cache), tmp_path / "on")
    off, b = recorded_batches(tiny_cfg(data_root, device_data=False, cache=cache), tmp_path / "off")
    assert on.device_data is not None and off.device_data is None
    assert on.device_data.masks.dtype == (torch.uint8 if cache else torch.float32)
    assert len(a) == len(b) == 2 * 3  # 6 training images (one held out), batch 2, 2 epochs
    for (ia, ma), (ib, mb) in zip(a, b):
        assert torch.equal(ia, ib) and torch.equal(ma, mb)
    assert torch.equal(on.generator.get_state(), off.generator.get_state())  # the same draws, in order


def test_device_data_decision_and_log(data_root, tmp_path, capsys):
    cfg = tiny_cfg(data_root)
    trainer = cpu_trainer(cfg, tmp_path)
    assert trainer.device_data is None and "device_data" not in capsys.readouterr().out  # CPU default: silent
    ds = trainer.train_loader.dataset
    assert dd.decide(cfg.replace(device_data=True), ds, torch.device("cpu"))[0] is True
    assert dd.decide(cfg.replace(device_data=False), ds, torch.device("cpu")) == (False, "device_data=false")
    random_cfg = tiny_cfg(data_root, device_data=True, augment_mode="random")
    t2 = cpu_trainer(random_cfg, tmp_path)
    assert t2.device_data is None and "device_data: off (augment_mode='random'" in capsys.readouterr().out
    assert dd.estimate_bytes(ds) == len(ds) * 64 * 64 * (3 + 4)  # no cache: float32 masks


def test_device_data_run_resumes_exactly_and_matches_the_dataloader_run(data_root, tmp_path):
    from kdas_lab.train import train_model

    cfg = tiny_cfg(data_root, max_steps_per_epoch=2, cache=True)
    train_model(cfg.replace(device_data=True), out_dir=tmp_path / "full", show_progress=False)
    train_model(cfg.replace(device_data=True), out_dir=tmp_path / "part", stop_after=1, show_progress=False)
    train_model(cfg.replace(device_data=True), out_dir=tmp_path / "part", resume=True, show_progress=False)
    train_model(cfg.replace(device_data=False), out_dir=tmp_path / "loader", show_progress=False)
    full, part, loader = (pd.read_csv(tmp_path / r / "steps.csv") for r in ("full", "part", "loader"))
    pd.testing.assert_frame_equal(full, part, atol=0, rtol=0)
    pd.testing.assert_frame_equal(full, loader, atol=0, rtol=0)
    assert len(full) == 4
