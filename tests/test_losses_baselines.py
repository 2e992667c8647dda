"""Distillation baselines: hand values, zero at student == teacher, gradients to the student only."""
import math

import pytest
import torch

from kdas_lab.losses import ATLoss, CWDLoss, DISTLoss, FitNetLoss, KDLoss, SKDLoss, detach_tree, structure_loss
from kdas_lab.losses.at import at_loss, spatial_attention
from kdas_lab.losses.cwd import channel_wise_kl
from kdas_lab.losses.dist import intra_class_relation, pearson
from kdas_lab.losses.fitnet import hint_loss
from kdas_lab.losses.kd import bernoulli_kl
from kdas_lab.losses.skd import pairwise_loss, pooled_affinity
from kdas_lab.models import PolypFeatures, PolypOutput

STUDENT_WIDTHS, TEACHER_WIDTHS = (4, 6, 8, 10), (6, 8, 12, 16)


def fake_output(seed, widths, b=2, s=32, requires_grad=False):
    """Random PolypOutput with the real strides (4/8/16/32) at input size s."""
    g = torch.Generator().manual_seed(seed)
    def r(*shape):
        return torch.randn(*shape, generator=g).requires_grad_(requires_grad)
    stages = tuple(r(b, c, s // st, s // st) for c, st in zip(widths, (4, 8, 16, 32)))
    feats = PolypFeatures(stages, r(b, widths[0], s // 4, s // 4), r(b, 32, s // 8, s // 8), r(b, 32, s // 8, s // 8))
    return PolypOutput(r(b, 1, s, s), r(b, 1, s, s), feats)


def make_loss(name):
    if name == "fitnet":
        return FitNetLoss(STUDENT_WIDTHS[2], TEACHER_WIDTHS[2])
    return {"kd": KDLoss, "at": ATLoss, "cwd": CWDLoss, "skd": SKDLoss, "dist": DISTLoss}[name]()


def leaves(out):
    return [out.p1, out.p2, *out.features.stages, out.features.cim, out.features.cfm, out.features.sam]


BASELINES = ["kd", "at", "cwd", "skd", "dist", "fitnet"]


@pytest.mark.parametrize("name", BASELINES)
def test_gradient_reaches_student_never_teacher(name):
    student = fake_output(0, STUDENT_WIDTHS, requires_grad=True)
    teacher = fake_output(1, TEACHER_WIDTHS, requires_grad=True)
    mask = (torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    loss = make_loss(name)
    assert loss.needs_teacher
    out = loss(student, teacher, mask)
    assert set(out.components) >= {"seg", name} and torch.isfinite(out.total)
    assert out.components[name].item() > 0
    assert torch.allclose(out.total, 0.7 * out.components["seg"] + 0.3 * out.components[name])
    out.total.backward()
    assert all(t.grad is None for t in leaves(teacher))  # the loss detaches the teacher
    assert sum(float(s.grad.abs().sum()) for s in leaves(student) if s.grad is not None) > 0
    # the distillation term alone (no segmentation part) also reaches the student
    term, _ = loss.distill_term(student, detach_tree(teacher))
    grads = torch.autograd.grad(term, leaves(student), allow_unused=True)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    with pytest.raises(ValueError, match="needs the teacher"):
        loss(student, None, mask)


@pytest.mark.parametrize("name", ["kd", "at", "cwd", "skd", "dist"])
def test_zero_when_student_equals_teacher(name):
    student = fake_output(3, TEACHER_WIDTHS)
    mask = torch.zeros(2, 1, 32, 32)
    out = make_loss(name)(student, student, mask)
    assert abs(out.components[name].item()) < 1e-5
    seg = structure_loss(student.p1, mask) + structure_loss(student.p2, mask)
    assert out.total.item() == pytest.approx(0.7 * seg.item(), abs=1e-5)


def test_fitnet_zero_with_identity_adapter():
    loss = FitNetLoss(8, 8)
    with torch.no_grad():
        loss.adapter.weight.copy_(torch.eye(8).view(8, 8, 1, 1))
        loss.adapter.bias.zero_()
    student = fake_output(4, (4, 6, 8, 10))
    assert loss(student, student, torch.zeros(2, 1, 32, 32)).components["fitnet"].item() == 0.0
    assert list(loss.parameters())[0] is loss.adapter.weight  # trainable, owned by the loss


def test_bernoulli_kl_and_kd_by_hand():
    q = 1 / (1 + math.exp(-2))  # sigmoid(2)
    expected = q * math.log(q / 0.5) + (1 - q) * math.log((1 - q) / 0.5)
    assert bernoulli_kl(torch.zeros(1), torch.tensor([2.0])).item() == pytest.approx(expected, abs=1e-6)
    assert bernoulli_kl(torch.zeros(1), torch.tensor([4.0]), 2.0).item() == pytest.approx(expected, abs=1e-6)
    z, four = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 4.0)
    empty = PolypFeatures((), z, z, z)
    term, _ = KDLoss(temperature=2.0).distill_term(PolypOutput(z, z, empty), PolypOutput(four, z, empty))
    assert term.item() == pytest.approx(4 * expected, abs=1e-5)  # T^2 * (KL head 1 + 0)


def test_at_by_hand():
    s = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    t = torch.tensor([0.0, 3.0]).view(1, 1, 1, 2)
    assert torch.allclose(spatial_attention(t), torch.tensor([[0.0, 1.0]]))
    assert at_loss(s, t).item() == pytest.approx(1.0)  # mean((1, -1)^2)
    two_ch = torch.tensor([[3.0, 0.0], [4.0, 0.0]]).view(1, 2, 1, 2)  # mean_c x^2 = (12.5, 0)
    assert at_loss(two_ch, s).item() == pytest.approx(0.0)
    big_t = torch.ones(1, 1, 4, 4)  # resized teacher map to the student's 2 x 2
    assert at_loss(torch.ones(1, 3, 2, 2), big_t).item() == pytest.approx(0.0, abs=1e-7)


def test_cwd_by_hand():
    s, t = torch.zeros(1, 1, 1, 2), torch.tensor([4.0, 0.0]).view(1, 1, 1, 2)
    q = 1 / (1 + math.exp(-1))  # softmax([4/4, 0])[0]
    expected = 16 * (q * math.log(q / 0.5) + (1 - q) * math.log((1 - q) / 0.5))
    assert channel_wise_kl(s, t, 4.0).item() == pytest.approx(expected, abs=1e-5)
    two = torch.cat([t, s], dim=1)  # second channel identical: mean over channels halves it
    assert channel_wise_kl(torch.zeros(1, 2, 1, 2), two, 4.0).item() == pytest.approx(expected / 2, abs=1e-5)
    with pytest.raises(ValueError, match="equal shapes"):
        channel_wise_kl(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))


def test_cwd_features_flag_adds_decoder_terms():
    student, teacher = fake_output(5, STUDENT_WIDTHS), fake_output(6, TEACHER_WIDTHS)
    with_f, _ = CWDLoss(features=True).distill_term(student, teacher)
    without, _ = CWDLoss(features=False).distill_term(student, teacher)
    extra = channel_wise_kl(student.features.cfm, teacher.features.cfm) + \
        channel_wise_kl(student.features.sam, teacher.features.sam)
    assert torch.allclose(with_f, without + extra)


def test_skd_affinity_and_pairwise_by_hand():
    # 2 x 2 map, scale 0.5 -> 1 x 1 pooling -> 4 nodes with vectors (1,0), (0,1), (1,1), (-1,0)
    feat = torch.tensor([[[1.0, 0.0], [1.0, -1.0]], [[0.0, 1.0], [1.0, 0.0]]]).unsqueeze(0)  # (1, 2, 2, 2)
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[1, 0, r, -1], [0, 1, r, 0], [r, r, 1, -r], [-1, 0, -r, 1]])
    assert torch.allclose(pooled_affinity(feat, 0.5)[0], expected, atol=1e-6)
    other = torch.ones(1, 2, 2, 2)  # all nodes parallel: affinity all ones
    assert pairwise_loss(feat, other).item() == pytest.approx(((expected - 1) ** 2).mean().item(), abs=1e-6)
    pooled = pooled_affinity(torch.randn(2, 3, 8, 8), 0.5)  # 4 x 4 pooling -> 2 x 2 = 4 nodes
    assert pooled.shape == (2, 4, 4)


def test_skd_weights():
    student, teacher = fake_output(7, STUDENT_WIDTHS), fake_output(8, TEACHER_WIDTHS)
    term, parts = SKDLoss(pixel_weight=2.0, pair_weight=3.0).distill_term(student, teacher)
    assert torch.allclose(term, 2.0 * parts["skd_pixel"] + 3.0 * parts["skd_pair"])
    pixel = bernoulli_kl(student.p1, teacher.p1).mean() + bernoulli_kl(student.p2, teacher.p2).mean()
    assert torch.allclose(parts["skd_pixel"], pixel)


def test_dist_pearson_by_hand():
    a = torch.tensor([1.0, 2.0, 3.0])
    assert pearson(a, 2 * a + 1).item() == pytest.approx(1.0, abs=1e-6)
    assert pearson(a, torch.tensor([3.0, 2.0, 1.0])).item() == pytest.approx(-1.0, abs=1e-6)
    assert pearson(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])).item() == pytest.approx(-0.5, abs=1e-6)
    z = torch.tensor([0.0, 2.0, -2.0])
    assert intra_class_relation(z, -z).item() == pytest.approx(2.0, abs=1e-6)
    zs, zt = [0.0, 1.0, 3.0], [0.0, 2.0, 6.0]  # at T = 2: sigmoid(0, .5, 1.5) vs sigmoid(0, 1, 3)
    ps, pt = [1 / (1 + math.exp(-v / 2)) for v in zs], [1 / (1 + math.exp(-v / 2)) for v in zt]
    assert intra_class_relation(torch.tensor(zs), torch.tensor(zt), 2.0).item() == pytest.approx(
        1 - sum((a - sum(ps) / 3) * (b - sum(pt) / 3) for a, b in zip(ps, pt)) / math.sqrt(
            sum((a - sum(ps) / 3) ** 2 for a in ps) * sum((b - sum(pt) / 3) ** 2 for b in pt)), abs=1e-6)


def test_fitnet_by_hand():
    loss = FitNetLoss(2, 1, stage=0)
    with torch.no_grad():
        loss.adapter.weight.copy_(torch.tensor([1.0, 1.0]).view(1, 2, 1, 1))
        loss.adapter.bias.fill_(0.5)
    f_s = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)  # adapted: 1 + 2 + 0.5 = 3.5
    assert hint_loss(loss.adapter(f_s), torch.full((1, 1, 1, 1), 1.5)).item() == pytest.approx(4.0)
    assert hint_loss(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 4, 4)).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="channels"):
        hint_loss(torch.ones(1, 2, 2, 2), torch.ones(1, 3, 2, 2))
    with pytest.raises(ValueError, match="stage"):
        FitNetLoss(2, 1, stage=4)
