"""KDAS: attention maps, SGM, the fixed method and the published ('kdas-official') arithmetic."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import kdas_lab.losses.kdas as kdas_module
from kdas_lab.losses import KDASLoss, KDASOfficialWarning, structure_loss
from kdas_lab.losses.row_attention import (
    official_kl,
    official_sgm,
    official_student_attention,
    row_attention,
    row_kl,
    sgm_loss,
    symmetrize,
)
from kdas_lab.models import PolypFeatures, PolypOutput


def make_output(p1, p2):
    b = p1.shape[0]
    feats = PolypFeatures(tuple(torch.zeros(b, 4, 2, 2) for _ in range(4)), torch.zeros(b, 4, 2, 2),
                          torch.zeros(b, 32, 2, 2), torch.zeros(b, 32, 2, 2))
    return PolypOutput(p1, p2, feats)


def rand_maps(seed, b=2, s=4, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    maps = [(torch.randn(b, 1, s, s, generator=g) * 2).requires_grad_(requires_grad) for _ in range(2)]
    mask = (torch.rand(b, 1, s, s, generator=g) > 0.5).float()
    return maps, mask


@pytest.fixture
def fresh_official_warning(monkeypatch):
    monkeypatch.setattr(kdas_module, "_official_warned", False)


def loop_row_attention(m):
    """softmax(M M^T / sqrt(W)) @ M for one S x W list-of-lists map, with loops."""
    h, w = len(m), len(m[0])
    out = []
    for i in range(h):
        scores = [sum(m[i][k] * m[j][k] for k in range(w)) / math.sqrt(w) for j in range(h)]
        z = [math.exp(v - max(scores)) for v in scores]
        att = [v / sum(z) for v in z]
        out.append([sum(att[j] * m[j][k] for j in range(h)) for k in range(w)])
    return out


def loop_fixed_at(ps, pt, t):
    """T^2 * mean over rows of KL(softmax(A_t row / T) || softmax(A_s row / T)), one head, loops."""
    total, rows = 0.0, 0
    for b in range(len(ps)):
        a_s, a_t = loop_row_attention(ps[b][0]), loop_row_attention(pt[b][0])
        for rs, rt in zip(a_s, a_t):
            zs = [math.exp(v / t) for v in rs]
            zt = [math.exp(v / t) for v in rt]
            qs, qt = [v / sum(zs) for v in zs], [v / sum(zt) for v in zt]
            total += sum(a * math.log(a / c) for a, c in zip(qt, qs))
            rows += 1
    return total / rows * t * t


def test_row_attention_identity_by_hand():
    a = 1 / (1 + math.exp(-1 / math.sqrt(2)))  # softmax([1/sqrt2, 0])[0]
    out = row_attention(torch.eye(2).view(1, 1, 2, 2))
    assert torch.allclose(out, torch.tensor([[a, 1 - a], [1 - a, a]]).view(1, 1, 2, 2), atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 1, 4, 4), (1, 1, 3, 5), (2, 2, 3, 3)])
def test_row_attention_is_sdpa_and_loops(shape):
    p = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(row_attention(p), F.scaled_dot_product_attention(p, p, p), atol=1e-6)
    assert torch.allclose(row_attention(p)[0, 0], torch.tensor(loop_row_attention(p[0, 0].tolist())), atol=1e-6)


def test_row_kl_by_hand():
    s, t = torch.tensor([[[[0.0, 0.0]]]]), torch.tensor([[[[2.0, 0.0]]]])
    q = 1 / (1 + math.exp(-1))  # softmax([2/2, 0])[0]
    expected = q * math.log(q / 0.5) + (1 - q) * math.log((1 - q) / 0.5)
    assert row_kl(s, t, 2.0).item() == pytest.approx(expected, abs=1e-6)
    assert row_kl(t, t, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_symmetrize_and_sgm_by_hand():
    s = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    assert torch.equal(symmetrize(s), torch.tensor([[2.0, 5.0], [5.0, 8.0]]).view(1, 1, 2, 2))
    assert sgm_loss(s, torch.zeros_like(s)).item() == pytest.approx((4 + 25 + 25 + 64) / 4)
    with pytest.raises(ValueError, match="square"):
        symmetrize(torch.zeros(1, 1, 2, 3))


@pytest.mark.parametrize("b,s,t", [(2, 4, 2.0), (1, 3, 1.0), (3, 2, 4.0)])
def test_kdas_total_matches_loops(b, s, t):
    (s1, s2), mask = rand_maps(10 + b, b, s)
    (t1, t2), _ = rand_maps(20 + b, b, s)
    out = KDASLoss("kdas", temperature=t, alpha=0.3)(make_output(s1, s2), make_output(t1, t2), mask)
    at = loop_fixed_at(s1.tolist(), t1.tolist(), t) + loop_fixed_at(s2.tolist(), t2.tolist(), t)
    sgm = sum(((a + a.transpose(-1, -2) - c - c.transpose(-1, -2)) ** 2).mean().item() for a, c in ((s1, t1), (s2, t2)))
    seg = structure_loss(s1, mask).item() + structure_loss(s2, mask).item()
    assert out.components["at"].item() == pytest.approx(at, abs=1e-5)
    assert out.components["sgm"].item() == pytest.approx(sgm, abs=1e-5)
    assert out.components["seg"].item() == pytest.approx(seg, abs=1e-6)
    assert out.total.item() == pytest.approx(0.7 * seg + 0.3 * (at + sgm), abs=1e-5)


def test_kdas_zero_when_student_is_teacher():
    (s1, s2), mask = rand_maps(0)
    out = KDASLoss("kdas")(make_output(s1, s2), make_output(s1.clone(), s2.clone()), mask)
    assert out.components["at"].abs().item() < 1e-6 and out.components["sgm"].item() == 0.0
    assert out.total.item() == pytest.approx(0.7 * out.components["seg"].item(), abs=1e-6)


def test_kdas_batch1_attention_gradient_nonzero_and_teacher_untouched():
    (s1, s2), mask = rand_maps(1, b=1, requires_grad=True)
    (t1, t2), _ = rand_maps(2, b=1, requires_grad=True)
    loss = KDASLoss("kdas", alpha=1.0, sgm_weight=0.0)  # total = L_AT only
    out = loss(make_output(s1, s2), make_output(t1, t2), mask)
    out.total.backward()
    assert s1.grad.abs().sum() > 0 and s2.grad.abs().sum() > 0
    assert t1.grad is None and t2.grad is None
    assert all(not v.requires_grad for v in out.components.values())


def test_kdas_weights_and_non_square():
    (s1, s2), mask = rand_maps(4)
    (t1, t2), _ = rand_maps(5)
    args = (make_output(s1, s2), make_output(t1, t2), mask)
    full = KDASLoss("kdas")(*args)
    only_seg = KDASLoss("kdas", at_weight=0.0, sgm_weight=0.0)(*args)
    half = KDASLoss("kdas", at_weight=0.5, sgm_weight=2.0)(*args)
    at, sgm = full.components["at"], full.components["sgm"]
    assert torch.allclose(only_seg.total, 0.7 * full.components["seg"])
    assert torch.allclose(half.total, 0.7 * full.components["seg"] + 0.3 * (0.5 * at + 2.0 * sgm))
    rect = torch.zeros(2, 1, 4, 6)
    with pytest.raises(ValueError, match="square"):
        KDASLoss("kdas")(make_output(rect, rect), make_output(rect, rect), torch.zeros(2, 1, 4, 6))
    with pytest.raises(ValueError, match="kdas, kdas-official"):
        KDASLoss("kdas-v2")
    with pytest.raises(ValueError, match="needs the teacher"):
        KDASLoss("kdas")(args[0], None, mask)


def test_official_warns_once(fresh_official_warning):
    with pytest.warns(KDASOfficialWarning, match="zero gradient"):
        KDASLoss("kdas-official")
    with warnings.catch_warnings():
        warnings.simplefilter("error", KDASOfficialWarning)
        KDASLoss("kdas-official")
    assert KDASLoss("kdas-official").legacy_bce and not KDASLoss("kdas").legacy_bce


def test_official_student_term_constant_with_zero_gradient():
    p = torch.randn(2, 1, 3, 3, requires_grad=True)
    term = official_student_attention(p, 2.0)
    assert torch.equal(term, torch.full_like(term, 0.5))
    term.sum().backward()
    assert torch.equal(p.grad, torch.zeros_like(p))


def published_total(s1, s2, t1, t2, mask, t=2.0, alpha=0.3):
    """The arithmetic of spec section 2, spelled out with the legacy calls it describes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        def seg(pred):
            weit = 1 + 5 * torch.abs(F.avg_pool2d(mask, kernel_size=31, stride=1, padding=15) - mask)
            wbce = F.binary_cross_entropy_with_logits(pred, mask, reduce="none")
            wbce = (weit * wbce).sum(dim=(2, 3)) / weit.sum(dim=(2, 3))
            prob = torch.sigmoid(pred)
            inter, union = (prob * mask * weit).sum(dim=(2, 3)), ((prob + mask) * weit).sum(dim=(2, 3))
            return (wbce + 1 - (inter + 1) / (union - inter + 1)).mean()
        kl = torch.nn.KLDivLoss(reduction="mean")
        kd1 = kl(F.softmax(s1) / t, F.scaled_dot_product_attention(t1, t1, t1) / t)
        kd2 = kl(F.softmax(s2) / t, F.scaled_dot_product_attention(t2, t2, t2) / t)
        a, c = s1.squeeze(), t1.squeeze()
        sgm = F.mse_loss(a + a.transpose(1, 2), c + c.transpose(1, 2))
        return (1 - alpha) * (seg(s1) + seg(s2)) + alpha * ((kd1 + kd2) * t**2 + sgm)


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_official_equals_published_arithmetic_when_finite(fresh_official_warning, t):
    (s1, s2), mask = rand_maps(6)
    t1, t2 = torch.rand(2, 1, 4, 4) + 0.1, torch.rand(2, 1, 4, 4) + 0.1  # positive: finite KL
    with pytest.warns(KDASOfficialWarning):
        loss = KDASLoss("kdas-official", temperature=t)
    out = loss(make_output(s1, s2), make_output(t1, t2), mask)
    assert torch.isfinite(out.total)
    assert torch.allclose(out.total, published_total(s1, s2, t1, t2, mask, t), atol=1e-6, rtol=0)


