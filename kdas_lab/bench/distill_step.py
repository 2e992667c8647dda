"""Distillation-step benchmark: kdas_lab's KDAS step vs the published recipe's step, same batch and size.

Variants (each measured in its own subprocess, so peak memory is that variant's alone):

- ``kdas_lab_distill``: the project's own :meth:`~kdas_lab.train.loop.Trainer.train_step` (non-finite
  checks and step logging included): teacher frozen under ``torch.no_grad`` (bf16 autocast on CUDA), the
  fixed ``kdas`` loss, fused AdamW, ``zero_grad(set_to_none=True)``, value clipping.
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
- ``teacher_train`` / ``student_train``: one ``Trainer.train_step`` with the segmentation loss.
- ``teacher_infer`` / ``student_infer``: inference latency, batch 1, ``infer_size`` (352).
- ``teacher_train_compiled`` / ``student_train_compiled`` / ``kdas_lab_distill_compiled`` (CUDA default
  only; on CPU ask for them with ``--variants``): the same steps with ``Config.compile`` (the student and
  the live teacher compiled); warm-up (compilation) is reported apart (``warmup_s``);
  ``distill_step_speedup_compiled`` compares the last with ``published_distill``.
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
from kdas_lab.config import Config
from kdas_lab.losses import KDASLoss, LossOutput, create_loss, detach_tree, seg_both_heads
from kdas_lab.models import create_model
from kdas_lab.runtime import machine_info, resolve_device, synchronize
from kdas_lab.train import compiled as compiled_step
from kdas_lab.train.builders import load_teacher
from kdas_lab.train.precision import amp_dtype, autocast, memory_format
from kdas_lab.train.step_timing import step_trainer
from kdas_lab.train.teacher_cache import TeacherCache
from kdas_lab.train.teacher_outputs import CachedTeacher, LiveTeacher

VARIANTS = ("kdas_lab_distill", "published_distill", "published_distill_finite", "kdas_lab_distill_cached",
            "teacher_train",
            "student_train", "teacher_infer", "student_infer")
COMPILED_VARIANTS = ("teacher_train_compiled", "student_train_compiled",  # default on CUDA only
                     "kdas_lab_distill_compiled")
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


def build_step(variant: str, size: int, batch: int, device: torch.device, channels_last: bool, amp: bool,
               teacher_name: str = "polyp_pvt_b2", student_name: str = "polyp_pvt_b0"):
    """Returns ``(step_fn, images_per_call, models)``; ``step_fn()`` runs one optimizer step or one
    inference; ``models`` maps "student"/"teacher" to the networks (for inspection in tests)."""

    compiled = variant.endswith("_compiled")
    variant = variant.removesuffix("_compiled")
    torch.manual_seed(0)
    if variant.endswith("_infer"):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext
        model = create_model(teacher_name if variant.startswith("teacher") else student_name)
        model = model.to(device).eval().to(memory_format=fmt)
        x = torch.randn(1, 3, size, size, device=device).contiguous(memory_format=fmt)

        def infer():
            with torch.inference_mode(), autocast():
                model(x)
        return infer, 1, {"student": model}

    images, masks = synthetic_batch(batch, size, device)
    if not variant.startswith("published_distill"):
        return _trainer_step(variant, images, masks, size, device, channels_last, amp, compiled,
                             teacher_name, student_name)
    # the published loop: fp32, contiguous, the teacher trainable (never stepped) and left in the graph
    student = create_model(student_name).to(device).train()
    teacher = create_model(teacher_name).to(device).eval().requires_grad_(True)  # trainable, never stepped
    loss = PublishedKDASStep(finite=variant.endswith("_finite"))
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4, weight_decay=1e-4)
    params = list(student.parameters())

    def step():
        optimizer.zero_grad(set_to_none=True)
        out_s, out_t = student(images), teacher(images)  # teacher graph kept: the loss backprops into it
        loss(out_s, out_t, masks).total.backward()
        torch.nn.utils.clip_grad_value_(params, 0.5)
        optimizer.step()
    return step, batch, {"student": student, "teacher": teacher}


def _trainer_step(variant: str, images, masks, size: int, device: torch.device, channels_last: bool, amp: bool,
                  compiled: bool, teacher_name: str, student_name: str):
    """The project's own :meth:`Trainer.train_step` (KDAS or the segmentation loss alone) on one batch."""
    distill = "_distill" in variant
    cfg = Config(device=str(device), image_size=size, multiscale=(1.0,), batch_size=images.shape[0], lr=1e-4,
                 weight_decay=1e-4, lr_schedule="constant", clip_mode="value", clip_value=0.5, amp=amp,
                 channels_last=channels_last, compile=compiled, device_data=False, augment=False,
                 val_fraction=0.0, method="kdas" if distill else "none")
    student = create_model(teacher_name if variant == "teacher_train" else student_name)
    teacher = load_teacher(create_model(teacher_name), device, channels_last) if distill else None
    loss = create_loss(cfg.method, cfg)
    guard = compiled_step.for_run(cfg, device, compile_teacher=distill and variant != "kdas_lab_distill_cached")
    keys, outputs = None, None
    if variant == "kdas_lab_distill_cached":  # the teacher runs once, before timing; steps read the cache
        with torch.no_grad(), autocast(device, amp_dtype(cfg, device)):
            t_out = teacher(images.contiguous(memory_format=memory_format(cfg)))
        maps = torch.cat([t_out.p1.float(), t_out.p2.float()], dim=1).half()  # (B, 2, S, S)
        stems = [str(i) for i in range(images.shape[0])]
        cache = TeacherCache({size: maps.cpu().numpy()[:, None]}, stems, [], 1)  # (B, 1, 2, S, S)
        outputs, keys = CachedTeacher(cache, device), (stems, None)
    elif distill:
        outputs = LiveTeacher(guard.wrap(teacher))
    trainer = step_trainer(cfg, student=student, loss=loss, device=device, teacher=teacher,
                           teacher_outputs=outputs, compile_guard=guard)

    def step():
        trainer.train_step(images, masks, size, epoch=1, keys=keys)
    return step, images.shape[0], {"student": trainer.model, "teacher": teacher}


