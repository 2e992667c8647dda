"""Structure loss: hand values, an explicit-loop reference, and the published legacy BCE."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from kdas_lab.losses import StructureLoss, structure_loss
from kdas_lab.losses.structure import boundary_weight, box_mean, weighted_bce, weighted_iou


def loop_structure_loss(pred, mask, legacy=False):
    """Pure-python reference: 31x31 zero-padded box mean (divisor 961), per-pixel BCE, loops."""
    B, _, H, W = pred.shape
    p, g = pred.tolist(), mask.tolist()
    bces = [[[max(p[b][0][i][j], 0) - p[b][0][i][j] * g[b][0][i][j] + math.log1p(math.exp(-abs(p[b][0][i][j])))
              for j in range(W)] for i in range(H)] for b in range(B)]
    mean_bce = sum(v for s in bces for r in s for v in r) / (B * H * W)
    losses = []
    for b in range(B):
        num = den = inter = union = 0.0
        for i in range(H):
            for j in range(W):
                box = sum(g[b][0][u][v] for u in range(max(0, i - 15), min(H, i + 16))
                          for v in range(max(0, j - 15), min(W, j + 16))) / 961
                w = 1 + 5 * abs(box - g[b][0][i][j])
                bce = mean_bce if legacy else bces[b][i][j]
                num, den = num + w * bce, den + w
                prob = 1 / (1 + math.exp(-p[b][0][i][j]))
                inter += w * prob * g[b][0][i][j]
                union += w * (prob + g[b][0][i][j])
        losses.append(num / den + 1 - (inter + 1) / (union - inter + 1))
    return sum(losses) / B


def test_hand_value_zero_logits_empty_mask():
    # p = 0.5 everywhere, G = 0: w = 1, bce = log 2, inter = 0, union = 4 * 0.5 = 2.
    pred, mask = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    expected = math.log(2) + 1 - 1 / 3
    assert structure_loss(pred, mask).item() == pytest.approx(expected, abs=1e-6)
    assert structure_loss(pred, mask, legacy_bce=True).item() == pytest.approx(expected, abs=1e-6)


def test_boundary_weight_single_pixel():
    # A 1x1 foreground image: the zero-padded 31x31 mean is 1/961.
    w = boundary_weight(torch.ones(1, 1, 1, 1))
    assert w.item() == pytest.approx(1 + 5 * (1 - 1 / 961), abs=1e-6)


@pytest.mark.parametrize(("kernel_size", "factor"), [(7, 2.0), (15, 0.5), (1, 3.0)])
def test_boundary_weight_kernel_and_factor(kernel_size, factor):
    mask = (torch.rand(2, 1, 20, 24, generator=torch.Generator().manual_seed(kernel_size)) > 0.5).float()
    pooled = F.avg_pool2d(mask, kernel_size, stride=1, padding=kernel_size // 2)
    expected = 1 + factor * (pooled - mask).abs()
    assert torch.allclose(boundary_weight(mask, kernel_size, factor), expected, atol=1e-6, rtol=0)
    assert torch.equal(boundary_weight(mask), boundary_weight(mask, 31, 5.0))


def test_boundary_weight_rejects_an_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        boundary_weight(torch.zeros(1, 1, 8, 8), kernel_size=4)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 1, 5, 7), (1, 2, 40, 33)])
def test_box_mean_is_avg_pool31(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(shape[-1]))
    assert torch.allclose(box_mean(x, 31), F.avg_pool2d(x, 31, stride=1, padding=15), atol=1e-6, rtol=0)
    assert torch.allclose(box_mean(x, 3), F.avg_pool2d(x, 3, stride=1, padding=1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("shape", [(2, 1, 5, 5), (1, 1, 3, 4), (3, 1, 4, 6)])
def test_matches_loop_reference(legacy, shape):
    g = torch.Generator().manual_seed(sum(shape))
    pred = torch.randn(shape, generator=g) * 3
    mask = (torch.rand(shape, generator=g) > 0.5).float() * torch.rand(shape, generator=g)  # soft mask
    got = structure_loss(pred, mask, legacy_bce=legacy).item()
    assert got == pytest.approx(loop_structure_loss(pred, mask, legacy), abs=1e-5)


def test_legacy_matches_published_reduce_argument():
    """The published call ``reduce='none'`` is the mean BCE; our legacy path is the same arithmetic."""
    g = torch.Generator().manual_seed(0)
    pred, mask = torch.randn(2, 1, 8, 8, generator=g), (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        published_bce = F.binary_cross_entropy_with_logits(pred, mask, reduce="none")
    assert published_bce.dim() == 0  # the legacy argument reduced to a scalar
    weight = 1 + 5 * torch.abs(F.avg_pool2d(mask, kernel_size=31, stride=1, padding=15) - mask)
    assert torch.allclose(weight, boundary_weight(mask), atol=1e-6, rtol=0)
    published_wbce = (weight * published_bce).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
    assert torch.equal(weighted_bce(pred, mask, weight, legacy=True), published_wbce)
    assert torch.allclose(published_wbce, published_bce.expand(2, 1), atol=1e-6)  # degenerates to the mean
    published = (published_wbce + weighted_iou(pred, mask, weight)).mean()
    assert torch.allclose(structure_loss(pred, mask, legacy_bce=True), published, atol=1e-6, rtol=0)
    assert not torch.allclose(structure_loss(pred, mask, legacy_bce=False), published)


def test_true_loss_is_mean_of_per_sample_losses():
    g = torch.Generator().manual_seed(1)
    pred, mask = torch.randn(3, 1, 6, 6, generator=g), (torch.rand(3, 1, 6, 6, generator=g) > 0.5).float()
    per_sample = torch.stack([structure_loss(pred[i:i + 1], mask[i:i + 1]) for i in range(3)])
    assert torch.allclose(structure_loss(pred, mask), per_sample.mean(), atol=1e-6)
    assert torch.allclose(StructureLoss()(pred, mask), structure_loss(pred, mask))


def test_gradient_flows_and_decreases_loss():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1:3, 1:3] = 1
    pred = torch.zeros(1, 1, 4, 4, requires_grad=True)
    loss = structure_loss(pred, mask)
    loss.backward()
    assert (pred.grad[mask.bool()] < 0).all() and (pred.grad[~mask.bool()] > 0).all()


@pytest.mark.parametrize("pred_shape,mask_shape", [((2, 1, 4, 4), (2, 1, 4, 5)), ((2, 4, 4), (2, 4, 4)),
                                                   ((2, 2, 4, 4), (2, 2, 4, 4))])
def test_bad_shapes_raise(pred_shape, mask_shape):
    with pytest.raises(ValueError, match="structure loss"):
        structure_loss(torch.zeros(pred_shape), torch.zeros(mask_shape))