def test_official_nan_total_and_gradients_of_seg_plus_sgm(fresh_official_warning):
    (s1, s2), mask = rand_maps(7, requires_grad=True)
    (t1, t2), _ = rand_maps(8, requires_grad=True)
    assert (t1 < 0).any()
    with pytest.warns(KDASOfficialWarning):
        loss = KDASLoss("kdas-official")
    out = loss(make_output(s1, s2), make_output(t1, t2), mask)
    assert torch.isnan(out.total) and torch.isnan(out.components["at"])
    g_off = torch.autograd.grad(out.total, (s1, s2))
    assert t1.grad is None and t2.grad is None
    a, c = s1 + s1.transpose(-1, -2), (t1 + t1.transpose(-1, -2)).detach()
    ref = 0.7 * (structure_loss(s1, mask, True) + structure_loss(s2, mask, True)) + 0.3 * F.mse_loss(a, c)
    g_ref = torch.autograd.grad(ref, (s1, s2))
    for got, want in zip(g_off, g_ref):
        assert torch.isfinite(got).all() and torch.allclose(got, want, atol=1e-6, rtol=0)
    at_only = official_kl(official_student_attention(s1, 2.0), official_student_attention(t1, 2.0) - 1.0)
    (g_at,) = torch.autograd.grad(at_only, s1)
    assert torch.equal(g_at, torch.zeros_like(s1))


