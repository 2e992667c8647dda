"""The ``kdas`` protocol reproduces the published KDAS evaluator; ``matlab`` agrees with PySODMetrics."""
from pathlib import Path

import numpy as np
import pytest

from kdas_lab.bench.eval_speed import synthetic_pair
from kdas_lab.metrics import evaluate_images, image_scores
from kdas_lab.metrics.s_measure import centroid

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"


@pytest.fixture(scope="module")
def public():
    torch = pytest.importorskip("torch")
    path = SPEC / "metrics_public.pt"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return torch.load(path, weights_only=True)


def test_kdas_protocol_matches_published_evaluator(public):
    preds = [p.numpy() for _, p, _ in public["pairs"]]
    gts = [g.numpy() for _, _, g in public["pairs"]]
    summary, scores = evaluate_images(preds, gts, "kdas", return_scores=True)
    for key, value in public["kdas_eval_py"].items():
        assert summary[key] == pytest.approx(value, abs=1e-6), key
    for (name, _, _), s in zip(public["pairs"], scores):
        mine = s.summary()
        for key, value in public["kdas_eval_py_per_image"][name].items():
            assert mine[key] == pytest.approx(value, abs=1e-6), (name, key)


def test_protocol_choice_changes_numbers(public):
    preds = [p.numpy() for _, p, _ in public["pairs"]]
    gts = [g.numpy() for _, _, g in public["pairs"]]
    a, b = evaluate_images(preds, gts, "kdas"), evaluate_images(preds, gts, "matlab")
    assert abs(a["meanDic"] - b["meanDic"]) > 1e-4  # case02/06 are not min-max normalised under kdas


def _pairs(public):
    pairs = [(p.numpy(), g.numpy()) for _, p, g in public["pairs"]]
    rng = np.random.default_rng(0)
    pairs += [synthetic_pair(rng, (60 + 9 * i, 80 + 7 * i)) for i in range(6)]
    pairs.append((np.full((30, 40), 77, np.uint8), pairs[0][1][:30, :40]))  # constant prediction
    pairs.append((pairs[3][0][:50, :50], np.zeros((50, 50), np.uint8)))  # empty mask
    pairs.append((pairs[3][0][:50, :50], np.full((50, 50), 255, np.uint8)))  # full mask
    return pairs


def test_matlab_protocol_agrees_with_pysodmetrics(public):
    sod = pytest.importorskip("py_sod_metrics")
    for i, (pred, gt) in enumerate(_pairs(public)):
        mine = image_scores(pred, gt, "matlab")
        sm, em, wfm, mae = sod.Smeasure(), sod.Emeasure(), sod.WeightedFmeasure(), sod.MAE()
        fm = sod.FmeasureV2({k: h(with_dynamic=True, with_adaptive=False) for k, h in
                             {"dice": sod.DICEHandler, "iou": sod.IOUHandler, "sen": sod.SensitivityHandler}.items()})
        for m in (sm, em, wfm, mae, fm):
            m.step(pred, gt)
        assert mine.mae == pytest.approx(mae.get_results()["mae"], abs=1e-6)
        assert mine.wfm == pytest.approx(wfm.get_results()["wfm"], abs=1e-6)
        assert np.allclose(mine.em, em.get_results()["em"]["curve"], atol=1e-6, rtol=0)
        for k in ("dice", "iou", "sen"):
            assert np.allclose(getattr(mine, k), fm.get_results()[k]["dynamic"], atol=1e-6, rtol=0), (i, k)
        g = gt > 128
        rows, cols = np.nonzero(g)
        tie = rows.size and any(m % 1 == 0.5 and int(m) % 2 == 0 for m in (rows.mean(), cols.mean()))
        if tie:  # by design: MATLAB rounds half away from zero, PySODMetrics half to even
            assert centroid(g, "matlab") != tuple(int(np.round(m)) + 1 for m in (rows.mean(), cols.mean()))
        else:
            assert mine.sm == pytest.approx(sm.get_results()["sm"], abs=1e-6), i


def test_specificity_differs_from_pysodmetrics_by_design(public):
    sod = pytest.importorskip("py_sod_metrics")
    pred, gt = _pairs(public)[-3]  # constant map: TP = 0 at high thresholds
    fm = sod.FmeasureV2({"spe": sod.SpecificityHandler(with_dynamic=True, with_adaptive=False)})
    fm.step(pred, gt)
    theirs, mine = fm.get_results()["spe"]["dynamic"], image_scores(pred, gt, "matlab").spe
    assert theirs[0] == 1.0 and mine[0] == 0.0  # toolbox: 0 when TP = 0
    assert mine[-1] == pytest.approx(theirs[-1])
