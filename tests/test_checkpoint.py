"""Checkpoints: published-layout parity, kdas_lab save/load, wrappers, strict errors, pretrained backbones."""
import importlib.util
import re
from pathlib import Path

import pytest
import timm
import torch

from kdas_lab import __version__
from kdas_lab.models import (
    CheckpointError,
    create_model,
    factory,
    load_checkpoint,
    load_model,
    load_pretrained_backbone,
    read_checkpoint,
    save_checkpoint,
)

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"
PARITY = SPEC / "official_parity_public.pt"
needs_spec = pytest.mark.skipif(not PARITY.exists(), reason=f"{PARITY} not found (shared spec fixtures absent)")


@pytest.fixture(scope="module")
def parity():
    return torch.load(PARITY, weights_only=True)


@pytest.fixture(scope="module")
def synth():
    spec = importlib.util.spec_from_file_location("synth_weights", SPEC / "synth_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def published_sd(parity, synth, role):
    return synth.make_state_dict(parity[role]["rows"], parity[role]["seed"])


@needs_spec
@pytest.mark.parametrize("role,name", [("teacher", "polyp_pvt_b2"), ("student", "polyp_pvt_b0")])
def test_parity_with_published_outputs(parity, synth, tmp_path, role, name):
    path = tmp_path / f"{role}.pth"
    torch.save(published_sd(parity, synth, role), path)
    model = create_model(name, checkpoint=path).eval()
    with torch.no_grad():
        out = model(parity["x"])
    torch.testing.assert_close(out.p1, parity[role]["p1"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.p2, parity[role]["p2"], atol=1e-5, rtol=1e-5)
    if role == "student":  # the variant is detected from the shapes when no name is given
        assert create_model(None, checkpoint=path).name == name


@needs_spec
def test_published_layout_report_and_wrappers(parity, synth):
    sd = published_sd(parity, synth, "student")
    model = create_model("polyp_pvt_b0")
    rep = load_checkpoint(model, sd)
    assert (rep.matched, rep.source_layout) == (263, "published")
    for wrapped in ({"state_dict": sd}, {"model": sd}, {f"module.{k}": v for k, v in sd.items()}):
        model = create_model("polyp_pvt_b0", checkpoint=wrapped)
        assert torch.equal(model.backbone.stages[0].blocks[0].attn.q.weight, sd["backbone.block1.0.attn.q.weight"])


@needs_spec
def test_b2_weights_into_b0_names_both_variants(parity, synth, tmp_path):
    path = tmp_path / "teacher.pth"
    torch.save(published_sd(parity, synth, "teacher"), path)
    with pytest.raises(CheckpointError, match=r"polyp_pvt_b2 weights, but the model is polyp_pvt_b0"):
        create_model("polyp_pvt_b0", checkpoint=path)


def test_kdas_lab_roundtrip(tmp_path):
    torch.manual_seed(1)
    model = create_model("polyp_pvt_b0")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    path = tmp_path / "sub" / "best.pt"
    save_checkpoint(path, model, config={"lr": 1e-4, "data_dir": Path("data/x")}, epoch=3,
                    metrics={"val_dice": 0.5}, optimizer=opt.state_dict(), rng=torch.get_rng_state())
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temp file left behind
    ck = torch.load(path, weights_only=True)
    assert ck["format"] == "kdas_lab" and ck["version"] == __version__
    assert (ck["model_name"], ck["epoch"], ck["metrics"]) == ("polyp_pvt_b0", 3, {"val_dice": 0.5})
    assert ck["config"] == {"lr": 1e-4, "data_dir": "data/x"} and "optimizer" in ck and "rng" in ck
    assert read_checkpoint(path)["epoch"] == 3
    loaded = load_model(path, device="cpu")
    assert loaded.name == "polyp_pvt_b0" and not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    assert load_checkpoint(create_model("polyp_pvt_b0"), path).source_layout == "kdas_lab"
    assert load_checkpoint(create_model("polyp_pvt_b0"), model.state_dict()).source_layout == "timm"


def test_save_rejects_non_plain_types_without_writing(tmp_path):
    model = create_model("polyp_pvt_b0")
    with pytest.raises(TypeError, match=r"extra_obj.*object"):
        save_checkpoint(tmp_path / "x.pt", model, extra_obj=object())
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "x.pt", model, format="other")
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_names_the_file(tmp_path):
    good, bad = tmp_path / "good.pt", tmp_path / "cut.pt"
    save_checkpoint(good, create_model("polyp_pvt_b0"))
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(bad))}.*truncated, corrupt"):
        create_model("polyp_pvt_b0", checkpoint=bad)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(create_model("polyp_pvt_b0"), tmp_path / "nope.pt")


