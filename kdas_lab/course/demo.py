"""``make demo`` / ``kdas-lab demo``: the whole distillation story in one run.

1. Data: the ``fast`` profile (the default run) builds a synthetic polyp set once in ``cfg.data_dir``; any
   other profile needs the real data there (the one rule, :func:`kdas_lab.data.layout.data_root`).
2. Train the teacher (``cfg.teacher``, Polyp-PVT B2) with the segmentation loss on every label, for
   ``cfg.teacher_recipe.epochs``: far longer than the students, as a teacher is trained once and reused.
3. Train three students (``cfg.student``, B0) for the same ``cfg.epochs``, each reading the masks of only
   ``cfg.labelled_fraction`` of the training images (the demo's regime: labels are scarce, the teacher
   saw them all): ``student_none`` without a teacher (the baseline), ``student_kdas`` with KDAS as
   described, and ``student_pseudo`` with the teacher's hard masks as segmentation targets on the frames
   without a label (``cfg.labelled_per_batch`` labelled images in every batch).
4. Evaluate all four on the test set(s) (``matlab`` protocol), measure parameters, MACs and latency at
   352 x 352, print the table with each model's difference to the plain student and why, and write
   ``results.csv``, ``results_per_dataset.csv``, ``results.png`` (meanDice per model, the teacher as a
   reference line, and overlays of the same test frames), ``curves.png`` and ``overlays.png``.

:data:`DEMO_OVERRIDES` sizes the default run (fast profile + these) for a few minutes on 2 CPU
cores; ``--profile laptop --data data/pranet`` runs the same pipeline on the real PraNet data.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from kdas_lab.atomic import save_figure, write_csv_atomic
from kdas_lab.bench.efficiency import model_efficiency
from kdas_lab.config import Config
from kdas_lab.data.io import load_image, load_mask
from kdas_lab.data.layout import data_root, find_pairs, find_test_root, has_train_images, list_test_sets
from kdas_lab.evaluation import evaluate_model
from kdas_lab.evaluation.inference import predict_image
from kdas_lab.metrics import mean_dice
from kdas_lab.models import load_model
from kdas_lab.runtime import resolve_device
from kdas_lab.train import TrainResult, distill, ensure_teacher, train_model
from kdas_lab.viz.curves import plot_curves
from kdas_lab.viz.overlays import GT_COLOR, PRED_COLOR, overlay_grid, overlay_mask

EFFICIENCY_SIZE = 352
CAVEATS = ("one seed, synthetic frames, students trained for {epochs} epochs on {share:.0%} of the labels; "
           "the 3-seed check of the same regime is `kdas-lab ablate --preset demo` (docs/results.md)")
WHY = {  # one line per row: what the model is and why it scores what it does
    "teacher": "B2, every label, {teacher_epochs} epochs: the reference",
    "student_none": "B0 on its labelled frames alone: the baseline",
    "student_kdas": "KDAS as published: its raw-logit L_SGM is many times the segmentation loss (docs/results.md §5)",
    "student_pseudo": "teacher's masks as segmentation targets on the unlabelled frames",
}


def _efficiency(model, device, size: int) -> dict[str, float]:
    eff = model_efficiency(model, size=size, device=device, warmup=1, iters=3, batch=1)
    return {"parameters": eff["params"], "MACs": f"{eff['GMACs']:.2f} G",
            "latency_ms": round(eff["latency_ms_b1"], 1)}


def _overlays(cfg: Config, models: dict, device, n: int = 4) -> tuple:
    """``overlay_grid``'s inputs for the first ``n`` frames of the first test set, every model's prediction
    and Dice: (images, masks, predictions, titles, scores)."""
    base = find_test_root(cfg.data_dir)
    name = list_test_sets(base)[0]
    pairs = find_pairs(base / name)[:n]
    images = [load_image(p[1]) for p in pairs]
    gts = [load_mask(p[2]) for p in pairs]
    preds = {label: [predict_image(m, img, size=cfg.image_size, device=device) for img in images]
             for label, m in models.items()}
    scores = {label: [mean_dice([p], [g]) for p, g in zip(ps, gts)] for label, ps in preds.items()}
    return images, gts, preds, [f"{name}/{p[0]}" for p in pairs], scores


def results_figure(table: pd.DataFrame, images, gts, preds, titles, scores) -> plt.Figure:
    """Top: test meanDice per student, the teacher as a dashed reference line; below: one row of overlays
    (the same test frame, each model's prediction and its Dice)."""
    students = table[table["model"] != "teacher"]
    fig = plt.figure(figsize=(9.5, 6.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1.0])
    ax = top.subplots()
    bars = ax.barh(students["model"], students["meanDice"], color="#4c72b0")
    ax.bar_label(bars, fmt="%.3f", padding=3)
    teacher = table.set_index("model").at["teacher", "meanDice"]
    ax.axvline(teacher, color="k", ls="--", lw=1)
    ax.text(teacher, len(students) - 0.45, f" teacher {teacher:.3f}", va="bottom", ha="right")
    ax.set_xlim(0, 1)
    ax.set_xlabel("test meanDice")
    ax.invert_yaxis()
    axes = bottom.subplots(1, 2 + len(preds))
    panels = [(images[0], titles[0]), (overlay_mask(images[0], gts[0], GT_COLOR), "ground truth")]
    panels += [(overlay_mask(images[0], p[0], PRED_COLOR), f"{m}\nDice {scores[m][0]:.2f}") for m, p in preds.items()]
    for a, (img, title) in zip(axes, panels):
        a.imshow(img)
        a.set_title(title, fontsize=8)
        a.axis("off")
    return fig


def run_demo(cfg: Config, out_dir, *, show_progress: bool = True,
             efficiency_size: int = EFFICIENCY_SIZE) -> pd.DataFrame:
    """Teacher and students on the data of ``cfg`` (:func:`~kdas_lab.data.layout.data_root`: the ``fast``
    profile builds its synthetic set in an empty ``cfg.data_dir``); returns the results table.

    MACs and latency (batch 1) are measured at ``efficiency_size`` (352, the papers' size)."""
    if not has_train_images(cfg.data_dir) and cfg.profile == "fast":
        print(f"building the synthetic data set in {cfg.data_dir} ...")
    cfg = cfg.replace(data_dir=data_root(cfg))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    t_start = time.perf_counter()
    runs = {}
    teacher_ckpt, origin = ensure_teacher(cfg, out_dir / "teacher", progress=show_progress)
    if origin == "cached":
        print(f"reusing the teacher trained earlier: {teacher_ckpt} (same configuration and data)")
    runs["teacher"] = TrainResult(teacher_ckpt, teacher_ckpt.parent / "last.pt",
                                  pd.read_csv(teacher_ckpt.parent / "history.csv"), load_model(teacher_ckpt, device))
    teacher = runs["teacher"].model
    runs["student_none"] = train_model(cfg.replace(method="none"), out_dir=out_dir / "student_none",
                                       student_name=cfg.student, show_progress=show_progress)
    runs["student_kdas"] = distill(cfg.replace(method="kdas"), teacher, out_dir / "student_kdas",
                                   show_progress=show_progress)
    runs["student_pseudo"] = distill(cfg.replace(method="targets", targets="pseudo"), teacher,
                                     out_dir / "student_pseudo", show_progress=show_progress)
    train_s = time.perf_counter() - t_start

    rows, per_dataset, efficiency = [], [], {}
    for label, result in runs.items():
        model = result.model.eval()
        scores = evaluate_model(model, cfg.data_dir, size=cfg.image_size, device=device, progress=False)
        per_dataset.append(scores.assign(model=label).reset_index())
        if model.name not in efficiency:  # one measurement per architecture: the students share B0's
            efficiency[model.name] = _efficiency(model, device, efficiency_size)
        rows.append({"model": label, "architecture": model.name, **efficiency[model.name],
                     "meanDice": round(float(scores["meanDic"].mean()), 4),
                     "meanIoU": round(float(scores["meanIoU"].mean()), 4),
                     "best_val_meanDice": round(float(result.history["val_meanDic"].max()), 4)})
    table = pd.DataFrame(rows)
    table = table[["model", "architecture", "parameters", "MACs", "meanDice", "meanIoU", "latency_ms",
                   "best_val_meanDice"]]
    table["vs_student_none"] = (table["meanDice"] - table.set_index("model").at["student_none", "meanDice"]).round(4)
    table["why"] = [WHY[m].format(teacher_epochs=cfg.for_teacher().epochs) for m in table["model"]]
    write_csv_atomic(table, out_dir / "results.csv")
    write_csv_atomic(pd.concat(per_dataset, ignore_index=True), out_dir / "results_per_dataset.csv")

    overlays = _overlays(cfg, {k: r.model for k, r in runs.items()}, device)
    fig = results_figure(table, *overlays)
    save_figure(fig, out_dir / "results.png")
    plt.close(fig)
    fig = plot_curves({k: r.history for k, r in runs.items()},
                      steps={k: pd.read_csv(out_dir / k / "steps.csv") for k in runs})
    save_figure(fig, out_dir / "curves.png")
    plt.close(fig)
    images, gts, preds, titles, scores = overlays
    fig = overlay_grid(images, gts, preds, titles=titles, scores=scores)
    save_figure(fig, out_dir / "overlays.png")
    plt.close(fig)
    total_s = time.perf_counter() - t_start
    table.attrs.update(train_seconds=train_s, total_seconds=total_s)
    print(f"\nKDAS demo ({cfg.profile} profile, {cfg.image_size}px, data {cfg.data_dir}; teacher "
          f"{cfg.for_teacher().epochs} epochs, students {cfg.epochs}); MACs and latency at "
          f"{efficiency_size}x{efficiency_size}, batch 1, on {device}")
    print(table.drop(columns="why").to_string(index=False))
    print(differences(table))
    print("\n".join(f"  {m:15s} {w}" for m, w in zip(table["model"], table["why"])))
    print("caveats: " + CAVEATS.format(epochs=cfg.epochs, share=cfg.labelled_fraction))
    print(f"training {train_s:.0f} s, total {total_s:.0f} s; outputs in {out_dir} "
          f"(results.csv, results.png, curves.png, overlays.png){os.linesep}")
    return table


def differences(table: pd.DataFrame, baseline: str = "student_none") -> str:
    """The test meanDice of each model minus the plain student's, one line."""
    dice = table.set_index("model")["meanDice"]
    return "meanDice vs the plain student: " + ", ".join(
        f"{m} {dice[m] - dice[baseline]:+.4f}" for m in dice.index if m != baseline)
