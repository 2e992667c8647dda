"""Distillation-step benchmark at a toy size: variants, isolation, JSON report and CLI."""
import json

import pytest
import torch

from kdas_lab.bench.distill_step import VARIANTS, _build_step, measure_variant, run_bench


@pytest.mark.parametrize("variant, teacher_grads", [
    ("published_distill", True), ("published_distill_finite", True), ("kdas_lab_distill", False)])
def test_published_step_backprops_into_the_teacher_and_ours_does_not(variant, teacher_grads):
    step, per_call, models = _build_step(variant, 32, 2, torch.device("cpu"), channels_last=False, amp=False,
                                         teacher_name="polyp_pvt_b0")  # B0 teacher: same code path, fast
    step()
    assert per_call == 2
    grads = [p.grad for p in models["teacher"].parameters()]
    assert any(g is not None for g in grads) is teacher_grads
    if variant == "published_distill":  # both heads reach the teacher (P2 through the dead AT term)
        assert all(g is not None for g in grads)
    assert all(p.grad is not None for p in models["student"].parameters())
    if variant == "published_distill_finite":  # only the SGM term reaches the teacher: finite gradients
        assert all(torch.isfinite(g).all() for g in grads if g is not None)


def test_measure_variant_in_process_reports_positive_figures():
    r = measure_variant("student_infer", size=64, batch=1, device="cpu", steps=2, warmup=1)
    assert r["variant"] == "student_infer" and r["batch"] == 1
    assert r["images_per_s"] > 0 and r["median_s"] > 0 and r["peak_mem_mb"] > 0
    with pytest.raises(ValueError, match="unknown bench variant"):
        measure_variant("nope", size=64, batch=1)


@pytest.mark.slow
def test_run_bench_isolated_reports_speedup_and_memory_ratio(tmp_path):
    from kdas_lab.cli.bench import write_json_atomic

    report = run_bench(size=32, batch=2, device="cpu", steps=1, warmup=0,
                       variants=("kdas_lab_distill", "published_distill"), teacher_name="polyp_pvt_b0")
    out = write_json_atomic(report, tmp_path / "bench.json")
    report = json.loads(out.read_text())
    assert report["distill_step_speedup"] == pytest.approx(
        report["variants"]["kdas_lab_distill"]["images_per_s"] / report["variants"]["published_distill"]["images_per_s"])
    assert report["distill_step_memory_ratio"] > 0 and "machine" in report and "definitions" in report
    assert report["settings"]["isolated"] is True and report["settings"]["batch"] == 2
    assert set(report["variants"]) == {"kdas_lab_distill", "published_distill"}
    assert report["variants"]["published_distill"]["teacher"] == "polyp_pvt_b0"


def test_bench_cli_writes_json(tmp_path):
    from kdas_lab.cli import main

    out = tmp_path / "b.json"
    assert main(["bench", "--json", str(out), "--size", "32", "--infer-size", "32", "--batch", "1",
                 "--device", "cpu", "--steps", "1", "--warmup", "0", "--variants", "student_infer"]) == 0
    report = json.loads(out.read_text())
    assert report["variants"]["student_infer"]["size"] == 32 and "machine" in report


def test_run_bench_default_variant_list_and_in_process_mode():
    assert VARIANTS[:2] == ("kdas_lab_distill", "published_distill")
    report = run_bench(size=64, batch=1, device="cpu", steps=1, warmup=0, infer_size=64,
                       variants=("student_infer",), isolate=False)
    assert "distill_step_speedup" not in report  # needs both distillation variants
    assert report["variants"]["student_infer"]["size"] == 64


def test_bench_cli_eval_speedup_is_top_level(tmp_path, monkeypatch):
    from kdas_lab.bench import eval_speed
    from kdas_lab.cli import main

    real = eval_speed.run_eval_bench
    monkeypatch.setattr(eval_speed, "run_eval_bench", lambda: real(n_images=1, size=(32, 48)))
    out = tmp_path / "b.json"
    assert main(["bench", "--json", str(out), "--size", "32", "--infer-size", "32", "--batch", "1",
                 "--device", "cpu", "--steps", "1", "--warmup", "0", "--variants", "student_infer",
                 "--eval"]) == 0
    report = json.loads(out.read_text())
    assert report["eval_speedup"] == report["eval"]["eval_speedup"] > 1
    assert report["eval"]["max_abs_diff"] < 1e-9


def test_cached_variant_reads_the_teacher_maps_without_a_teacher_forward():
    step, _, models = _build_step("kdas_lab_distill_cached", 32, 2, torch.device("cpu"), channels_last=False,
                                  amp=False, teacher_name="polyp_pvt_b0")
    models["teacher"].forward = lambda *a, **k: (_ for _ in ()).throw(AssertionError("teacher was run"))
    step()
    assert all(p.grad is not None for p in models["student"].parameters())
    assert all(p.grad is None for p in models["teacher"].parameters())


@pytest.mark.slow
def test_run_bench_reports_cached_speedup_in_the_same_run():
    report = run_bench(size=32, batch=2, device="cpu", steps=1, warmup=0, isolate=False,
                       variants=("published_distill", "kdas_lab_distill_cached"), teacher_name="polyp_pvt_b0")
    assert report["distill_step_speedup_cached"] == pytest.approx(
        report["variants"]["kdas_lab_distill_cached"]["images_per_s"]
        / report["variants"]["published_distill"]["images_per_s"])
