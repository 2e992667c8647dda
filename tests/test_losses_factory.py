"""create_loss: names, config wiring, extras; every method on the real B0 student / B2 teacher."""
import pytest
import torch

import kdas_lab.losses.kdas as kdas_module
from kdas_lab.config import Config
from kdas_lab.losses import (
    LOSS_METHODS,
    ATLoss,
    CWDLoss,
    DISTLoss,
    FitNetLoss,
    KDASLoss,
    KDLoss,
    SegOnlyLoss,
    SKDLoss,
    TeacherTargetLoss,
    create_loss,
    stage_widths,
)


@pytest.fixture(autouse=True)
def quiet_official_warning(monkeypatch):
    monkeypatch.setattr(kdas_module, "_official_warned", True)


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread contention on busy 2-core CI machines."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cfg():
    return Config.from_profile("fast")


def test_method_names_and_classes(cfg):
    assert LOSS_METHODS == ("none", "kdas", "kdas-official", "kd", "at", "cwd", "skd", "dist", "fitnet", "targets")
    cfg = cfg.replace(extra={"fitnet_channels": (160, 320)})
    expected = {"none": SegOnlyLoss, "kdas": KDASLoss, "kdas-official": KDASLoss, "kd": KDLoss, "at": ATLoss,
                "cwd": CWDLoss, "skd": SKDLoss, "dist": DISTLoss, "fitnet": FitNetLoss, "targets": TeacherTargetLoss}
    for method in LOSS_METHODS:
        loss = create_loss(method, cfg.replace(targets="pseudo") if method == "targets" else cfg)
        assert isinstance(loss, expected[method])
        assert loss.needs_teacher == (method != "none")


def test_unknown_method_lists_valid(cfg):
    valid = "none, kdas, kdas-official, kd, at, cwd, skd, dist, fitnet, targets"
    with pytest.raises(ValueError, match=f"valid methods: {valid}"):
        create_loss("hinton", cfg)


def test_config_and_extras_are_read(cfg):
    cfg = cfg.replace(alpha=0.5, temperature=3.0, legacy_bce=True,
                      extra={"at_weight": 0.0, "sgm_weight": 2.0, "at_beta": 10.0, "cwd_tau": 1.0,
                             "cwd_features": False, "skd_pixel_weight": 1.0, "skd_pair_weight": 0.5,
                             "skd_scale": 0.25, "fitnet_stage": 1, "fitnet_channels": [64, 128]})
    kdas = create_loss("kdas", cfg)
    assert (kdas.mode, kdas.alpha, kdas.temperature, kdas.legacy_bce) == ("kdas", 0.5, 3.0, True)
    assert (kdas.at_weight, kdas.sgm_weight) == (0.0, 2.0)
    assert create_loss("kdas-official", cfg.replace(legacy_bce=False)).legacy_bce  # always the published BCE
    assert create_loss("none", cfg).legacy_bce and create_loss("kd", cfg).temperature == 3.0
    assert create_loss("at", cfg).beta == 10.0
    cwd = create_loss("cwd", cfg)
    assert (cwd.tau, cwd.features) == (1.0, False)
    skd = create_loss("skd", cfg)
    assert (skd.pixel_weight, skd.pair_weight, skd.scale) == (1.0, 0.5, 0.25)
    fit = create_loss("fitnet", cfg)
    assert (fit.stage, fit.adapter.in_channels, fit.adapter.out_channels) == (1, 64, 128)


def test_fitnet_needs_widths(cfg):
    with pytest.raises(ValueError, match="fitnet_channels"):
        create_loss("fitnet", cfg)


@pytest.mark.slow
def test_every_method_on_real_models(cfg, one_thread):
    from kdas_lab.models import create_model

    torch.manual_seed(0)  # b1 has the teacher's (b2) widths and builds faster
    student, teacher = create_model("polyp_pvt_b0"), create_model("polyp_pvt_b1").eval()
    teacher.requires_grad_(False)
    assert stage_widths(student) == (32, 64, 160, 256) and stage_widths(teacher) == (64, 128, 320, 512)
    x = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 10:20] = 1
    with torch.no_grad():
        t_out = teacher(x)
    s_out = student(x)  # one forward; each loss is differentiated w.r.t. the student's outputs
    outputs = [s_out.p1, s_out.p2, *s_out.features.stages, s_out.features.cim, s_out.features.cfm,
               s_out.features.sam]
    totals = []
    for method in LOSS_METHODS:
        mcfg = cfg.replace(targets="mix") if method == "targets" else cfg
        loss = create_loss(method, mcfg, student=student, teacher=teacher)
        out = loss(s_out, t_out if loss.needs_teacher else None, mask)
        assert set(out.components) >= {"seg"}, method
        grads = torch.autograd.grad(out.total, outputs, allow_unused=True, retain_graph=True)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, method
        assert all(torch.isfinite(g).all() for g in grads if g is not None), method
        if method != "kdas-official":  # the published objective may be NaN by design
            assert torch.isfinite(out.total), method
            totals.append(out.total)
    torch.stack(totals).sum().backward()  # and the gradient goes through the whole student
    assert all(p.grad is not None for p in student.backbone.parameters() if p.requires_grad)
    assert all(p.grad is None for p in teacher.parameters())
    fit = create_loss("fitnet", cfg, student=student, teacher=teacher)
    assert (fit.adapter.in_channels, fit.adapter.out_channels) == (160, 320)


def test_sgm_heads_is_a_checked_config_field_read_by_kdas_only():
    assert create_loss("kdas", Config.from_profile("fast")).sgm_heads == "both"
    assert create_loss("kdas", Config.from_profile("fast", sgm_heads="p1")).sgm_heads == "p1"
    official = create_loss("kdas-official", Config.from_profile("fast", sgm_heads="p1"))
    assert official.sgm_heads == "both"  # unused: the published arithmetic is P1 only by itself
    with pytest.raises(ValueError, match="sgm_heads must be one of both, p1"):
        Config(sgm_heads="p2")
