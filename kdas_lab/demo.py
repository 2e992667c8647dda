"""``make demo`` / ``kdas-lab demo``: the whole KDAS story in one run.

1. Data: without ``--data``, a synthetic polyp set is built (once) in ``cfg.data_dir``.
2. Train the teacher (``cfg.teacher``, Polyp-PVT B2) with the segmentation loss, for
   ``cfg.teacher_epochs``: far longer than the students, as a teacher is trained once and reused.
3. Distil it into the student (``cfg.student``, B0) with ``kdas`` for ``cfg.epochs``.
4. Train the same student without a teacher (``none``) for the same ``cfg.epochs``: the baseline.
5. Evaluate all three on the test set(s) (``matlab`` protocol), measure parameters, MACs and latency
   at 352 x 352, print the table with the differences to the plain student, and write
   ``results.csv``, ``results_per_dataset.csv``, ``curves.png`` and ``overlays.png``.

:data:`DEMO_OVERRIDES` sizes the default run (fast profile + these) for a few minutes on 2 CPU
cores; ``--profile laptop --data data/pranet`` runs the same pipeline on the real PraNet data.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from kdas_lab.atomic import save_figure, write_csv_atomic
from kdas_lab.bench.efficiency import model_efficiency
from kdas_lab.config import Config
from kdas_lab.data import ensure_synthetic
from kdas_lab.data.io import load_image, load_mask
from kdas_lab.data.layout import TRAIN, find_pairs, find_test_root, has_train_images, list_test_sets
from kdas_lab.evaluation import evaluate_model
from kdas_lab.evaluation.inference import predict_image
from kdas_lab.metrics import mean_dice
from kdas_lab.runtime import resolve_device
from kdas_lab.train import distill, train_model, train_teacher
from kdas_lab.viz.curves import plot_curves
from kdas_lab.viz.overlays import overlay_grid

DEMO_OVERRIDES: dict[str, Any] = dict(
    data_dir=Path("data/synthetic_demo64_v2"), image_size=64, synthetic_train=256, synthetic_test=64,
    teacher_epochs=15, epochs=3, batch_size=8, max_steps_per_epoch=None, lr=1e-3, warmup_epochs=1.0,
    lr_schedule="cosine", clip_mode="norm", clip_value=1.0, augment=True, augment_mode="dihedral",
    teacher_cache=True,
)
EFFICIENCY_SIZE = 352
CAVEATS = ("one seed, synthetic frames, students trained for {epochs} epochs: the teacher-student gap is "
           "the point; a KDAS-vs-no-KD difference needs seeds and intervals (`kdas-lab ablate`, "
           "docs/results.md)")


def _efficiency(model, device, size: int) -> dict[str, float]:
    eff = model_efficiency(model, size=size, device=device, warmup=1, iters=3, batch=1)
    return {"parameters": eff["params"], "MACs": f"{eff['GMACs']:.2f} G",
            "latency_ms": round(eff["latency_ms_b1"], 1)}


def _overlay_figure(cfg: Config, models: dict, out_dir: Path, device, n: int = 4) -> Path:
    base = find_test_root(cfg.data_dir)
    name = list_test_sets(base)[0]
    pairs = find_pairs(base / name)[:n]
    images = [load_image(p[1]) for p in pairs]
    gts = [load_mask(p[2]) for p in pairs]
    preds = {label: [predict_image(m, img, size=cfg.image_size, device=device) for img in images]
             for label, m in models.items()}
    scores = {label: [mean_dice([p], [g]) for p, g in zip(ps, gts)] for label, ps in preds.items()}
    fig = overlay_grid(images, gts, preds, titles=[f"{name}/{p[0]}" for p in pairs], scores=scores)
    path = save_figure(fig, out_dir / "overlays.png")
    plt.close(fig)
    return path


def run_demo(cfg: Config, out_dir, *, build_synthetic: bool = True, show_progress: bool = True,
             efficiency_size: int = EFFICIENCY_SIZE) -> pd.DataFrame:
    """Teacher, KDAS student and teacher-free student on ``cfg.data_dir``; returns the results table.

    MACs and latency (batch 1) are measured at ``efficiency_size`` (352, the papers' size)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not has_train_images(cfg.data_dir):
        if not build_synthetic:
            raise FileNotFoundError(f"{cfg.data_dir}: no {TRAIN}/images (PraNet layout expected)")
        print(f"building the synthetic data set in {cfg.data_dir} ...")
        ensure_synthetic(cfg)
    device = resolve_device(cfg.device)
    t_start = time.perf_counter()
    runs = {}
    runs["teacher"] = train_teacher(cfg, out_dir / "teacher", show_progress=show_progress)
    runs["student_kdas"] = distill(cfg, runs["teacher"].model, out_dir / "student_kdas", method="kdas",
                                   show_progress=show_progress)
    runs["student_none"] = train_model(cfg, out_dir=out_dir / "student_none", method="none",
                                       student_name=cfg.student, show_progress=show_progress)
    train_s = time.perf_counter() - t_start

    rows, per_dataset = [], []
    for label, result in runs.items():
        model = result.model.eval()
        scores = evaluate_model(model, cfg.data_dir, size=cfg.image_size, device=device, progress=False)
        per_dataset.append(scores.assign(model=label).reset_index())
        rows.append({"model": label, "architecture": model.name, **_efficiency(model, device, efficiency_size),
                     "meanDice": round(float(scores["meanDic"].mean()), 4),
                     "meanIoU": round(float(scores["meanIoU"].mean()), 4),
                     "best_val_meanDice": round(float(result.history["val_meanDic"].max()), 4)})
    table = pd.DataFrame(rows)
    table = table[["model", "architecture", "parameters", "MACs", "meanDice", "meanIoU", "latency_ms",
                   "best_val_meanDice"]]
    write_csv_atomic(table, out_dir / "results.csv")
    write_csv_atomic(pd.concat(per_dataset, ignore_index=True), out_dir / "results_per_dataset.csv")

    fig = plot_curves({k: r.history for k, r in runs.items()},
                      steps={k: pd.read_csv(out_dir / k / "steps.csv") for k in runs})
    save_figure(fig, out_dir / "curves.png")
    plt.close(fig)
    _overlay_figure(cfg, {k: r.model for k, r in runs.items()}, out_dir, device)
    total_s = time.perf_counter() - t_start
    table.attrs.update(train_seconds=train_s, total_seconds=total_s)
    print(f"\nKDAS demo ({cfg.profile} profile, {cfg.image_size}px, data {cfg.data_dir}; teacher "
          f"{cfg.teacher_epochs or cfg.epochs} epochs, students {cfg.epochs}); MACs and latency at "
          f"{efficiency_size}x{efficiency_size}, batch 1, on {device}")
    print(table.to_string(index=False))
    print(differences(table))
    print("caveats: " + CAVEATS.format(epochs=cfg.epochs))
    print(f"training {train_s:.0f} s, total {total_s:.0f} s; outputs in {out_dir} "
          f"(results.csv, curves.png, overlays.png){os.linesep}")
    return table


def differences(table: pd.DataFrame, baseline: str = "student_none") -> str:
    """The test meanDice of each model minus the plain student's, one line."""
    dice = table.set_index("model")["meanDice"]
    return "meanDice vs the plain student: " + ", ".join(
        f"{m} {dice[m] - dice[baseline]:+.4f}" for m in dice.index if m != baseline)
