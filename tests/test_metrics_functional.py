"""Metric building blocks on hand-computed examples."""
import numpy as np
import pytest

from kdas_lab.bench.eval_speed import naive_emeasure
from kdas_lab.metrics import functional as F
from kdas_lab.metrics import image_scores, mean_dice, prepare_pair
from kdas_lab.metrics.s_measure import centroid, s_measure
from kdas_lab.metrics.weighted_f import weighted_f_measure


def test_threshold_counts_hand_example():
    pred = np.array([[255, 128], [0, 64]], np.uint8)
    gt = np.array([[255, 255], [0, 0]], np.uint8)
    p, g, counts = prepare_pair(pred, gt, "matlab")
    assert counts.tolist() == [[256, 129], [1, 65]]  # level + 1 thresholds at or below each pixel
    tp, fp = F.threshold_counts(counts, g)
    # descending threshold j is level 255 - j
    assert tp[0] == 1 and tp[126] == 1 and tp[127] == 2 and tp[255] == 2
    assert fp[190] == 0 and fp[191] == 1 and fp[254] == 1 and fp[255] == 2


@pytest.mark.parametrize("fn,expected", [
    (F.dice_curve, [0.0, 2 / 3, 4 / 5]),
    (F.iou_curve, [0.0, 1 / 2, 2 / 3]),
    (F.sensitivity_curve, [0.0, 1 / 2, 1.0]),
])
def test_count_curves(fn, expected):
    tp, fp = np.array([0, 1, 2]), np.array([0, 0, 1])
    assert np.allclose(fn(tp, fp, 2), expected)


def test_specificity_is_zero_without_true_positives():
    tp, fp = np.array([0, 1, 2]), np.array([1, 1, 2])
    assert np.allclose(F.specificity_curve(tp, fp, n_fg=2, n_total=6), [0.0, 3 / 4, 2 / 4])
    assert np.all(F.specificity_curve(tp, fp, n_fg=6, n_total=6) == 0)  # no negatives at all


@pytest.mark.parametrize("seed,fg", [(0, 0.2), (1, 0.0), (2, 1.0), (3, 0.5)])
def test_emeasure_from_counts_equals_pixelwise(seed, fg):
    rng = np.random.default_rng(seed)
    g = rng.random((23, 31)) < fg
    pred = rng.integers(0, 256, (23, 31)).astype(np.uint8)
    _, gb, counts = prepare_pair(pred, np.where(g, 255, 0).astype(np.uint8), "kdas")
    tp, fp = F.threshold_counts(counts, gb)
    curve = F.emeasure_curve(tp, fp, int(gb.sum()), gb.size)
    p = pred / 255.0
    for j in (0, 40, 128, 200, 255):
        assert curve[j] == pytest.approx(naive_emeasure(p >= np.linspace(1, 0, 256)[j], gb), abs=1e-12)


def test_s_measure_edge_cases_and_perfect_map():
    gt = np.zeros((10, 12), bool)
    gt[2:6, 3:9] = True
    assert s_measure(gt.astype(float), gt) == pytest.approx(1.0, abs=1e-9)
    pred = np.full((10, 12), 0.25)
    assert s_measure(pred, np.zeros_like(gt)) == pytest.approx(0.75)
    assert s_measure(pred, np.ones_like(gt)) == pytest.approx(0.25)


def test_centroid_rounding_rules():
    gt = np.zeros((5, 8), bool)
    gt[1, 2:4] = True  # 0-based column mean 2.5, row mean 1.0
    assert centroid(gt, "matlab") == (2, 4)  # MATLAB round(3.5) = 4 (1-based, half away from zero)
    assert centroid(gt, "rounded") == (1, 2)  # numpy round(2.5) = 2 (0-based, half to even)


def test_weighted_f_perfect_empty_and_zero_prediction():
    gt = np.zeros((20, 20), bool)
    gt[5:12, 6:15] = True
    assert weighted_f_measure(gt.astype(float), gt) == pytest.approx(1.0, abs=1e-9)
    assert weighted_f_measure(np.zeros((20, 20)), np.zeros_like(gt)) == 0.0
    assert weighted_f_measure(np.zeros((20, 20)), gt) == 0.0


def test_mae_and_no_nan_for_degenerate_inputs():
    assert F.mae(np.array([[0.5, 1.0]]), np.array([[True, False]])) == pytest.approx(0.75)
    for gt in (np.zeros((16, 16), np.uint8), np.full((16, 16), 255, np.uint8)):
        for pred in (np.zeros((16, 16), np.uint8), np.full((16, 16), 200, np.uint8)):
            for proto in ("matlab", "kdas"):
                s = image_scores(pred, gt, proto).summary()
                assert all(np.isfinite(v) for v in s.values()), (proto, s)


def test_protocols_binarise_masks_differently():
    gt = np.array([[128, 129]], np.uint8)
    assert prepare_pair(np.zeros((1, 2), np.uint8), gt, "matlab")[1].tolist() == [[False, True]]
    assert prepare_pair(np.zeros((1, 2), np.uint8), gt, "kdas")[1].tolist() == [[True, True]]


def test_kdas_requires_equal_sizes_matlab_resizes():
    pred, gt = np.zeros((8, 8), np.uint8), np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match="size"):
        image_scores(pred, gt, "kdas", name="x.png")
    assert image_scores(pred, gt, "matlab").dice.shape == (256,)


def test_mean_dice_on_tensors():
    torch = pytest.importorskip("torch")
    gt = torch.zeros(2, 1, 8, 8)
    gt[:, :, 2:6, 2:6] = 1
    # perfect map: Dice 1 at 255 thresholds; at t = 0 every pixel is on: 2*16 / (16 + 64) = 0.4
    assert mean_dice(gt.clone(), gt) == pytest.approx((255 + 0.4) / 256)
    assert mean_dice(torch.zeros(2, 1, 8, 8), gt) == pytest.approx(2 * 16 / (16 + 64) / 256)
