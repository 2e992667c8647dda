"""Pure pieces of the trainer: schedules, RNG state, clipping, non-finite guard, history, overlays."""
import math
import random

import numpy as np
import pandas as pd
import pytest
import torch

from kdas_lab.atomic import write_csv_atomic
from kdas_lab.train import numerics
from kdas_lab.train.history import EpochMeter, History
from kdas_lab.train.schedule import apply_lr, lr_at
from kdas_lab.train.state import capture_rng, restore_rng


@pytest.mark.parametrize("schedule, step, expected", [
    ("constant", 0, 1e-3), ("constant", 7, 1e-3),
    ("cosine", 0, 1e-3), ("cosine", 5, 0.5e-3), ("cosine", 10, 0.0),
    ("poly", 0, 1e-3), ("poly", 5, 1e-3 * 0.5 ** 0.9), ("poly", 10, 0.0),
])
def test_lr_at_hand_values(schedule, step, expected):
    assert lr_at(step, 10, 1e-3, schedule) == pytest.approx(expected, abs=1e-12)


def test_lr_at_rejects_unknown_and_apply_lr_sets_groups():
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        lr_at(0, 10, 1e-3, "step")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    apply_lr(opt, 0.25)
    assert opt.param_groups[0]["lr"] == 0.25


def test_rng_roundtrip_restores_every_stream():
    gen = torch.Generator().manual_seed(3)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    state = capture_rng(gen)
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=gen)))
    restore_rng(state, gen)
    again = (random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=gen)))
    assert first == again


def test_rng_state_survives_weights_only_load(tmp_path):
    torch.save(capture_rng(torch.Generator()), tmp_path / "rng.pt")
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    restore_rng(state, torch.Generator())
    with pytest.raises(KeyError, match="loader"):
        restore_rng({k: v for k, v in state.items() if k != "loader"}, torch.Generator())


@pytest.mark.parametrize("mode, expected", [
    ("value", [0.5, -0.5, 0.2]),
    ("norm", [3 / 5.0, -4 / 5.0, 0.0]),  # grad (3, -4, 0) has norm 5, clipped to norm 1
    ("none", [3.0, -4.0, 0.0]),
])
def test_clip_gradients(mode, expected):
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.tensor([3.0, -4.0, 0.2 if mode == "value" else 0.0])
    numerics.clip_gradients([p], mode, 0.5 if mode == "value" else 1.0)
    assert p.grad.tolist() == pytest.approx(expected)


def test_nonfinite_names_and_message():
    named = [("a", torch.ones(2)), ("b", torch.tensor([1.0, float("nan")])), ("c", torch.tensor([float("inf")]))]
    assert numerics.nonfinite_names(named) == ["b", "c"]
    assert numerics.nonfinite_names([("a", torch.ones(2)), ("none", None)]) == []
    msg = numerics.describe("gradient", ["b"], {"seg": 1.0, "at": math.nan}, "epoch 1, step 3 (size 64)")
    assert "non-finite loss component(s): at" in msg and "step 3" in msg and "b" in msg
    msg = numerics.describe("gradient", ["b"], {"seg": 1.0}, "epoch 1, step 0")
    assert "all loss components were finite" in msg


def test_epoch_meter_and_history_roundtrip(tmp_path):
    meter = EpochMeter()
    meter.update({"total": 1.0, "seg": 2.0})
    meter.update({"total": 3.0, "seg": 4.0})
    assert meter.means() == {"total": 2.0, "seg": 3.0}
    h = History()
    h.add_step({"epoch": 1, "step": 0, "loss_total": 1.0})
    h.add_epoch({"epoch": 1, "step": 1, "val_meanDic": 0.5})
    h2 = History.from_state(torch.load(_save(tmp_path, h.to_state()), weights_only=True))
    pd.testing.assert_frame_equal(h.epochs, h2.epochs)
    epochs_csv, steps_csv = h2.save(tmp_path / "run")
    assert pd.read_csv(epochs_csv)["val_meanDic"].tolist() == [0.5]
    assert pd.read_csv(steps_csv)["loss_total"].tolist() == [1.0]


def _save(tmp_path, obj):
    torch.save(obj, tmp_path / "h.pt")
    return tmp_path / "h.pt"


def test_write_csv_atomic_leaves_no_temp(tmp_path):
    write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "x.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_overlay_mask_hand_values():
    from kdas_lab.viz.overlays import overlay_mask

    image = np.full((2, 2, 3), 100, np.uint8)
    mask = np.array([[1.0, 0.0], [0.4, 0.6]])
    out = overlay_mask(image, mask, color=(200, 0, 100), alpha=0.5)
    assert out[0, 0].tolist() == [150, 50, 100]  # 0.5 * 100 + 0.5 * color
    assert out[0, 1].tolist() == [100, 100, 100] and out[1, 0].tolist() == [100, 100, 100]
    assert out[1, 1].tolist() == [150, 50, 100]
    with pytest.raises(ValueError, match="does not match"):
        overlay_mask(image, np.zeros((3, 3)))


@pytest.mark.parametrize("amp, device, expected", [
    (None, "cpu", None), (True, "cpu", torch.bfloat16), (None, "cuda", torch.bfloat16), (False, "cuda", None),
])
def test_amp_policy(amp, device, expected):
    from kdas_lab.config import Config
    from kdas_lab.train.loop import amp_dtype

    assert amp_dtype(Config(amp=amp), torch.device(device)) == expected


def test_nonfinite_names_fused_mixed_dtypes_and_large_values():
    big = torch.full((4,), 3e38)  # finite, though its L2 norm would overflow
    named = [("big", big), ("half", torch.tensor([1.0, float("-inf")], dtype=torch.float16)),
             ("int", torch.tensor([1, 2])), ("empty", torch.empty(0)), ("bf", torch.ones(3, dtype=torch.bfloat16))]
    assert numerics.nonfinite_names(named) == ["half"]


def test_nonfinite_names_is_exact_where_a_sum_is_not():
    """Opposite infinities sum to NaN (caught); finite values whose float32 sum overflows are not flagged."""
    named = [("overflow", torch.full((4,), 3e38)), ("f64", torch.full((2,), 1e300, dtype=torch.float64)),
             ("opposite", torch.tensor([float("inf"), float("-inf")])), ("ok", torch.zeros(3))]
    assert numerics.nonfinite_names(named) == ["opposite"]
