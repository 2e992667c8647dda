"""Label-scarce training (``labelled_fraction``), linear warm-up, teacher epochs and laptop presets."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from kdas_lab.ablation.arms import preset_grid
from kdas_lab.config import Config
from kdas_lab.data.split import labelled_subset
from kdas_lab.losses import KDASLoss, seg_both_heads
from kdas_lab.models.polyp_pvt import PolypOutput
from kdas_lab.train import distill, train_model, train_teacher
from kdas_lab.train.schedule import lr_at


@pytest.mark.parametrize("step, expected", [(0, 0.25e-3), (3, 1e-3), (4, 1e-3), (9, 0.5e-3), (14, 0.0)])
def test_warmup_then_cosine_by_hand(step, expected):
    # 4 warm-up steps (lr * (step + 1) / 4), then cosine over the remaining 10: half-way at step 9
    assert lr_at(step, 14, 1e-3, "cosine", warmup_steps=4) == pytest.approx(expected, abs=1e-12)


def test_labelled_subset_is_seeded_sized_and_a_subset():
    stems = [f"s{i:02d}" for i in range(20)]
    a, b = labelled_subset(stems, 0.1, seed=3), labelled_subset(stems, 0.1, seed=3)
    assert a == b and len(a) == 2 and set(a) <= set(stems)
    assert labelled_subset(stems, 0.01, seed=0) != [] and labelled_subset(stems, 1.0) == stems
    assert labelled_subset(stems, 0.5, seed=0) != labelled_subset(stems, 0.5, seed=1)
    with pytest.raises(ValueError, match="labelled_fraction"):
        labelled_subset(stems, 0.0)


def _out(p1, p2):
    return PolypOutput(p1, p2, None)


def test_seg_reads_only_labelled_masks():
    torch.manual_seed(0)
    p1, p2, mask = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8), (torch.rand(3, 1, 8, 8) > 0.5).float()
    keep = torch.tensor([True, False, True])
    expected = seg_both_heads(_out(p1[keep], p2[keep]), mask[keep])
    torch.testing.assert_close(seg_both_heads(_out(p1, p2), mask, labelled=keep), expected)
    garbage = mask.clone()
    garbage[1] = 1.0 - garbage[1]  # an unlabelled sample's mask must not matter
    torch.testing.assert_close(seg_both_heads(_out(p1, p2), garbage, labelled=keep), expected)
    p1.requires_grad_(True)
    none = seg_both_heads(_out(p1, p2), mask, labelled=torch.zeros(3, dtype=torch.bool))
    none.backward()
    assert float(none.detach()) == 0.0 and float(p1.grad.abs().sum()) == 0.0


def test_kdas_distils_unlabelled_samples():
    torch.manual_seed(0)
    s = _out(torch.randn(2, 1, 8, 8, requires_grad=True), torch.randn(2, 1, 8, 8))
    t = _out(torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8))
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    out = KDASLoss()(s, t, mask, labelled=torch.zeros(2, dtype=torch.bool))
    out.total.backward()
    assert float(out.components["seg"]) == 0.0 and float(s.p1.grad.abs().sum()) > 0.0


@pytest.mark.parametrize("field, value", [("labelled_fraction", 0.0), ("labelled_fraction", 1.5),
                                          ("warmup_epochs", -1.0), ("threads", 0), ("lr_schedule", "step"),
                                          ("teacher_recipe", {"epochs": 0})])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match="Config: "):
        Config.from_profile("fast", **{field: value})


def test_laptop_presets():
    grid = preset_grid("laptop")
    assert [a.name for a in grid.arms] == ["no_kd", "kdas", "kdas_at_only", "kdas_sgm_only", "kdas_official", "kd"]
    assert grid.profile == "laptop" and len(grid.seeds) >= 3
    scarce = preset_grid("laptop-scarce")
    assert scarce.overrides["labelled_fraction"] == 0.1 and {a.name for a in scarce.arms} == {"no_kd", "kdas", "kd"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from kdas_lab.data import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", n_train=10, n_test=3, size=64, seed=0)


def _cfg(root, **kw):
    base = dict(data_dir=Path(root), device="cpu", epochs=1, batch_size=2, val_fraction=0.2, num_workers=0,
                teacher="polyp_pvt_b0", student="polyp_pvt_b0", max_steps_per_epoch=None)
    return Config.from_profile("fast", **{**base, **kw})


def test_label_scarce_runs_train_on_what_they_may_see(data_root, tmp_path, one_thread):
    cfg = _cfg(data_root, labelled_fraction=0.25, teacher_recipe={"epochs": 2})  # 8 training stems -> 2 labelled
    teacher = train_teacher(cfg, tmp_path / "t", show_progress=False)
    assert len(teacher.history) == 2  # the teacher's epochs, on every label
    no_kd = train_model(cfg, out_dir=tmp_path / "none", show_progress=False)
    steps = pd.read_csv(tmp_path / "none" / "steps.csv")
    assert len(steps) == 4  # the 2 labelled images drawn to the full 8-image epoch: 4 batches of 2
    kd = distill(cfg.replace(method="kdas"), teacher.best_checkpoint, tmp_path / "kdas", show_progress=False)
    segs = pd.read_csv(tmp_path / "kdas" / "steps.csv")["loss_seg"]
    assert len(segs) == 4 and (segs == 0.0).any() and (segs > 0.0).any()  # unlabelled batches: KD only
    assert kd.history["val_meanDic"].notna().all() and no_kd.history["val_meanDic"].notna().all()


@pytest.mark.parametrize("drop_last, batches", [(False, 3), (True, 2)])
def test_drop_last_and_the_kdas_official_arm(data_root, drop_last, batches):
    from kdas_lab.ablation.arms import get_arm
    from kdas_lab.train.builders import build_loaders
    from kdas_lab.train.distributed import DistInfo

    cfg = _cfg(data_root, batch_size=3, drop_last=drop_last)  # 8 training stems
    train_loader = build_loaders(cfg, DistInfo(), torch.device("cpu"))[0]
    assert len(train_loader) == batches
    assert get_arm("kdas_official").config(cfg, 0).drop_last is True  # its SGM breaks on a batch of 1
