"""Distillation-step benchmark: kdas_lab's KDAS step vs the published recipe's step, same batch and size.

Variants (each measured in its own subprocess, so peak memory is that variant's alone):

- ``kdas_lab_distill``: teacher frozen under ``torch.no_grad`` (bf16 autocast on CUDA), our fixed
  ``kdas`` loss, fused AdamW, ``zero_grad(set_to_none=True)``, value clipping.
- ``published_distill``: the published loop: teacher in ``eval()`` but with autograd and trainable
  parameters, fp32, the published KDAS arithmetic (``kdas-official`` terms) *without* detaching the
  teacher, so ``backward`` runs through the teacher graph and accumulates teacher gradients that are
  never used; default (non-fused) AdamW; value clipping 0.5.
- ``published_distill_finite``: the same, except that the dead attention term's NaN gradient is kept
  out of the teacher graph (only the SGM term backprops into the teacher). NaNs flowing through the
  teacher's backward slow the CPU kernels several-fold, so this is the conservative baseline:
  ``distill_step_speedup_vs_finite`` compares against it.
- ``kdas_lab_distill_cached``: ``kdas_lab_distill`` with the teacher's P1/P2 read from a teacher-output
  cache (:class:`kdas_lab.train.teacher_cache.TeacherCache`, float16, filled once before timing) instead
  of a teacher forward: ``distill_step_speedup_cached`` compares it with ``published_distill``.
- ``teacher_train`` / ``student_train``: one training step with the segmentation loss (our settings).
- ``teacher_infer`` / ``student_infer``: inference latency, batch 1, ``infer_size`` (352).
- ``teacher_train_compiled`` / ``student_train_compiled`` (CUDA default only): the training steps with
  ``torch.compile`` of the network; warm-up (compilation) is reported apart (``warmup_s``).
  FLOPs, achieved TFLOP/s, ``compile_speedup`` and ``paper_recipe_minutes_projected``:
  :mod:`kdas_lab.bench.throughput`.

Throughput is images per second of one optimizer step (median step time). Memory: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the process's peak resident set size (``ru_maxrss``).
``step_mem_mb`` is the peak minus what was held just before the first step (models, batch), i.e.
what the step itself needs; ``peak_mem_mb`` is the absolute peak. ``distill_step_speedup`` =
kdas_lab images/s / published images/s; ``distill_step_memory_ratio`` = kdas_lab step_mem_mb /
published step_mem_mb (below 1: kdas_lab needs less).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import torch
import torch.nn.functional as F

from kdas_lab.bench import throughput
from kdas_lab.losses import KDASLoss, LossOutput, SegOnlyLoss, detach_tree, seg_both_heads
from kdas_lab.models import create_model
from kdas_lab.runtime import machine_info, resolve_device
from kdas_lab.train.loop import float32_outputs
from kdas_lab.train.teacher_cache import TeacherCache

VARIANTS = ("kdas_lab_distill", "published_distill", "published_distill_finite", "kdas_lab_distill_cached",
            "teacher_train",
            "student_train", "teacher_infer", "student_infer")
COMPILED_VARIANTS = ("teacher_train_compiled", "student_train_compiled")  # default on CUDA only
_MARK = "KDAS_BENCH_RESULT "


def synthetic_batch(batch: int, size: int, device: torch.device, seed: int = 0):
    """Normalised random images ``(B, 3, S, S)`` and smooth blob masks ``(B, 1, S, S)`` in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=g)
    coarse = torch.rand(batch, 1, max(2, size // 32), max(2, size // 32), generator=g)
    masks = (F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False) > 0.6).float()
    return images.to(device), masks.to(device)


class PublishedKDASStep(torch.nn.Module):
    """The published objective with the teacher left in the graph (no detach), as the released code runs it."""

    def __init__(self, temperature: float = 2.0, alpha: float = 0.3, finite: bool = False):
        super().__init__()
        self.finite = finite

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.kdas = KDASLoss(mode="kdas-official", temperature=temperature, alpha=alpha)

    def forward(self, student, teacher, mask):
        seg = seg_both_heads(student, mask, legacy_bce=True)
        term, parts = self.kdas.distill_term(student, teacher)  # teacher NOT detached
        if self.finite:  # at-term from a detached teacher: same value, no NaN into the teacher graph
            at = self.kdas.distill_term(student, detach_tree(teacher))[1]["at"]
            term = self.kdas.at_weight * at + self.kdas.sgm_weight * parts["sgm"]
        total = (1 - self.kdas.alpha) * seg + self.kdas.alpha * term
        return LossOutput(total, {"seg": seg.detach(), **{k: v.detach() for k, v in parts.items()}})


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    return _rss_mb()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build_step(variant: str, size: int, batch: int, device: torch.device, channels_last: bool, amp: bool,
                teacher_name: str = "polyp_pvt_b2", student_name: str = "polyp_pvt_b0"):
    """Returns ``(step_fn, images_per_call, models)``; ``step_fn()`` runs one optimizer step or one
    inference; ``models`` maps "student"/"teacher" to the networks (for inspection in tests)."""

    compiled = variant.endswith("_compiled")
    variant = variant.removesuffix("_compiled")
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    published = variant.startswith("published_distill")
    if published:
        fmt, autocast = torch.contiguous_format, contextlib.nullcontext  # fp32, as released

    if variant.endswith("_infer"):
        model = create_model(teacher_name if variant.startswith("teacher") else student_name)
        model = model.to(device).eval().to(memory_format=fmt)
        x = torch.randn(1, 3, size, size, device=device).contiguous(memory_format=fmt)

        def infer():
            with torch.inference_mode(), autocast():
                model(x)
        return infer, 1, {"student": model}

    images, masks = synthetic_batch(batch, size, device)
    images = images.contiguous(memory_format=fmt)
    name = teacher_name if variant == "teacher_train" else student_name
    student = create_model(name).to(device).train().to(memory_format=fmt)
    forward = torch.compile(student, dynamic=False) if compiled else student
    teacher = None
    if "_distill" in variant:
        teacher = create_model(teacher_name).to(device).eval().to(memory_format=fmt)
        teacher.requires_grad_(published)  # published: trainable, never stepped
    cache, stems = None, [str(i) for i in range(batch)]
    if variant == "kdas_lab_distill_cached":  # the teacher runs once, before timing; steps read the cache
        with torch.no_grad(), autocast():
            t_out = teacher(images)
        maps = torch.cat([t_out.p1.float(), t_out.p2.float()], dim=1).half()  # (B, 2, S, S)
        cache = TeacherCache({size: maps.cpu().numpy()[:, None]}, stems, [], 1)  # (B, 1 view, 2, S, S)
    if published:
        loss = PublishedKDASStep(finite=variant.endswith("_finite"))
        optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4, weight_decay=1e-4)
    else:
        loss = KDASLoss(mode="kdas") if teacher is not None else SegOnlyLoss()
        optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4, weight_decay=1e-4,
                                      fused=device.type in ("cuda", "cpu"))
    params = list(student.parameters())

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            out_s = forward(images)
            if teacher is None:
                out_t = None
            elif cache is not None:
                out_t = cache.lookup(stems, None, size, device)  # p1, p2 (B, 1, S, S) float32
            elif published:
                out_t = teacher(images)  # graph kept: the loss backprops into it
            else:
                with torch.no_grad():
                    out_t = teacher(images)
        if amp and not published:
            out_s, out_t = float32_outputs(out_s), float32_outputs(out_t)
        loss(out_s, out_t, masks).total.backward()
        torch.nn.utils.clip_grad_value_(params, 0.5)
        optimizer.step()
    return step, batch, {"student": student, "teacher": teacher}