def measure_variant(variant: str, *, size: int, batch: int, device: str = "cpu", steps: int = 3,
                    warmup: int = 1, channels_last: bool = False, amp: bool | None = None,
                    teacher_name: str = "polyp_pvt_b2", student_name: str = "polyp_pvt_b0") -> dict:
    """Time one variant in this process; returns images/s, median seconds and memory figures."""

    if variant not in VARIANTS + COMPILED_VARIANTS:
        raise ValueError(f"unknown bench variant {variant!r}; valid: {', '.join(VARIANTS + COMPILED_VARIANTS)}")
    dev = resolve_device(device)
    amp = (dev.type == "cuda") if amp is None else amp
    step, per_call, _ = build_step(variant, size, batch, dev, channels_last, amp, teacher_name, student_name)
    if variant.endswith("_compiled"):
        warmup = max(warmup, 1)  # compilation happens in the first call: never timed
    synchronize(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    before = _current_mb(dev)
    warmup_times = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        step()
        synchronize(dev)
        warmup_times.append(time.perf_counter() - t0)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        synchronize(dev)
        times.append(time.perf_counter() - t0)
    fig = throughput.timing_figures(times, warmup_times)
    med = fig["median_s"]
    peak = _peak_mb(dev)
    if "_train" in variant:  # FLOPs of one more step, counted eagerly (compiled variants: on an eager copy)
        flop_step = step if not variant.endswith("_compiled") else build_step(
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
                  "distill_step_speedup_compiled": "kdas_lab_distill_compiled images/s (Config.compile: "
                                                   "student and live teacher compiled) divided by "
                                                   "published_distill images/s; compile time in its warmup_s",
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
    for suffix in ("cached", "compiled"):  # the variants of our step, each against the published one
        if {f"kdas_lab_distill_{suffix}", "published_distill"} <= set(results):
            ours = results[f"kdas_lab_distill_{suffix}"]["images_per_s"]
            report[f"distill_step_speedup_{suffix}"] = ours / results["published_distill"]["images_per_s"]
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
