"""Trainer and distillation step on CUDA (bf16 autocast, channels_last); skipped without a GPU."""
from pathlib import Path

import pytest
import torch

from kdas_lab.config import Config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from kdas_lab.data import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", n_train=10, n_test=2, size=64, seed=0)


def test_cuda_bf16_channels_last_training_and_resume(data_root, tmp_path):
    from kdas_lab.models import create_model
    from kdas_lab.train import distill, train_model
    from kdas_lab.train.loop import amp_dtype

    cfg = Config.from_profile("fast", data_dir=Path(data_root), device="cuda", epochs=2, batch_size=2,
                              max_steps_per_epoch=2, val_fraction=0.2, channels_last=True,
                              multiscale=(0.5, 1.0), student="polyp_pvt_b0", compile=False)
    assert amp_dtype(cfg, torch.device("cuda")) == torch.bfloat16
    train_model(cfg, out_dir=tmp_path / "t", stop_after=1, show_progress=False)
    result = train_model(cfg, out_dir=tmp_path / "t", resume=True, show_progress=False)
    assert result.history["epoch"].tolist() == [1, 2] and result.history["loss_total"].notna().all()
    assert next(result.model.parameters()).device.type == "cuda"
    teacher = create_model("polyp_pvt_b0").cuda()
    kd = distill(cfg.replace(epochs=1, method="kdas"), teacher, tmp_path / "s", show_progress=False)
    assert kd.history["loss_at"].notna().all()
    ckpt = torch.load(kd.best_checkpoint, weights_only=True, map_location="cpu")
    assert all(v.device.type == "cpu" for v in ckpt["state_dict"].values())


@pytest.mark.parametrize("variant", ["kdas_lab_distill", "published_distill"])
def test_cuda_distill_step_variants(variant):
    from kdas_lab.bench.distill_step import measure_variant

    r = measure_variant(variant, size=64, batch=2, device="cuda", steps=2, warmup=1)
    assert r["images_per_s"] > 0 and r["step_mem_mb"] > 0
    assert r["amp_bf16"] is (variant == "kdas_lab_distill")


def test_cuda_compiled_and_eager_losses_agree_and_device_data_is_on(data_root, tmp_path, capsys):
    """Config.compile (inductor, the CUDA default) against eager, B0 at 64 px, bf16, two steps."""
    import torch._inductor.config as inductor_config

    from kdas_lab.losses import create_loss
    from kdas_lab.models import create_model
    from kdas_lab.train.builders import build_loaders
    from kdas_lab.train.distributed import DistInfo
    from kdas_lab.train.loop import Trainer
    from kdas_lab.train.parts import build_parts

    def two_losses(compiled):
        cfg = Config.from_profile("fast", data_dir=Path(data_root), device="cuda", epochs=1, batch_size=2,
                                  val_fraction=0.0, multiscale=(1.0,), student="polyp_pvt_b0", augment=False,
                                  compile=compiled)
        torch.manual_seed(0)
        cuda = torch.device("cuda")
        loss, loaders = create_loss("none", cfg), build_loaders(cfg, DistInfo(), cuda)
        parts = build_parts(cfg, teacher=None, loss=loss, loaders=loaders, device=cuda, show_progress=False)
        trainer = Trainer(cfg, out_dir=tmp_path / str(compiled), student=create_model("polyp_pvt_b0"),
                          loss=loss, device=cuda, loaders=loaders, show_progress=False, **parts._asdict())
        assert trainer.device_data is not None  # the CUDA default, data this small always fits
        batch = trainer.device_data.batch([0, 1])
        losses = []
        for _ in range(2):
            torch.manual_seed(1)
            losses.append(trainer.train_step(batch["image"], batch["mask"], 64, 1)["total"])
        assert trainer.compile_guard.failed is None
        return losses

    before, inductor_config.fallback_random = inductor_config.fallback_random, True  # drop-path RNG as eager
    try:
        compiled, eager = two_losses(True), two_losses(False)
    finally:
        inductor_config.fallback_random = before
    assert compiled == pytest.approx(eager, rel=2e-2)  # bf16 autocast: kernels differ in rounding
    assert "continuing in eager mode" not in capsys.readouterr().out
