"""Polyp-PVT architecture: parameter counts, key names, shapes, input checks, decoder blocks."""
import json
from pathlib import Path

import pytest
import torch
from timm.layers import use_fused_attn
from timm.models.pvt_v2 import checkpoint_filter_fn
from torch.utils.flop_counter import FlopCounterMode

from kdas_lab.models import MODEL_NAMES, PolypOutput, PolypPVT, attention_fusion, create_model
from kdas_lab.models.blocks import BasicConv2d, ChannelAttention, SpatialAttention
from kdas_lab.models.cfm import CFM
from kdas_lab.models.sam import GCN, SAM, edge_weight

SHARED = Path(__file__).resolve().parents[2] / "shared"
KEYS_JSON = SHARED / "spec" / "official_state_dict_keys.json"


@pytest.fixture(scope="module")
def b0():
    torch.manual_seed(0)
    return create_model("polyp_pvt_b0").eval()


@pytest.fixture(scope="module")
def b2():
    torch.manual_seed(0)
    return create_model("polyp_pvt_b2").eval()


@pytest.mark.parametrize("name,total,backbone", [
    ("polyp_pvt_b0", 3_650_740, 3_409_760),
    ("polyp_pvt_b2", 25_107_604, 24_849_856),
])
def test_parameter_counts(name, total, backbone, b0, b2):
    model = {"polyp_pvt_b0": b0, "polyp_pvt_b2": b2}[name]
    assert model.name == name
    assert sum(p.numel() for p in model.parameters()) == total
    assert sum(p.numel() for p in model.backbone.parameters()) == backbone


@pytest.mark.parametrize("role,name", [("student", "polyp_pvt_b0"), ("teacher", "polyp_pvt_b2")])
def test_state_dict_keys_map_to_published_layout(role, name, b0, b2):
    if not KEYS_JSON.exists():
        pytest.skip(f"{KEYS_JSON} not found (shared spec fixtures absent)")
    rows = json.loads(KEYS_JSON.read_text())[role]
    published = {k: tuple(s) for k, s, _ in rows}
    own = {k: tuple(v.shape) for k, v in {"polyp_pvt_b0": b0, "polyp_pvt_b2": b2}[name].state_dict().items()}
    decoder = {k: s for k, s in published.items() if not k.startswith("backbone.")}
    assert {k: s for k, s in own.items() if not k.startswith("backbone.")} == decoder  # exact names
    bb = {k[len("backbone."):]: torch.empty(0) for k in published if k.startswith("backbone.")}
    mapped = {f"backbone.{k}" for k in checkpoint_filter_fn(bb, None)}
    assert mapped == {k for k in own if k.startswith("backbone.")}
    assert len(published) == len(own)


