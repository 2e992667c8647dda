"""Inference, model / map evaluation, the evaluate CLIs, efficiency and evaluator-speed benchmarks."""
import argparse
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from kdas_lab.bench.eval_speed import run_eval_bench, synthetic_pair
from kdas_lab.cli import evaluate as cli
from kdas_lab.evaluation import evaluate_maps, evaluate_model
from kdas_lab.evaluation.inference import predict_image, predict_probs, to_png_levels
from kdas_lab.metrics import METRIC_KEYS
from kdas_lab.models import create_model, save_checkpoint


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return create_model("polyp_pvt_b0")


@pytest.fixture()
def layout(tmp_path):
    """ROOT/TestDataset/{SetA,SetB}/{images,masks}: 3 small pairs each, odd sizes, PNG masks."""
    rng = np.random.default_rng(0)
    for name, shape in (("SetA", (50, 70)), ("SetB", (45, 40))):
        for sub in ("images", "masks"):
            (tmp_path / "TestDataset" / name / sub).mkdir(parents=True)
        for i in range(3):
            pred, gt = synthetic_pair(rng, shape)
            img = np.stack([pred, 255 - pred, gt // 2], axis=-1)
            Image.fromarray(img).save(tmp_path / "TestDataset" / name / "images" / f"s{i}.jpg")
            Image.fromarray(gt).save(tmp_path / "TestDataset" / name / "masks" / f"s{i}.png")
    return tmp_path


def test_predict_probs_and_image(student):
    student.train()
    probs = predict_probs(student, torch.randn(2, 3, 64, 64))
    assert probs.shape == (2, 1, 64, 64) and 0 <= probs.min() and probs.max() <= 1
    assert student.training  # mode restored
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3)).astype(np.uint8)
    m = predict_image(student, image, size=64)
    assert m.shape == (50, 70) and m.dtype == np.float32
    assert m.min() == 0.0 and m.max() == pytest.approx(1.0, abs=1e-4)  # min-max (+1e-8) per image
    assert to_png_levels(m).max() == 255
    assert to_png_levels(np.array([0.0, 0.5, 1.0])).tolist() == [0, 128, 255]


@pytest.mark.parametrize("protocol", ["matlab", "kdas"])
def test_model_evaluation_equals_evaluation_of_saved_maps(student, layout, tmp_path, protocol):
    maps = tmp_path / "maps"
    df = evaluate_model(student, layout, protocol=protocol, size=64, save_maps=maps, progress=False)
    assert list(df.index) == ["SetA", "SetB"] and list(df.columns) == list(METRIC_KEYS)
    assert df.notna().all().all()
    assert sorted(p.name for p in (maps / "SetA").iterdir()) == ["s0.png", "s1.png", "s2.png"]
    again = evaluate_maps(maps, layout / "TestDataset", protocol=protocol, workers=0, progress=False)
    pd.testing.assert_frame_equal(df, again)


def test_evaluate_maps_parallel_equals_serial(layout):
    pred = layout / "TestDataset"  # masks evaluated against themselves: a perfect prediction
    root = layout / "pred"
    for name in ("SetA", "SetB"):
        shutil.copytree(pred / name / "masks", root / name)
    serial = evaluate_maps(root, pred, workers=0, progress=False)
    parallel = evaluate_maps(root, pred, workers=2, progress=False)
    pd.testing.assert_frame_equal(serial, parallel)
    assert (serial["Sm"] > 0.999).all() and (serial["MAE"] == 0).all()


