"""PVTv2 attention capture: shapes, grids, exact softmax rows, unchanged outputs, hooks removed."""
import pytest
import torch

from kdas_lab.models import AttentionCapture, create_model, stage_attention
from kdas_lab.models.attention_capture import find_attention_modules, kv_grid


@pytest.fixture(scope="module")
def b0():
    torch.manual_seed(0)
    return create_model("polyp_pvt_b0").eval()


def _hook_counts(modules):
    return [(len(m._forward_pre_hooks), len(m.attn_drop._forward_hooks)) for m in modules.values()]


# b0: heads 1, 2, 5, 8; sr ratios 8, 4, 2, 1; 64x96 input -> grids 16x24, 8x12, 4x6, 2x3
@pytest.mark.parametrize("stage,heads,q,kv", [
    (0, 1, (16, 24), (2, 3)), (1, 2, (8, 12), (2, 3)), (2, 5, (4, 6), (2, 3)), (3, 8, (2, 3), (2, 3)),
])
def test_capture_shapes_and_grids(b0, stage, heads, q, kv):
    x = torch.randn(2, 3, 64, 96)
    with AttentionCapture(b0, stages=[stage]) as cap, torch.no_grad():
        b0(x)
    assert sorted(cap.maps) == [f"stages.{stage}.blocks.{j}" for j in range(2)]
    m = cap.maps[f"stages.{stage}.blocks.0"]
    assert m.attn.shape == (2, heads, q[0] * q[1], kv[0] * kv[1])
    assert (m.q_size, m.kv_size) == (q, kv)
    torch.testing.assert_close(m.attn.sum(-1), torch.ones(m.attn.shape[:-1]))  # softmax rows
    img = cap.query_map(f"stages.{stage}.blocks.0", qy=q[0] - 1, qx=0)
    assert img.shape == (2, *kv)
    torch.testing.assert_close(img.reshape(2, -1), m.attn[:, :, (q[0] - 1) * q[1]].mean(1))


def test_captured_matrix_equals_manual_softmax(b0):
    """Recompute stage-1 block-0 attention by hand from the module's own weights."""
    x = torch.randn(1, 3, 64, 64)
    attn = b0.backbone.stages[0].blocks[0].attn
    seen = {}
    h = b0.backbone.stages[0].blocks[0].norm1.register_forward_hook(lambda m, a, o: seen.setdefault("t", o))
    try:
        with AttentionCapture(b0, stages=[0], blocks=[0]) as cap, torch.no_grad():
            b0(x)
    finally:
        h.remove()
    t = seen["t"]  # (1, 256, 32) tokens entering the attention
    with torch.no_grad():
        q = attn.q(t)  # (1, 256, 32), one head
        grid = t.transpose(1, 2).reshape(1, 32, 16, 16)
        red = attn.norm(attn.sr(grid).flatten(2).transpose(1, 2))  # (1, 4, 32)
        k = attn.kv(red)[..., :32]
        expected = torch.softmax(q @ k.transpose(1, 2) * 32 ** -0.5, dim=-1)  # (1, 256, 4)
    torch.testing.assert_close(cap.maps["stages.0.blocks.0"].attn[:, 0], expected)


def test_outputs_unchanged_and_hooks_removed(b0):
    x = torch.randn(1, 3, 64, 64)
    modules = find_attention_modules(b0)
    fused_before = [m.fused_attn for m in modules.values()]
    before = _hook_counts(modules)
    with torch.no_grad():
        ref = b0(x)
        with AttentionCapture(b0) as cap:
            assert all(not m.fused_attn for m in modules.values())
            assert _hook_counts(modules) != before
            out = b0(x)
    assert len(cap.maps) == 8  # b0 has 2 blocks in each of 4 stages
    torch.testing.assert_close(out.p1, ref.p1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.p2, ref.p2, atol=1e-5, rtol=1e-5)
    assert _hook_counts(modules) == before
    assert [m.fused_attn for m in modules.values()] == fused_before


def test_hooks_removed_when_body_raises(b0):
    modules = find_attention_modules(b0)
    before = _hook_counts(modules)
    with pytest.raises(ZeroDivisionError):
        with AttentionCapture(b0, stages=[1]):
            raise ZeroDivisionError
    assert _hook_counts(modules) == before


def test_bad_stage_and_query_errors(b0):
    with pytest.raises(ValueError, match=r"stages \[4\] do not exist"):
        AttentionCapture(b0, stages=[4])
    with AttentionCapture(b0, stages=[3]) as cap, torch.no_grad():
        b0(torch.randn(1, 3, 64, 64))
    with pytest.raises(IndexError, match="outside the 2x2 grid"):
        cap.query_map("stages.3.blocks.0", 2, 0)


@pytest.mark.parametrize("q,expected", [((88, 88), (11, 11)), ((16, 24), (2, 3))])
def test_kv_grid_stage1_sr8(b0, q, expected):
    assert kv_grid(b0.backbone.stages[0].blocks[0].attn, q) == expected


def test_stage_attention_on_student():
    torch.manual_seed(0)
    model = create_model("polyp_pvt_b0").train()
    maps = stage_attention(model, torch.randn(1, 3, 64, 64))
    assert model.training  # mode restored
    assert [tuple(a.shape) for a, _ in maps] == [(1, 1, 256, 4), (1, 2, 64, 4), (1, 5, 16, 4), (1, 8, 4, 4)]
    assert [hw for _, hw in maps] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    torch.testing.assert_close(maps[0][0].sum(-1), torch.ones(1, 1, 256))
