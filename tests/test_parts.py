"""The trainer's parts built in the open (kdas_lab.train.parts) and the real step timed without data."""
from pathlib import Path

import pytest
import torch

from kdas_lab.config import Config
from kdas_lab.losses import create_loss
from kdas_lab.models import PolypOutput, create_model
from kdas_lab.train.builders import build_loaders
from kdas_lab.train.compiled import CompileGuard
from kdas_lab.train.distributed import DistInfo
from kdas_lab.train.parts import build_parts
from kdas_lab.train.step_timing import step_trainer, time_step
from kdas_lab.train.teacher_cache import TeacherCache
from kdas_lab.train.teacher_outputs import CachedTeacher, LiveTeacher


class TinyNet(torch.nn.Module):
    name = "tiny"

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.h1, self.h2 = torch.nn.Conv2d(4, 1, 1), torch.nn.Conv2d(4, 1, 1)

    def forward(self, x):
        f = self.body(x)  # (B, 4, S, S)
        return PolypOutput(self.h1(f), self.h2(f), None)  # p1, p2 (B, 1, S, S)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, one_thread):
    from kdas_lab.data import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", n_train=4, n_test=2, size=32, seed=0)


def test_build_parts_live_teacher_and_none(data_root, capsys):
    cpu = torch.device("cpu")
    cfg = Config.from_profile("fast", data_dir=Path(data_root), device="cpu", image_size=32, val_fraction=0.0)
    teacher = create_model("polyp_pvt_b0").eval()
    loss = create_loss("kdas", cfg)
    loaders = build_loaders(cfg, DistInfo(), cpu, distilling=True)
    parts = build_parts(cfg, teacher=teacher, loss=loss, loaders=loaders, device=cpu, show_progress=False)
    assert isinstance(parts.teacher_outputs, LiveTeacher) and parts.teacher_outputs.forward is teacher  # eager on CPU
    assert parts.device_data is None and not parts.compile_guard.active
    plain = build_parts(cfg, teacher=None, loss=create_loss("none", cfg), loaders=loaders, device=cpu)
    assert plain.teacher_outputs is None
    assert capsys.readouterr().out == ""  # the CPU defaults log nothing


def test_cached_teacher_reads_by_keys_and_needs_them():
    maps = torch.arange(2 * 2 * 4 * 4, dtype=torch.float16).view(2, 1, 2, 4, 4).numpy()  # (N, V, 2, s, s)
    outputs = CachedTeacher(TeacherCache({4: maps}, ["a", "b"], [], 1), torch.device("cpu"))
    out = outputs(torch.zeros(1, 3, 4, 4), (["b"], None), 4)
    assert torch.equal(out.p2, torch.from_numpy(maps[1:2, 0, 1:2]).float())
    with pytest.raises(ValueError, match="keys"):
        outputs(torch.zeros(1, 3, 4, 4), None, 4)


def test_step_trainer_times_the_real_step_with_a_live_teacher():
    cpu = torch.device("cpu")
    cfg = Config(device="cpu", image_size=32, multiscale=(1.0,), batch_size=2, method="kdas", amp=False,
                 augment=False, val_fraction=0.0)
    torch.manual_seed(0)
    student, teacher = TinyNet(), TinyNet().eval().requires_grad_(False)
    calls = []
    forward = teacher.forward
    trainer = step_trainer(cfg, student=student, loss=create_loss("kdas", cfg), device=cpu, teacher=teacher,
                           teacher_outputs=LiveTeacher(lambda x: calls.append(x.shape) or forward(x)),
                           compile_guard=CompileGuard.eager())
    images, masks = torch.randn(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) > 0.5).float()
    seconds = time_step(trainer.train_step, trainer.device, images, masks, 16, warmup=1, steps=2)
    assert seconds > 0 and trainer.step == 3 and len(calls) == 3
    assert len(trainer.history.steps) == 3 and {"loss_at", "loss_sgm"} <= set(trainer.history.steps.columns)
