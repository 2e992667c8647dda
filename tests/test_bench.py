"""Distillation-step benchmark at a toy size: variants, isolation, JSON report and CLI."""
import json

import pytest
import torch

from kdas_lab.bench.distill_step import VARIANTS, build_step, measure_variant, run_bench


@pytest.mark.parametrize("variant, teacher_grads", [
    ("published_distill", True), ("published_distill_finite", True), ("kdas_lab_distill", False)])
def test_published_step_backprops_into_the_teacher_and_ours_does_not(variant, teacher_grads):
    step, per_call, models = build_step(variant, 32, 2, torch.device("cpu"), channels_last=False, amp=False,
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
    from kdas_lab.atomic import write_json_atomic

    report = run_bench(size=32, batch=2, device="cpu", steps=1, warmup=0,
                       variants=("kdas_lab_distill", "published_distill"), teacher_name="polyp_pvt_b0")
    out = write_json_atomic(report, tmp_path / "bench.json")
    report = json.loads(out.read_text())
    assert report["distill_step_speedup"] == pytest.approx(
        report["variants"]["kdas_lab_distill"]["images_per_s"]
        / report["variants"]["published_distill"]["images_per_s"])
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
    step, _, models = build_step("kdas_lab_distill_cached", 32, 2, torch.device("cpu"), channels_last=False,
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


def test_train_variant_reports_flops_tflops_and_warmup_apart():
    from torch.utils.flop_counter import FlopCounterMode

    from kdas_lab.models import create_model

    r = measure_variant("student_train", size=64, batch=1, device="cpu", steps=2, warmup=1)
    assert len(r["warmup_s"]) == 1 and len(r["times_s"]) == 2 and r["warmup_total_s"] > 0
    assert r["median_s"] == pytest.approx(sorted(r["times_s"])[0] / 2 + sorted(r["times_s"])[1] / 2)
    with FlopCounterMode(display=False) as fc:
        create_model("polyp_pvt_b0")(torch.randn(1, 3, 64, 64))
    forward = fc.get_total_flops()
    assert 2 * forward < r["flops_per_step"] < 4 * forward  # forward + backward (about 2x the forward)
    assert r["tflops_per_s"] == pytest.approx(r["flops_per_step"] / r["median_s"] / 1e12)


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_compile_speedup_is_eager_over_compiled(device):
    from kdas_lab.bench import throughput

    results = {"student_train": {"median_s": 0.3}, "student_train_compiled": {"median_s": 0.1},
               "kdas_lab_distill": {"median_s": 0.8}, "kdas_lab_distill_compiled": {"median_s": 0.64}}
    speedup, note = throughput.compile_speedup(results, torch.device(device))
    assert speedup == {"student_train": pytest.approx(3.0), "kdas_lab_distill": pytest.approx(1.25)} and note is None
    speedup, note = throughput.compile_speedup({"student_train": {"median_s": 0.3}}, torch.device(device))
    assert speedup is None and ("--variants" in note) == (device == "cpu")


def test_compiled_distill_variant_is_reported_against_the_published_step(monkeypatch):
    """The wiring of ``kdas_lab_distill_compiled`` (compilation itself replaced by the identity: inductor's
    CPU build of B0 takes minutes; tests/test_compile.py checks compiled against eager)."""
    from kdas_lab.train import compiled

    monkeypatch.setattr(compiled, "compile_module", lambda module, cfg: module)
    report = run_bench(size=64, batch=2, device="cpu", steps=1, warmup=1, isolate=False, teacher_name="polyp_pvt_b0",
                       variants=("published_distill", "kdas_lab_distill", "kdas_lab_distill_compiled"))
    comp, pub = report["variants"]["kdas_lab_distill_compiled"], report["variants"]["published_distill"]
    assert report["distill_step_speedup_compiled"] == pytest.approx(comp["images_per_s"] / pub["images_per_s"])
    assert set(report["compile_speedup"]) == {"kdas_lab_distill"}


def test_run_bench_reports_throughput_keys_with_sane_values():
    from kdas_lab.config import Config

    report = run_bench(size=64, batch=2, device="cpu", steps=2, warmup=1, isolate=False, teacher_name="polyp_pvt_b0",
                       variants=("published_distill", "kdas_lab_distill_cached", "teacher_train", "student_train"))
    assert report["compile_speedup"] is None and "--variants" in report["compile_speedup_note"]
    assert report["distill_step_speedup_cached"] > 0
    assert set(report["tflops_per_s"]) == {"teacher_train", "student_train"}
    assert all(v > 0 for v in report["tflops_per_s"].values())
    proj = report["paper_recipe_projection"]
    assert proj["student"]["variant"] == "kdas_lab_distill_cached" and proj["teacher"]["variant"] == "teacher_train"
    paper = Config.from_profile("paper")
    assert proj["epochs"] == paper.epochs == 99 and proj["images"] == 1450 and proj["sizes"] == [256, 352, 448]
    pixels = sum((s / 64) ** 2 for s in proj["sizes"])
    teacher_min = 99 * 1450 * pixels / report["variants"]["teacher_train"]["images_per_s"] / 60
    assert proj["teacher"]["minutes"] == pytest.approx(teacher_min)
    total = proj["teacher"]["minutes"] + proj["student"]["minutes"]
    assert report["paper_recipe_minutes_projected"] == pytest.approx(total)
    assert {"tflops_per_s", "paper_recipe_minutes_projected", "compile_speedup"} <= set(report["definitions"])


def test_bench_cli_prints_the_new_keys(tmp_path, capsys, monkeypatch):
    from kdas_lab.bench import distill_step
    from kdas_lab.cli import main

    real = distill_step.run_bench
    monkeypatch.setattr(distill_step, "run_bench", lambda **kw: real(**{**kw, "isolate": False,
                                                                        "teacher_name": "polyp_pvt_b0"}))
    out = tmp_path / "b.json"
    assert main(["bench", "--json", str(out), "--size", "64", "--batch", "2", "--device", "cpu", "--steps", "1",
                 "--warmup", "1", "--variants", "published_distill,kdas_lab_distill_cached,teacher_train"]) == 0
    text = capsys.readouterr().out
    assert "with the teacher-output cache:" in text and "torch.compile speedup: not measured" in text
    assert "published recipe projected:" in text and "tflops_per_s" in text
    report = json.loads(out.read_text())
    assert report["paper_recipe_minutes_projected"] > 0 and report["compile_speedup"] is None


@pytest.mark.parametrize("groups", [1, 8])
def test_flop_count_of_a_grouped_conv_backward_is_twice_its_forward(groups):
    from kdas_lab.bench.throughput import count_flops

    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=groups)
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    forward = count_flops(lambda: conv(x))
    assert forward == 2 * 2 * 16 * 16 * 8 * (8 // groups) * 9
    assert count_flops(lambda: conv(x).sum().backward()) == 3 * forward
