"""``Config.compile``: torch.compile of the trainer's networks agrees with eager; failures fall back to eager."""
import os
from pathlib import Path

import pytest
import torch
from torch._dynamo import register_backend

from kdas_lab.config import Config
from kdas_lab.losses import create_loss
from kdas_lab.models import create_model
from kdas_lab.models.polyp_pvt import PolypOutput
from kdas_lab.train import compiled
from kdas_lab.train.builders import build_loaders
from kdas_lab.train.distributed import DistInfo
from kdas_lab.train.loop import Trainer
from kdas_lab.train.parts import build_parts


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, one_thread):
    from kdas_lab.data import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", n_train=4, n_test=2, size=64, seed=0)


def tiny_cfg(root, **kw):
    base = dict(data_dir=Path(root), device="cpu", epochs=1, batch_size=2, max_steps_per_epoch=2, val_fraction=0.0,
                num_workers=0, student="polyp_pvt_b0", augment=False)
    return Config.from_profile("fast", **{**base, **kw})


class TinyNet(torch.nn.Module):
    """A two-head segmentation net small enough for inductor's C++ build to take seconds."""

    name = "tiny"

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.GELU())
        self.h1, self.h2 = torch.nn.Conv2d(8, 1, 1), torch.nn.Conv2d(8, 1, 1)

    def forward(self, x):
        f = self.body(x)  # (B, 8, S, S)
        return PolypOutput(self.h1(f), self.h2(f), None)  # p1, p2 (B, 1, S, S)


def two_steps(cfg, tmp_path, make_student):
    """Losses of two training steps (fixed batch, fixed RNG) and the first step's gradients."""
    torch.manual_seed(0)
    student = make_student()
    cpu = torch.device("cpu")
    loss, loaders = create_loss("none", cfg), build_loaders(cfg, DistInfo(), cpu)
    parts = build_parts(cfg, teacher=None, loss=loss, loaders=loaders, device=cpu, show_progress=False)
    trainer = Trainer(cfg, out_dir=tmp_path, student=student, loss=loss, device=cpu, loaders=loaders,
                      show_progress=False, **parts._asdict())
    batch = next(iter(trainer.train_loader))
    losses, grads = [], {}
    for i in range(2):
        torch.manual_seed(1)  # drop-path draws the same numbers in both runs
        losses.append(trainer.train_step(batch["image"], batch["mask"], 64, 1)["total"])
        if i == 0:  # gradients stay in .grad until the next step's zero_grad
            grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return trainer, losses, grads


def test_compile_default_is_on_for_cuda_only():
    cfg = Config.from_profile("fast")
    assert cfg.compile is None
    assert compiled.compile_enabled(cfg, torch.device("cuda")) is True
    assert compiled.compile_enabled(cfg, torch.device("cpu")) is False
    assert compiled.compile_enabled(cfg.replace(compile=True), torch.device("cpu")) is True
    assert compiled.compile_enabled(cfg.replace(compile=False), torch.device("cuda")) is False


def test_compile_failure_falls_back_to_eager_with_one_line(data_root, tmp_path, capsys):
    @register_backend(name="kdas_lab_test_broken")
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no compiler here")

    cfg = tiny_cfg(data_root, compile=True, compile_backend="kdas_lab_test_broken")
    trainer, losses, grads = two_steps(cfg, tmp_path / "c", lambda: create_model("polyp_pvt_b0"))
    out = capsys.readouterr().out
    assert out.count("continuing in eager mode") == 1 and "no compiler here" in out
    assert not trainer.compile_guard.active and trainer.compile_guard.failed
    assert trainer.net.eager is trainer.model  # the compiled forward now calls the eager student
    _, eager_losses, eager_grads = two_steps(tiny_cfg(data_root, compile=False), tmp_path / "e",
                                               lambda: create_model("polyp_pvt_b0"))
    assert losses == eager_losses
    for k, v in grads.items():
        assert torch.equal(v, eager_grads[k]), k


@pytest.mark.slow
def test_compiled_and_eager_losses_agree_b0_64px(data_root, tmp_path, capsys):
    """Graph capture (dynamo + AOTAutograd, ``aot_eager``: ~20 s on 2 CPU cores) of the B0 step."""
    cfg = tiny_cfg(data_root, compile=True, compile_backend="aot_eager")
    trainer, losses, grads = two_steps(cfg, tmp_path / "c", lambda: create_model("polyp_pvt_b0"))
    assert "continuing in eager mode" not in capsys.readouterr().out
    assert trainer.compile_guard.active and trainer.compile_guard.failed is None
    assert isinstance(trainer.net, compiled.CompiledForward) and trainer.net.eager is trainer.model
    _, eager_losses, eager_grads = two_steps(tiny_cfg(data_root, compile=False), tmp_path / "e",
                                               lambda: create_model("polyp_pvt_b0"))
    assert losses == pytest.approx(eager_losses, rel=1e-5, abs=1e-6)
    for k, v in grads.items():
        torch.testing.assert_close(v, eager_grads[k], atol=1e-5, rtol=1e-4)


def _need_inductor():
    reason = compiled.cpu_compiler_missing_reason()
    if reason:
        pytest.skip(reason)


@pytest.mark.slow
def test_inductor_compiled_step_matches_eager_tiny_net(data_root, tmp_path, capsys):
    """The default backend (inductor, C++ kernels on CPU) on a tiny two-head net: seconds, not minutes."""
    _need_inductor()
    cfg = tiny_cfg(data_root, compile=True)
    trainer, losses, grads = two_steps(cfg, tmp_path / "c", TinyNet)
    assert "continuing in eager mode" not in capsys.readouterr().out and trainer.compile_guard.failed is None
    _, eager_losses, eager_grads = two_steps(tiny_cfg(data_root, compile=False), tmp_path / "e", TinyNet)
    assert losses == pytest.approx(eager_losses, rel=1e-5, abs=1e-6)
    for k, v in grads.items():
        torch.testing.assert_close(v, eager_grads[k], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("KDAS_TEST_INDUCTOR_B0") != "1",
                    reason="inductor's C++ build of the B0 step took 338 s on the 2-core CPU (measured 2026-11-30); "
                           "set KDAS_TEST_INDUCTOR_B0=1 to run it (the CUDA check runs it on a GPU)")
def test_inductor_compiled_b0_matches_eager(data_root, tmp_path):
    _need_inductor()
    import torch._inductor.config as inductor_config

    before, inductor_config.fallback_random = inductor_config.fallback_random, True  # drop-path RNG as eager
    try:
        _, losses, _ = two_steps(tiny_cfg(data_root, compile=True), tmp_path / "c",
                                 lambda: create_model("polyp_pvt_b0"))
    finally:
        inductor_config.fallback_random = before
    _, eager_losses, _ = two_steps(tiny_cfg(data_root, compile=False), tmp_path / "e",
                                   lambda: create_model("polyp_pvt_b0"))
    assert losses == pytest.approx(eager_losses, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("argv, expected", [([], None), (["--compile"], True), (["--no-compile"], False)])
def test_compile_switch_on_the_command_line(argv, expected):
    import argparse

    from kdas_lab.cli.common import add_config_args, config_from_args

    parser = argparse.ArgumentParser()
    add_config_args(parser)
    assert config_from_args(parser.parse_args(["--profile", "fast", *argv])).compile is expected
