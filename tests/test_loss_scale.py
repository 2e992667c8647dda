"""The loss-scale tools: weighted terms that sum to the total, per-term gradient norms, the
probability-space SGM variant (``sgm_space="prob"``), and their logging in the trainer."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from kdas_lab.config import Config
from kdas_lab.losses import KDASLoss, KDLoss, create_loss
from kdas_lab.losses.row_attention import symmetrize
from kdas_lab.models.polyp_pvt import PolypOutput
from kdas_lab.train import train_model
from kdas_lab.train.term_grads import term_gradient_norms


def _maps(seed, b=2, s=6, scale=5.0):
    g = torch.Generator().manual_seed(seed)
    return PolypOutput(torch.randn(b, 1, s, s, generator=g) * scale, torch.randn(b, 1, s, s, generator=g) * scale, None)


@pytest.mark.parametrize("loss", [KDASLoss(), KDASLoss(at_weight=0.0), KDASLoss(sgm_space="prob"), KDLoss()])
def test_weighted_terms_sum_to_total(loss):
    s, t = _maps(0), _maps(1)
    mask = (torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    terms = loss.weighted_terms(s, t, mask)
    torch.testing.assert_close(sum(terms.values()), loss(s, t, mask).total)
    assert set(terms) == ({"seg", "at", "sgm"} if isinstance(loss, KDASLoss) else {"seg", "distill"})


def test_sgm_prob_is_bounded_and_by_hand():
    s, t = _maps(0, scale=50.0), _maps(1, scale=50.0)
    expected = sum(torch.mean((symmetrize(torch.sigmoid(getattr(s, h)))
                               - symmetrize(torch.sigmoid(getattr(t, h)))) ** 2)
                   for h in ("p1", "p2"))
    _, parts = KDASLoss(sgm_space="prob").distill_term(s, t)
    torch.testing.assert_close(parts["sgm"], expected)
    assert float(parts["sgm"]) <= 8.0  # each symmetrised map in [0, 2]: at most 4 per pixel per head
    _, logits = KDASLoss().distill_term(s, t)
    assert float(logits["sgm"]) > 100 * float(parts["sgm"])  # raw logits: the scale problem


def test_sgm_space_is_checked_and_read_from_extra():
    with pytest.raises(ValueError, match="sgm_space"):
        KDASLoss(sgm_space="probs")
    with pytest.raises(ValueError, match="sgm_space"):
        KDASLoss(mode="kdas-official", sgm_space="prob")
    cfg = Config.from_profile("fast", extra={"sgm_space": "prob"})
    assert create_loss("kdas", cfg).sgm_space == "prob" and create_loss("kdas", Config()).sgm_space == "logits"


def test_term_gradient_norms_by_hand():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    v = torch.tensor([1.0], requires_grad=True)
    terms = {"a": (w * w).sum() / 2, "b": 2 * (w.sum() + v.sum()), "c": torch.tensor(1.0)}
    norms = term_gradient_norms(terms, [w, v])
    assert norms["a"] == pytest.approx(5.0)  # grad w = (3, 4), grad v = 0
    assert norms["b"] == pytest.approx(12 ** 0.5)  # (2, 2) and (2,)
    assert norms["c"] == 0.0
    (terms["a"] + terms["b"]).backward()  # the graph is still there
    torch.testing.assert_close(w.grad, torch.tensor([5.0, 6.0]))


def test_trainer_logs_term_gradient_norms(tmp_path, one_thread):
    from kdas_lab.data import build_synthetic

    root = build_synthetic(tmp_path / "data", n_train=6, n_test=2, size=64, seed=0)
    cfg = Config.from_profile("fast", data_dir=Path(root), device="cpu", epochs=1, batch_size=2, num_workers=0,
                              max_steps_per_epoch=3, val_fraction=0.2, student="polyp_pvt_b0", teacher="polyp_pvt_b0",
                              log_term_grads_every=2)
    from kdas_lab.models import create_model

    teacher = create_model("polyp_pvt_b0").eval()
    train_model(cfg.replace(method="kdas"), out_dir=tmp_path / "run", teacher=teacher, show_progress=False)
    steps = pd.read_csv(tmp_path / "run" / "steps.csv")
    logged = steps.dropna(subset=["gradnorm_sgm"])
    assert logged["step"].tolist() == [0, 2]
    assert (logged[["gradnorm_seg", "gradnorm_at", "gradnorm_sgm"]] > 0).all().all()
