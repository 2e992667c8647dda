"""Trainer on tiny synthetic data (CPU, 64 px, PVTv2-B0): exact resume, non-finite guard, CLI."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from kdas_lab.config import Config
from kdas_lab.losses import LossOutput, structure_loss
from kdas_lab.train import NonFiniteError, distill, train_model, train_teacher


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from kdas_lab.data import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", n_train=10, n_test=3, size=64, seed=0)


def tiny_cfg(root, **kw):
    base = dict(data_dir=Path(root), device="cpu", epochs=2, batch_size=2, max_steps_per_epoch=2,
                val_fraction=0.2, num_workers=0, teacher="polyp_pvt_b0", student="polyp_pvt_b0")
    return Config.from_profile("fast", **{**base, **kw})


def _no_time(df):
    return df.drop(columns=["time", "train_time", "images_per_s"], errors="ignore").reset_index(drop=True)


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run(data_root, tmp_path):
    cfg = tiny_cfg(data_root, multiscale=(0.5, 1.0), lr_schedule="cosine", augment=True, max_steps_per_epoch=1)
    full = train_model(cfg, out_dir=tmp_path / "full", show_progress=False)
    train_model(cfg, out_dir=tmp_path / "part", stop_after=1, show_progress=False)  # "interrupted"
    resumed = train_model(cfg, out_dir=tmp_path / "part", resume=True, show_progress=False)

    assert len(full.history) == 2 and full.history["step"].tolist() == [2, 4]  # 1 batch x 2 scales
    steps = pd.read_csv(tmp_path / "full" / "steps.csv")
    assert sorted(set(steps["size"])) == [32, 64]
    pd.testing.assert_frame_equal(_no_time(full.history), _no_time(resumed.history), atol=1e-6, rtol=0)
    pd.testing.assert_frame_equal(steps, pd.read_csv(tmp_path / "part" / "steps.csv"), atol=1e-6, rtol=0)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"] == 4
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(v, b["state_dict"][k], atol=1e-6, rtol=0)
    assert {"optimizer", "scaler", "scheduler", "rng", "history", "best"} <= set(a)
    assert set(full.history.columns) >= {"epoch", "step", "lr", "loss_total", "loss_seg", "val_meanDic", "time"}


def test_resume_without_checkpoint_is_a_clear_error(data_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="last.pt does not exist"):
        train_model(tiny_cfg(data_root), out_dir=tmp_path / "empty", resume=True, show_progress=False)


def test_val_fraction_zero_trains_on_all_and_keeps_the_last_epoch(data_root, tmp_path):
    """The published recipe's data use: every training image, no validation, the last epoch kept."""
    result = train_model(tiny_cfg(data_root, val_fraction=0.0, max_steps_per_epoch=None, batch_size=5),
                         out_dir=tmp_path / "all", show_progress=False)
    assert result.history["step"].tolist() == [2, 4]  # 10 images / batch 5, no image held out
    assert result.history["val_meanDic"].isna().all()
    best = torch.load(result.best_checkpoint, weights_only=True)
    assert best["epoch"] == 2


class NaNAfter(torch.nn.Module):
    """Segmentation loss plus a term whose gradient turns NaN from call ``after`` on."""

    needs_teacher = False

    def __init__(self, after: int):
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, student, teacher, mask):
        seg = structure_loss(student.p1, mask)
        shift = -1.0 if self.calls >= self.after else 1.0
        self.calls += 1
        bad = torch.sqrt(student.p2 - student.p2.detach() + shift).mean()  # sqrt(-1): NaN value and gradient
        return LossOutput(seg + bad, {"seg": seg.detach(), "bad": bad.detach()})