@pytest.mark.parametrize("size", [256, 352, 448])
def test_b0_output_shapes(b0, size):
    with torch.no_grad():
        out = b0(torch.randn(1, 3, size, size))
    assert isinstance(out, PolypOutput)
    assert out.p1.shape == out.p2.shape == (1, 1, size, size)
    f = out.features
    assert [tuple(s.shape) for s in f.stages] == [
        (1, c, size // r, size // r) for c, r in zip((32, 64, 160, 256), (4, 8, 16, 32))]
    assert f.cim.shape == (1, 32, size // 4, size // 4)
    assert f.cfm.shape == f.sam.shape == (1, 32, size // 8, size // 8)


def test_b2_output_shapes_batch2_nonsquare(b2):
    with torch.no_grad():
        out = b2(torch.randn(2, 3, 256, 192))
    assert out.p1.shape == out.p2.shape == (2, 1, 256, 192)
    assert [s.shape[1] for s in out.features.stages] == [64, 128, 320, 512]
    assert out.features.cim.shape == (2, 64, 64, 48)


@pytest.mark.parametrize("shape,msg", [
    ((1, 3, 100, 96), "multiples of 32"),
    ((1, 3, 96, 70), "multiples of 32"),
    ((1, 1, 96, 96), "(B, 3, H, W)"),
    ((3, 96, 96), "(B, 3, H, W)"),
])
def test_bad_input_shapes(b0, shape, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        b0(torch.randn(*shape))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as e:
        create_model("polyp_pvt_b9")
    assert all(n in str(e.value) for n in MODEL_NAMES)
    assert MODEL_NAMES == tuple(f"polyp_pvt_b{i}" for i in range(6))


def test_constructor_does_no_io(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("constructor must not read files")
    monkeypatch.setattr(torch, "load", boom)
    assert create_model("polyp_pvt_b0").name == "polyp_pvt_b0"


def test_eval_deterministic_and_all_parameters_get_gradients(b0):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = b0(x), b0(x)
    assert torch.equal(a.p1, b.p1) and torch.equal(a.p2, b.p2)
    model = create_model("polyp_pvt_b0").train()
    out = model(x)
    (out.p1.mean() + out.p2.mean()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == []


def test_basic_conv_never_applies_its_relu():
    blk = BasicConv2d(1, 1, 1).eval()
    with torch.no_grad():
        blk.conv.weight.fill_(2.0)
    x = torch.tensor([[[[-1.0, 3.0]]]])
    expected = 2 * x / (1 + blk.bn.eps) ** 0.5  # BN with default stats: / sqrt(1 + eps)
    assert torch.allclose(blk(x), expected)
    assert blk(x).min() < 0 and isinstance(blk.relu, torch.nn.ReLU)


def test_channel_attention_hand_computed():
    ca = ChannelAttention(16)  # hidden = 1
    with torch.no_grad():
        ca.fc1.weight.fill_(1.0)
        ca.fc2.weight.fill_(1.0)
    x = torch.zeros(1, 16, 2, 2)
    x[0, 0] = torch.tensor([[1.0, 3.0], [0.0, 0.0]])  # mean 1, max 3; other channels 0
    # avg path: relu(sum of channel means = 1) = 1; max path: relu(sum of maxima = 3) = 3
    assert torch.allclose(ca(x), torch.full((1, 16, 1, 1), torch.sigmoid(torch.tensor(4.0)).item()))


def test_spatial_attention_hand_computed():
    sa = SpatialAttention()
    with torch.no_grad():
        sa.conv1.weight.zero_()
        sa.conv1.weight[0, 0, 3, 3] = 1.0  # centre tap on the channel mean
        sa.conv1.weight[0, 1, 3, 3] = 2.0  # centre tap on the channel max
    x = torch.tensor([[[[1.0]], [[3.0]]]])  # mean 2, max 3 -> 2 + 6 = 8
    assert torch.allclose(sa(x), torch.sigmoid(torch.tensor(8.0)).reshape(1, 1, 1, 1))


def test_gcn_identity_node_mixing_gives_zero():
    gcn = GCN(num_state=3, num_node=4)
    with torch.no_grad():
        gcn.conv1.weight.copy_(torch.eye(4).unsqueeze(-1))
        gcn.conv1.bias.zero_()
    assert torch.equal(gcn(torch.randn(2, 3, 4)), torch.zeros(2, 3, 4))


def test_edge_weight_is_softmax_channel_one():
    edge = torch.tensor([[[[0.0]], [[1.0]]]])  # (1, 2, 1, 1)
    w = edge_weight(edge, (2, 2))  # nearest resize -> constant
    assert torch.allclose(w, torch.full((1, 1, 2, 2), 1 / (1 + torch.e ** -1)))


def test_sam_residual_and_cfm_shapes():
    sam = SAM(num_in=32)
    with torch.no_grad():
        sam.conv_extend.weight.zero_()
    x = torch.randn(2, 32, 8, 12)
    assert torch.equal(sam(x, torch.randn(2, 32, 8, 12)), x)  # zero extension -> identity
    cfm = CFM(32)
    out = cfm(torch.randn(2, 32, 2, 3), torch.randn(2, 32, 4, 6), torch.randn(2, 32, 8, 12))
    assert out.shape == (2, 32, 8, 12)


@pytest.mark.parametrize("variant,gmacs", [("b0", 1.904), ("b2", 10.844)])
def test_macs_at_352_match_published(variant, gmacs):
    """Counted on the meta device (shapes only, no compute); fused attention off so that the
    attention matmuls are counted (spec section 3: 1.90 G / 10.84 G)."""
    with torch.device("meta"):
        model = PolypPVT(variant).eval()
        x = torch.empty(1, 3, 352, 352)
    with attention_fusion(model, enabled=False), torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    assert fc.get_total_flops() / 2e9 == pytest.approx(gmacs, abs=1e-3)
    assert all(m.fused_attn == use_fused_attn() for m in model.backbone.modules() if hasattr(m, "fused_attn"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_and_runs_bf16(tmp_path):
    from kdas_lab.models import AttentionCapture, load_model, save_checkpoint

    torch.manual_seed(0)
    cpu = create_model("polyp_pvt_b0").eval()
    path = save_checkpoint(tmp_path / "b0.pt", cpu)
    gpu = load_model(path, device="cuda")
    x = torch.randn(2, 3, 128, 128)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        ref, out = cpu(x), gpu(x.cuda())
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = gpu(x.cuda())
        with AttentionCapture(gpu, stages=[0], to_cpu=True) as cap:
            gpu(x.cuda())
    torch.testing.assert_close(out.p1.cpu(), ref.p1, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(out.p2.cpu(), ref.p2, atol=1e-3, rtol=1e-3)
    assert torch.isfinite(half.p1).all() and (half.p1.float().cpu() - ref.p1).abs().mean() < 0.05
    assert cap.maps["stages.0.blocks.0"].attn.device.type == "cpu"