def test_evaluate_maps_reports_missing_extra_and_size_problems(layout):
    gt, root = layout / "TestDataset", layout / "pred"
    shutil.copytree(gt / "SetA" / "masks", root / "SetA")
    (root / "SetA" / "s1.png").unlink()
    Image.fromarray(np.zeros((50, 70), np.uint8)).save(root / "SetA" / "zz.png")
    with pytest.raises(ValueError, match=r"s1\.png.*zz\.png"):
        evaluate_maps(root, gt, progress=False)
    (root / "SetA" / "zz.png").unlink()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(root / "SetA" / "s1.png")
    with pytest.raises(ValueError, match=r"s1\.png \(20, 20\)"):
        evaluate_maps(root, gt, protocol="kdas", progress=False)
    assert evaluate_maps(root, gt, protocol="matlab", progress=False).shape == (1, len(METRIC_KEYS))


def _parser():
    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers(dest="command"))
    return p


def test_cli_evaluate_writes_json_csv_and_reference(student, layout, tmp_path, capsys):
    ckpt = tmp_path / "student.pt"
    save_checkpoint(ckpt, student, config={"image_size": 64})
    args = _parser().parse_args(["evaluate", "--checkpoint", str(ckpt), "--data", str(layout), "--size", "64",
                                 "--device", "cpu", "--datasets", "SetB", "--json", str(tmp_path / "r.json"),
                                 "--csv", str(tmp_path / "r.csv"), "--reference", "--save-maps", str(tmp_path / "m")])
    assert args.func(args) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert list(data) == ["SetB"] and list(data["SetB"]) == list(METRIC_KEYS)
    assert pd.read_csv(tmp_path / "r.csv", index_col=0).shape == (1, len(METRIC_KEYS))
    assert "meanDic" in capsys.readouterr().out
    args = _parser().parse_args(["evaluate-maps", "--pred", str(tmp_path / "m"), "--gt", str(layout / "TestDataset"),
                                 "--protocol", "kdas", "--workers", "1", "--json", str(tmp_path / "m.json")])
    assert args.func(args) == 0
    assert json.loads((tmp_path / "m.json").read_text())["SetB"].keys() == data["SetB"].keys()


def test_reference_rows_in_table():
    df = pd.DataFrame({k: [0.5] for k in METRIC_KEYS}, index=["Kvasir"])
    text = cli.show(df, reference=True)
    assert "Kvasir [Polyp-PVT (paper)]" in text and "0.9170" in text and "Dong et al." in text


def test_eval_bench_agrees_and_is_faster():
    r = run_eval_bench(n_images=2, size=(96, 128), seed=0)
    assert r["max_abs_diff"] < 1e-9
    assert r["eval_speedup"] > 5


def test_model_efficiency_small(student):
    from kdas_lab.bench.efficiency import count_macs, model_efficiency
    r = model_efficiency(student, size=64, device="cpu", warmup=0, iters=1, batch=2)
    assert r["params"] == 3_650_740 and r["peak_mem_mb"] > 0 and r["latency_ms_b1"] > 0
    assert count_macs(student.eval(), torch.randn(1, 3, 352, 352)) / 1e9 == pytest.approx(1.90, abs=0.01)


@pytest.mark.slow
@pytest.mark.realdata
def test_evaluate_checkpoint_on_real_subsets(request, tmp_path, student):
    try:
        root = request.getfixturevalue("pranet_root")
    except pytest.FixtureLookupError:
        pytest.skip("pranet_root fixture not available")
    small = tmp_path / "small"
    for name in ("Kvasir", "CVC-ClinicDB"):
        src = root / "TestDataset" / name
        for sub in ("images", "masks"):
            (small / "TestDataset" / name / sub).mkdir(parents=True)
            for f in sorted((src / sub).iterdir())[:5]:
                shutil.copy(f, small / "TestDataset" / name / sub / f.name)
    ckpt = tmp_path / "b0.pt"
    save_checkpoint(ckpt, student)
    args = _parser().parse_args(["evaluate", "--checkpoint", str(ckpt), "--data", str(small), "--size", "352",
                                 "--device", "cpu", "--json", str(tmp_path / "r.json")])
    assert args.func(args) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data) == {"Kvasir", "CVC-ClinicDB"}
    assert all(0 <= v <= 1 for row in data.values() for v in row.values())