def test_nonfinite_gradient_stops_and_keeps_last_good_checkpoint(data_root, tmp_path):
    cfg = tiny_cfg(data_root, max_steps_per_epoch=1)
    with pytest.raises(NonFiniteError, match=r"epoch 2, step 1 .*component\(s\): total, bad;.*last good checkpoint"):
        train_model(cfg, out_dir=tmp_path, loss=NaNAfter(after=1), show_progress=False)
    kept = torch.load(tmp_path / "last.pt", weights_only=True)
    assert kept["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point())


class NaNValueFiniteGrad(torch.nn.Module):
    """Logged total is NaN (like kdas-official's dead attention term) but gradients are finite."""

    needs_teacher = False

    def forward(self, student, teacher, mask):
        seg = structure_loss(student.p1, mask) + structure_loss(student.p2, mask)
        at = torch.tensor(float("nan"))
        return LossOutput(seg + at, {"seg": seg.detach(), "at": at})


def test_nan_loss_value_with_finite_gradients_keeps_training(data_root, tmp_path):
    result = train_model(tiny_cfg(data_root, epochs=1), out_dir=tmp_path, loss=NaNValueFiniteGrad(),
                         show_progress=False)
    assert np.isnan(result.history["loss_total"].iloc[0]) and np.isfinite(result.history["loss_seg"].iloc[0])
    assert result.best_checkpoint.is_file()


@pytest.mark.slow
def test_kdas_official_distillation_runs_despite_nan_total(data_root, tmp_path, monkeypatch):
    from kdas_lab.losses import kdas as kdas_module
    from kdas_lab.models import create_model

    monkeypatch.setattr(kdas_module, "_official_warned", False)  # warns once per process
    teacher = create_model("polyp_pvt_b0")
    with pytest.warns(kdas_module.KDASOfficialWarning):
        result = distill(tiny_cfg(data_root, epochs=1, max_steps_per_epoch=1, method="kdas-official"), teacher,
                         tmp_path, show_progress=False)
    assert {"loss_seg", "loss_at", "loss_sgm"} <= set(result.history.columns)
    assert not any(p.requires_grad for p in teacher.parameters())  # frozen by the trainer


def test_distillation_without_teacher_is_refused(data_root, tmp_path):
    with pytest.raises(ValueError, match="needs the teacher|pass --teacher"):
        train_model(tiny_cfg(data_root, method="kdas"), out_dir=tmp_path, show_progress=False)


@pytest.mark.slow
def test_cli_train_distill_predict(data_root, tmp_path, capsys):
    from kdas_lab.cli import main

    common = ["--profile", "fast", "--data", str(data_root), "--device", "cpu", "--batch-size", "2",
              "--set", "max_steps_per_epoch=1", "--set", "val_fraction=0.2", "--quiet"]
    assert main(["train-teacher", "--model", "polyp_pvt_b0", "--out", str(tmp_path / "t"), "--epochs", "1",
                 "--lr", "2e-4", "--set", 'teacher_recipe={"epochs": 3, "lr": 0.5}', *common]) == 0
    history = pd.read_csv(tmp_path / "t" / "history.csv")  # the flags win over the teacher's recipe
    assert history["epoch"].tolist() == [1] and history["lr"].tolist() == [pytest.approx(2e-4)]
    assert main(["distill", "--teacher", str(tmp_path / "t" / "best.pt"), "--method", "kdas",
                 "--set", "teacher=polyp_pvt_b0", "--out", str(tmp_path / "s"), "--epochs", "1", *common]) == 0
    assert (tmp_path / "s" / "best.pt").is_file()

    odd = tmp_path / "odd.png"  # any size: 50 x 70
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(odd)
    sample = next((data_root / "TestDataset" / "Synthetic" / "images").iterdir())
    assert main(["predict", "--checkpoint", str(tmp_path / "s" / "best.pt"), str(odd), str(sample),
                 "--out", str(tmp_path / "pred"), "--size", "64", "--device", "cpu"]) == 0
    mask = np.asarray(Image.open(tmp_path / "pred" / "odd_mask.png"))
    overlay = np.asarray(Image.open(tmp_path / "pred" / "odd_overlay.png"))
    assert mask.shape == (50, 70) and mask.dtype == np.uint8 and overlay.shape == (50, 70, 3)
    assert (tmp_path / "pred" / f"{sample.stem}_mask.png").is_file()
    assert main(["predict", "--checkpoint", str(tmp_path / "s" / "best.pt"), str(tmp_path / "nope.png"),
                 "--out", str(tmp_path / "pred")]) == 2
    assert "nope.png" in capsys.readouterr().err


def test_paper_profile_without_pretrained_backbone_warns(data_root, tmp_path):
    from kdas_lab.train import PaperRecipeWarning

    cfg = Config.from_profile("paper", data_dir=Path(data_root), device="cpu", epochs=1, batch_size=2,
                              max_steps_per_epoch=1, val_fraction=0.0, num_workers=0, image_size=64,
                              multiscale=(1.0,), student="polyp_pvt_b0")
    with pytest.warns(PaperRecipeWarning, match="random weights"):
        train_model(cfg, out_dir=tmp_path, show_progress=False)



def test_teacher_trains_with_its_own_recipe(data_root, tmp_path):
    from kdas_lab.models.checkpoint import read_checkpoint

    cfg = tiny_cfg(data_root, teacher="polyp_pvt_b0", epochs=3, lr=1.0, threads=1,
                   teacher_recipe={"epochs": 1, "lr": 3e-4, "drop_path_rate": 0.0})
    result = train_teacher(cfg, tmp_path, show_progress=False)
    assert result.history["lr"].tolist() == [pytest.approx(3e-4)]  # fast profile: constant schedule
    saved = read_checkpoint(result.last_checkpoint, meta_only=True)["config"]  # the run records what ran
    assert (saved["epochs"], saved["lr"], saved["drop_path_rate"]) == (1, 3e-4, 0.0)
    assert saved["teacher_recipe"] == dict.fromkeys(saved["teacher_recipe"])  # applied, so empty
    assert saved["threads"] is None  # a teacher trains on every core unless its recipe says otherwise


@pytest.mark.parametrize("recipe,needle", [
    ({"nope": 1}, "^Config: teacher_recipe: unknown fields \\['nope'\\]"),
    ({"lr": -1.0}, "^Config: teacher_recipe: lr must be > 0, got -1.0$"),
    ({"epochs": 3.5}, "^Config: teacher_recipe: epochs must be a whole number or null, got 3.5$"),
    ({"epoch_sizes": [512]}, "^Config: teacher_recipe: epoch_sizes holds 512, larger than image_size 256"),
])
def test_teacher_recipe_is_checked_up_front(recipe, needle):
    with pytest.raises(ValueError, match=needle):
        Config(teacher_recipe=recipe)


def test_epoch_sizes_train_early_epochs_smaller(data_root, tmp_path):
    cfg = tiny_cfg(data_root, epochs=3, max_steps_per_epoch=1, epoch_sizes=[32, 32])
    train_model(cfg, out_dir=tmp_path, show_progress=False)
    steps = pd.read_csv(tmp_path / "steps.csv")
    assert steps.groupby("epoch")["size"].first().tolist() == [32, 32, 64]  # validation stays at 64


@pytest.mark.parametrize("rate", [0.0, 0.1])
def test_drop_path_rate_reaches_the_backbone(data_root, tmp_path, monkeypatch, rate):
    from timm.layers import DropPath

    import kdas_lab.train as train

    built, real = [], train.create_model
    monkeypatch.setattr(train, "create_model", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    train_model(tiny_cfg(data_root, epochs=1, max_steps_per_epoch=1, drop_path_rate=rate), out_dir=tmp_path,
                show_progress=False)
    probs = [m.drop_prob for m in built[0].backbone.modules() if isinstance(m, DropPath)]
    assert max(probs, default=0.0) == pytest.approx(rate)  # timm: linear in depth, the last block at ``rate``