@pytest.mark.parametrize("content,msg", [
    (b"not a checkpoint at all", "truncated, corrupt or not a PyTorch file"),
    ("pickled_object", r"refused: loading it would execute code \(global fractions\.Fraction\)"),
])
def test_garbage_and_unsafe_files(tmp_path, content, msg):
    path = tmp_path / "weird.pt"
    if content == "pickled_object":
        from fractions import Fraction
        torch.save({"a": Fraction(1, 3)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=msg) as e:
        read_checkpoint(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("obj,msg", [
    ({"foo": torch.zeros(2), "bar": torch.ones(1)}, r"not look like a Polyp-PVT checkpoint.*foo"),
    ({"epoch": 3, "lr": 0.1}, r"not a state dict.*epoch"),
    ({"patch_embed1.proj.weight": torch.zeros(1)}, r"bare PVTv2 backbone.*pretrained_backbone"),
])
def test_random_dicts_give_clear_errors(obj, msg):
    with pytest.raises(CheckpointError, match=msg):
        load_checkpoint(create_model("polyp_pvt_b0"), obj)


def test_missing_unexpected_and_shape_errors_name_keys():
    model = create_model("polyp_pvt_b0")
    sd = dict(model.state_dict())
    del sd["SAM.gcn.conv1.bias"]
    sd["extra.weight"] = torch.zeros(1)
    sd["out_CFM.weight"] = torch.zeros(1, 32, 3, 3)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(model, sd)
    msg = str(e.value)
    assert "missing keys: SAM.gcn.conv1.bias (1 in total)" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "out_CFM.weight (1, 32, 3, 3) vs model (1, 32, 1, 1)" in msg


def random_pvt_state_dict(variant, num_classes=1000):
    """A random timm PVTv2 state dict with classifier (built on the meta device: no slow init)."""
    with torch.device("meta"):
        shapes = timm.create_model(f"pvt_v2_{variant}", num_classes=num_classes).state_dict()
    g = torch.Generator().manual_seed(0)
    return {k: 0.02 * torch.randn(v.shape, generator=g) for k, v in shapes.items()}


def to_original_pvt_layout(sd):
    """Inverse of timm's checkpoint_filter_fn: timm PVTv2 names -> original whai362/PVT names."""
    out = {}
    for k, v in sd.items():
        k = k.replace("patch_embed.", "patch_embed1.", 1) if k.startswith("patch_embed.") else k
        k = re.sub(r"^stages\.(\d+)\.downsample\.", lambda m: f"patch_embed{int(m.group(1)) + 1}.", k)
        k = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.", lambda m: f"block{int(m.group(1)) + 1}.{m.group(2)}.", k)
        k = re.sub(r"^stages\.(\d+)\.norm\.", lambda m: f"norm{int(m.group(1)) + 1}.", k)
        k = k.replace("mlp.dwconv.", "mlp.dwconv.dwconv.")
        out[k] = v
    return out


@pytest.mark.parametrize("variant,n_keys,layout", [
    ("b0", 176, "original"), ("b0", 176, "timm"), pytest.param("b2", 332, "original", marks=pytest.mark.slow)])
def test_pretrained_backbone_file(tmp_path, variant, n_keys, layout):
    src = random_pvt_state_dict(variant)  # includes head.weight / head.bias
    sd = dict(src)
    if layout == "original":
        sd = to_original_pvt_layout(sd)
        assert "block1.0.attn.q.weight" in sd and "head.weight" in sd
    path = tmp_path / f"pvt_v2_{variant}.pth"
    torch.save(sd, path)
    model = create_model(f"polyp_pvt_{variant}", pretrained_backbone=str(path))
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, src[k]), k
    assert load_pretrained_backbone(model, path) == n_keys


def test_pretrained_backbone_incomplete_or_wrong_variant_fails_loudly(tmp_path):
    sd = to_original_pvt_layout(random_pvt_state_dict("b0"))
    del sd["block1.0.attn.q.weight"]
    path = tmp_path / "pvt_v2_b0.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"matched only 175 of the 176.*stages\.0\.blocks\.0\.attn\.q\.weight"):
        create_model("polyp_pvt_b0", pretrained_backbone=path)
    torch.save(random_pvt_state_dict("b1", num_classes=0), path)
    with pytest.raises(CheckpointError, match=r"looks like pvt_v2_b1"):
        create_model("polyp_pvt_b0", pretrained_backbone=path)


def test_imagenet_offline_error_points_to_release_file(monkeypatch):
    def offline(*a, **k):
        raise OSError("no network")
    monkeypatch.setattr(factory, "create_backbone", offline)
    model = create_model("polyp_pvt_b0")
    with pytest.raises(RuntimeError, match=r"whai362/PVT/releases/download/v2/pvt_v2_b0\.pth.*path"):
        load_pretrained_backbone(model, "imagenet")
