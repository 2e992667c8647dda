"""The teacher's answers as segmentation targets: the targets each arm builds, per-sample weighting, the
labelled share per batch, and a label-scarce run of every new arm (fast profile, seconds)."""
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from kdas_lab.ablation.arms import get_arm, preset_grid
from kdas_lab.config import Config
from kdas_lab.data.sampling import LabelledShareSampler
from kdas_lab.losses import build_targets, create_loss, seg_both_heads, teacher_probability
from kdas_lab.losses.structure import structure_loss
from kdas_lab.train import distill, train_teacher
from kdas_lab.train.builders import build_loaders
from kdas_lab.train.distributed import DistInfo

G = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)  # (2, 1, 2, 2)
T = torch.tensor([[0.8, 0.3], [0.6, 0.4]]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)  # teacher probabilities
ONE_LABELLED = torch.tensor([True, False])


@pytest.mark.parametrize("mode, labelled_target, unlabelled_target", [
    ("pseudo", [[1.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]),
    ("pseudo_soft", [[1.0, 0.0], [1.0, 1.0]], [[0.8, 0.3], [0.6, 0.4]]),
    ("mix", [[0.9, 0.15], [0.8, 0.7]], [[0.8, 0.3], [0.6, 0.4]]),  # 0.5 G + 0.5 t; t where unlabelled
])
def test_targets_by_hand(mode, labelled_target, unlabelled_target):
    targets, used = build_targets(mode, G, T, ONE_LABELLED, mix_lambda=0.5)
    assert used is None  # every sample is used, each with its own target
    assert torch.allclose(targets[0, 0], torch.tensor(labelled_target))
    assert torch.allclose(targets[1, 0], torch.tensor(unlabelled_target))


def test_mask_mode_keeps_the_labelled_samples_only_and_mix_lambda_weights_the_mask():
    targets, used = build_targets("mask", G, None, ONE_LABELLED)
    assert targets is G and torch.equal(used, ONE_LABELLED)
    full, _ = build_targets("mix", G, T, None, mix_lambda=0.7)  # full labels: every sample mixed
    assert torch.allclose(full[0, 0, 0, 0], torch.tensor(0.7 * 1.0 + 0.3 * 0.8))


def test_teacher_probability_is_its_evaluated_prediction():
    out = SimpleNamespace(p1=torch.tensor([[[[1.0]]]]), p2=torch.tensor([[[[-3.0]]]]))
    assert torch.allclose(teacher_probability(out), torch.sigmoid(torch.tensor(-2.0)))


def test_every_sample_weighs_the_same():
    """Per-sample normalisation: the loss is the plain mean of the samples' losses, labelled or not."""
    torch.manual_seed(0)
    student = SimpleNamespace(p1=torch.randn(2, 1, 8, 8), p2=torch.randn(2, 1, 8, 8))
    teacher = SimpleNamespace(p1=torch.randn(2, 1, 8, 8), p2=torch.randn(2, 1, 8, 8))
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    cfg = Config.from_profile("fast", targets="pseudo")
    total = create_loss("targets", cfg)(student, teacher, mask, ONE_LABELLED).total
    hard = (teacher_probability(teacher) > 0.5).float()
    per_sample = [structure_loss(student.p1[i:i + 1], y) + structure_loss(student.p2[i:i + 1], y)
                  for i, y in ((0, mask[0:1]), (1, hard[1:2]))]
    assert torch.allclose(total, (per_sample[0] + per_sample[1]) / 2)
    # the published target mode reads the labelled sample alone
    assert torch.allclose(seg_both_heads(student, mask, labelled=ONE_LABELLED), per_sample[0])


def test_kdas_on_targets_and_bad_combinations():
    cfg = Config.from_profile("fast")
    assert create_loss("kdas", cfg.replace(targets="mix")).targets == "mix"
    with pytest.raises(ValueError, match="method 'targets' needs cfg.targets"):
        create_loss("targets", cfg)
    with pytest.raises(ValueError, match="applies to the methods targets, kdas, not 'kd'"):
        create_loss("kd", cfg.replace(targets="pseudo"))
    with pytest.raises(ValueError, match="targets must be one of"):
        cfg.replace(targets="hard")
    with pytest.raises(ValueError, match="labelled_per_batch must be < batch_size"):
        cfg.replace(labelled_per_batch=cfg.batch_size)


def test_labelled_share_per_batch():
    labelled, unlabelled = [0, 1], list(range(2, 12))  # 2 labelled, 10 unlabelled images
    sampler = LabelledShareSampler(labelled, unlabelled, batch_size=4, n_labelled=2,
                                   generator=torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3  # ceil(12 / 4): the steps of a full pass
    for batch in batches:
        assert len(batch) == 4 and set(batch[:2]) <= {0, 1} and set(batch[2:]) <= set(unlabelled)
    drawn = [i for b in batches for i in b[2:]]
    assert len(set(drawn)) == len(drawn)  # unlabelled images without replacement within a pass
    again = list(LabelledShareSampler(labelled, unlabelled, 4, 2, torch.Generator().manual_seed(0)))
    assert again == batches  # seeded


def test_arms_and_presets():
    assert get_arm("pseudo").config(Config.from_profile("fast"), 0).targets == "pseudo"
    mix = get_arm("mix0.7").config(Config.from_profile("fast"), 0)
    assert (mix.method, mix.targets, mix.mix_lambda) == ("targets", "mix", 0.7)
    assert get_arm("kdas_mix").extra == {"sgm_space": "prob"}  # the scale-aware SGM
    scarce = preset_grid("laptop-scarce2")
    assert scarce.overrides["labelled_fraction"] == 0.02 and scarce.overrides["labelled_per_batch"] == 4
    assert len(scarce.seeds) == 5 and "pseudo" in [a.name for a in scarce.arms]
    assert {"no_kd", "kd", "mix0.5", "kdas", "kdas_mix"} <= {a.name for a in preset_grid("laptop-full").arms}


@pytest.fixture(scope="module")
def scarce_setup(tmp_path_factory):
    from kdas_lab.data import build_synthetic

    root = tmp_path_factory.mktemp("targets")
    data = build_synthetic(root / "data", n_train=10, n_test=2, size=64, seed=0)
    cfg = Config.from_profile("fast", data_dir=Path(data), device="cpu", epochs=1, batch_size=4, val_fraction=0.2,
                              teacher="polyp_pvt_b0", max_steps_per_epoch=None, labelled_fraction=0.25,
                              labelled_per_batch=2, threads=1)
    teacher = train_teacher(cfg.with_teacher(epochs=1), root / "teacher", show_progress=False)
    return cfg, teacher.best_checkpoint, root


def test_scarce_loader_gives_the_labelled_share(scarce_setup):
    cfg, _, _ = scarce_setup
    loaders = build_loaders(cfg, DistInfo(), torch.device("cpu"), distilling=True)
    labelled = set(loaders.labelled)
    for batch in loaders.train:
        assert [s in labelled for s in batch["stem"]] == [True, True, False, False]


@pytest.mark.parametrize("arm", ["pseudo", "pseudo_soft", "mix0.5", "kdas_pseudo"])
def test_each_arm_trains_label_scarce(scarce_setup, arm):
    cfg, teacher, root = scarce_setup
    acfg = get_arm(arm).config(cfg, 0)
    result = distill(acfg, teacher, root / arm, show_progress=False)
    steps = pd.read_csv(root / arm / "steps.csv")
    assert len(steps) == 2 and (steps["loss_seg"] > 0).all()  # 8 training images / 4; every batch has targets
    assert result.history["val_meanDic"].notna().all()