def measure_variant(variant: str, *, size: int, batch: int, device: str = "cpu", steps: int = 3,
                    warmup: int = 1, channels_last: bool = False, amp: bool | None = None,
                    teacher_name: str = "polyp_pvt_b2", student_name: str = "polyp_pvt_b0") -> dict:
    """Time one variant in this process; returns images/s, median seconds and memory figures."""

    if variant not in VARIANTS + COMPILED_VARIANTS:
        raise ValueError(f"unknown bench variant {variant!r}; valid: {', '.join(VARIANTS + COMPILED_VARIANTS)}")
    dev = resolve_device(device)
    amp = (dev.type == "cuda") if amp is None else amp
    step, per_call, _ = _build_step(variant, size, batch, dev, channels_last, amp, teacher_name, student_name)
    if variant.endswith("_compiled"):
        warmup = max(warmup, 1)  # compilation happens in the first call: never timed
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    before = _current_mb(dev)
    warmup_times = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        step()
        _sync(dev)
        warmup_times.append(time.perf_counter() - t0)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    fig = throughput.timing_figures(times, warmup_times)
    med = fig["median_s"]
    peak = _peak_mb(dev)
    if "_train" in variant:  # FLOPs of one more step, counted eagerly (compiled variants: on an eager copy)
        flop_step = step if not variant.endswith("_compiled") else _build_step(
            variant.removesuffix("_compiled"), size, batch, dev, channels_last, amp, teacher_name, student_name)[0]
        fig["flops_per_step"] = throughput.count_flops(flop_step)
        fig["tflops_per_s"] = fig["flops_per_step"] / med / 1e12
    return {"variant": variant, "device": str(dev), "size": size, "batch": per_call, "steps": steps, **fig,
            "teacher": teacher_name, "student": student_name, "images_per_s": per_call / med, "peak_mem_mb": peak,
            "step_mem_mb": peak - before, "load_average_1min": os.getloadavg()[0],
            "amp_bf16": bool(amp and not variant.startswith("published")),
            "channels_last": bool(channels_last and not variant.startswith("published"))}