def test_official_batch1_raises_clearly(fresh_official_warning):
    (s1, s2), mask = rand_maps(9, b=1)
    with pytest.warns(KDASOfficialWarning):
        loss = KDASLoss("kdas-official")
    with pytest.raises(ValueError, match="batch size 1"):
        loss(make_output(s1, s2), make_output(s1, s2), mask)
    with pytest.raises(ValueError, match="batch size 1"):
        official_sgm(s1, s1)


def test_sgm_heads_p1_keeps_the_sgm_on_p1_only_as_published():
    (s1, s2), mask = rand_maps(6)
    (t1, t2), _ = rand_maps(7)
    both = KDASLoss("kdas")(make_output(s1, s2), make_output(t1, t2), mask).components
    p1 = KDASLoss("kdas", sgm_heads="p1")(make_output(s1, s2), make_output(t1, t2), mask).components
    assert torch.allclose(p1["sgm"], sgm_loss(s1, t1))
    assert torch.allclose(both["sgm"], sgm_loss(s1, t1) + sgm_loss(s2, t2))
    assert torch.allclose(p1["at"], both["at"])  # the attention term still reads both heads
    with pytest.raises(ValueError, match="sgm_heads"):
        KDASLoss("kdas", sgm_heads="p2")
    with pytest.raises(ValueError, match="always P1"):
        KDASLoss("kdas-official", sgm_heads="p1")
