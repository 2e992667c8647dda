"""Steady-state figures of the benchmark: FLOPs, achieved TFLOP/s, compile speedup, paper-recipe projection.

- FLOPs of one step come from :class:`torch.utils.flop_counter.FlopCounterMode` (matmuls,
  convolutions, attention; forward and backward; grouped-convolution backward corrected, see
  :func:`conv_backward_flop`), counted on an extra eager step after timing.
  ``tflops_per_s`` = FLOPs per step / median step time (warm-up excluded).
- ``compile_speedup``: eager median step time / ``torch.compile`` median step time, per step measured
  both ways (CUDA measures them by default; on CPU only when asked, else None with ``compile_speedup_note``).
- ``paper_recipe_minutes_projected``: the published recipe (``paper`` profile: epochs, batch and the
  multi-scale sizes of 352 px; 1,450 PraNet training images) for the teacher (``teacher_train``) plus
  the student (its distillation step: ``kdas_lab_distill_cached``, else ``kdas_lab_distill``, else
  ``student_train``), from the measured images/s at the bench size, time per image scaled by pixel
  count to each training size. Optimizer steps only: validation, data loading and the one-off teacher
  cache build are not included.
"""
from __future__ import annotations

import math
import statistics

import torch
from torch.utils.flop_counter import FlopCounterMode

from kdas_lab.config import Config
from kdas_lab.data.sources import TRAIN_PAIRS

STUDENT_STEPS = ("kdas_lab_distill_cached", "kdas_lab_distill", "student_train")


def conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                       _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """Each requested gradient (input, weight) of a convolution costs one forward convolution.

    torch's own formula counts the weight gradient as if ``groups`` were 1: the depthwise 3x3
    convolutions of PVTv2 then count ~40x their cost (measured: 1.67 of 1.92 GFLOP of a B0 step at 64 px).
    """
    spatial = (x_shape if transposed else grad_out_shape)[2:]
    forward = 2 * grad_out_shape[0] * math.prod(spatial) * math.prod(w_shape)  # w: (C_out, C_in / groups, k...)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def count_flops(step) -> int:
    """FLOPs of one call of ``step`` (forward and backward of whatever it runs)."""
    fix = {torch.ops.aten.convolution_backward: conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=fix) as counter:
        step()
    return int(counter.get_total_flops())


def timing_figures(times: list[float], warmup_times: list[float]) -> dict:
    """Median and spread of the timed steps; warm-up reported apart."""
    med = statistics.median(times)
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [med, med, med]
    return {"median_s": med, "times_s": times, "iqr_over_median": (q[2] - q[0]) / med,
            "warmup_s": warmup_times, "warmup_total_s": sum(warmup_times)}


def compile_speedup(results: dict, device: torch.device) -> tuple[dict | None, str | None]:
    """``{"teacher_train": x, ...}`` (eager / compiled median step time) for each step measured both
    ways, or None and why."""
    out = {b: results[b]["median_s"] / results[f"{b}_compiled"]["median_s"]
           for b in ("teacher_train", "student_train", "kdas_lab_distill")
           if b in results and f"{b}_compiled" in results}
    if out:
        return out, None
    if device.type != "cuda":
        return None, (f"the *_compiled variants are in the default list on CUDA only (device {device}): "
                      "inductor's CPU build of the B0/B2 steps takes minutes; ask with --variants")
    return None, "the *_compiled variants were not measured"


def paper_recipe_projection(results: dict, size: int) -> dict | None:
    """Projected minutes of the published recipe's teacher + student training (see module doc)."""

    student = next((v for v in STUDENT_STEPS if v in results), None)
    if "teacher_train" not in results or student is None:
        return None
    paper = Config.from_profile("paper")
    pixel_factor = sum((s / size) ** 2 for s in paper.train_sizes())  # per image, all scales
    per_net = {}
    for net, variant in (("teacher", "teacher_train"), ("student", student)):
        seconds = paper.epochs * TRAIN_PAIRS * pixel_factor / results[variant]["images_per_s"]
        per_net[net] = {"variant": variant, "minutes": seconds / 60}
    return {"minutes": per_net["teacher"]["minutes"] + per_net["student"]["minutes"], **per_net,
            "epochs": paper.epochs, "images": TRAIN_PAIRS, "sizes": paper.train_sizes(),
            "recipe_batch": paper.batch_size, "measured_size": size,
            "measured_batch": results["teacher_train"]["batch"]}


def summary(results: dict, device: torch.device, size: int) -> dict:
    """The top-level keys this module adds to the bench report."""
    out: dict = {}
    speedup, note = compile_speedup(results, device)
    out["compile_speedup"] = speedup
    if note:
        out["compile_speedup_note"] = note
    out["tflops_per_s"] = {v: r["tflops_per_s"] for v, r in results.items() if r.get("tflops_per_s")}
    projection = paper_recipe_projection(results, size)
    out["paper_recipe_minutes_projected"] = projection["minutes"] if projection else None
    out["paper_recipe_projection"] = projection
    return out


DEFINITIONS = {
    "tflops_per_s": "FLOPs of one training step (FlopCounterMode: forward + backward) / median step time, 1e12/s",
    "compile_speedup": "eager median step time / torch.compile median step time, per step measured both ways",
    "paper_recipe_minutes_projected": "teacher + student minutes of the published recipe (99 epochs x 1,450 "
                                      "images x 3 scales) from the measured images/s, time per image scaled "
                                      "by pixels; optimizer steps only",
    "warmup_s": "untimed warm-up steps (compilation, kernel selection), reported apart from the median",
}