def measure_isolated(variant: str, timeout: float = 900, **kwargs) -> dict:
    """:func:`measure_variant` in a fresh Python process (honest per-variant peak memory)."""
    cmd = [sys.executable, "-m", "kdas_lab.bench.distill_step", "--worker", variant,
           "--kwargs", json.dumps(kwargs)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK):])
    raise RuntimeError(f"bench variant {variant} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def run_bench(*, size: int = 352, batch: int | None = None, device: str = "auto", steps: int = 3,
              warmup: int = 1, infer_size: int = 352, channels_last: bool = False, amp: bool | None = None,
              variants=None, isolate: bool = True, timeout: float = 900,
              teacher_name: str = "polyp_pvt_b2", student_name: str = "polyp_pvt_b0") -> dict:
    """Measure ``variants`` at the same ``size`` and ``batch``; returns the JSON-ready report."""

    dev = resolve_device(device)
    batch = batch or (16 if dev.type == "cuda" else 2)
    if variants is None:
        variants = VARIANTS + (COMPILED_VARIANTS if dev.type == "cuda" else ())
    results = {}
    for v in variants:
        kw = dict(size=infer_size if v.endswith("_infer") else size, batch=batch, device=str(dev), steps=steps,
                  warmup=warmup, channels_last=channels_last, amp=amp, teacher_name=teacher_name,
                  student_name=student_name)
        results[v] = measure_isolated(v, timeout=timeout, **kw) if isolate else measure_variant(v, **kw)
    report = {"machine": machine_info(), "device": str(dev),
              "load_average_1_5_15": list(os.getloadavg()),  # other processes competing for the CPU
              "settings": {"size": size, "batch": batch, "steps": steps, "warmup": warmup,
                           "infer_size": infer_size, "channels_last": channels_last, "isolated": isolate},
              "variants": results,
              "definitions": {
                  "distill_step_speedup": "kdas_lab_distill images/s divided by published_distill images/s",
                  "distill_step_speedup_vs_finite": "the same against published_distill_finite",
                  "distill_step_speedup_cached": "kdas_lab_distill_cached images/s (teacher maps from the "
                                                 "teacher-output cache) divided by published_distill images/s",
                  "distill_step_memory_ratio": "kdas_lab_distill step_mem_mb divided by published_distill "
                                               "step_mem_mb (below 1: kdas_lab needs less memory)",
                  "step_mem_mb": "peak memory during the steps minus memory held just before them "
                                 "(CUDA: max_memory_allocated; CPU: ru_maxrss of a fresh process per variant)",
                  **throughput.DEFINITIONS}}
    if {"kdas_lab_distill", "published_distill"} <= set(results):
        ours, pub = results["kdas_lab_distill"], results["published_distill"]
        report["distill_step_speedup"] = ours["images_per_s"] / pub["images_per_s"]
        report["distill_step_memory_ratio"] = ours["step_mem_mb"] / max(pub["step_mem_mb"], 1e-9)
        report["distill_step_peak_memory_ratio"] = ours["peak_mem_mb"] / max(pub["peak_mem_mb"], 1e-9)
    if {"kdas_lab_distill_cached", "published_distill"} <= set(results):
        cached = results["kdas_lab_distill_cached"]["images_per_s"]
        report["distill_step_speedup_cached"] = cached / results["published_distill"]["images_per_s"]
    if {"kdas_lab_distill", "published_distill_finite"} <= set(results):
        fin = results["published_distill_finite"]
        report["distill_step_speedup_vs_finite"] = results["kdas_lab_distill"]["images_per_s"] / fin["images_per_s"]
    report.update(throughput.summary(results, dev, size))
    return report


def _worker(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", required=True)
    p.add_argument("--kwargs", default="{}")
    a = p.parse_args(argv)
    result = measure_variant(a.worker, **json.loads(a.kwargs))
    print(_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1:]))
