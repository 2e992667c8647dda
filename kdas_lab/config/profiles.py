"""The profiles: each a set of :class:`~kdas_lab.config.Config` values on top of the field defaults.

- ``fast``: tiny synthetic images and a few steps, so CI runs every notebook on 2 CPU cores.
- ``course``: a real but affordable recipe (augmentation on, cosine schedule, 256 px): the field defaults.
- ``laptop``: the from-scratch CPU recipe on the real PraNet data (128 px, one scale, augmentation,
  linear warm-up then cosine decay; students on one torch thread); the teacher has its own
  ``teacher_recipe`` (22 epochs, far longer than the students' 4, as it is trained once and reused; lr,
  batch, no stochastic depth, dihedral views, progressive resizing, every core). The recipe study behind
  it is in ``docs/results.md``.
- ``paper``: the published KDAS / Polyp-PVT recipe (352 px, scales 256/352/448, AdamW lr 1e-4, 99 epochs,
  batch 16, constant lr, clipping by value 0.5, T = 2, alpha = 0.3, fp32, the published unweighted BCE,
  no augmentation in effect). Where it differs from the published code (README, ``docs/paper_profile.md``):

  - model selection on a held-out ``val_fraction = 0.1`` of the 1,450 training images (the published code
    trains on all of them and selects on the test sets); ``val_fraction=0`` trains on all and keeps the
    last epoch;
  - ``--method kdas`` is the method as described (attention term with a gradient, SGM on P1 and P2);
    ``--method kdas-official`` is the reproduction path (the published arithmetic: zero-gradient
    attention term, SGM on P1 only);
  - ``batch_size`` is per process under torchrun (global batch = processes x ``batch_size``);
  - the backbone starts from random weights unless ``pretrained_backbone`` is set (the published runs
    start from ImageNet PVTv2 weights);
  - bf16 autocast only when asked (``amp=True``); the published code is fp32.

:data:`DEMO_OVERRIDES` is what ``make demo`` sets on top of ``fast``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

PROFILES = ("fast", "laptop", "course", "paper")

FAST: dict[str, Any] = dict(
    data_dir=Path("data/synthetic_fast"), image_size=64, multiscale=(1.0,), epochs=2, batch_size=4,
    synthetic_train=24, synthetic_test=8, num_workers=0, max_steps_per_epoch=4,
    lr=5e-4, lr_schedule="constant",
)
LAPTOP: dict[str, Any] = dict(
    data_dir=Path("data/pranet"), image_size=128, multiscale=(1.0,), augment=True, cache=True,
    num_workers=0, threads=1, batch_size=8, lr=1e-3, warmup_epochs=1.0, lr_schedule="cosine",
    clip_mode="norm", clip_value=1.0, epochs=4,
    # the teacher alone on the machine (every core, or OMP_NUM_THREADS), underfitting rather than
    # overfitting: no stochastic depth, the 8 dihedral views only; progressive resizing (5 epochs at
    # 64 px, 5 at 96, 12 at 128) and batch 16 buy 22 epochs in about 31 min on 2 cores (docs/results.md §1)
    teacher_recipe={"epochs": 22, "lr": 7e-4, "batch_size": 16, "warmup_epochs": 1.0, "drop_path_rate": 0.0,
                    "augment_mode": "dihedral", "epoch_sizes": [64] * 5 + [96] * 5},
)
COURSE: dict[str, Any] = dict()
PAPER: dict[str, Any] = dict(
    image_size=352, epochs=99, batch_size=16, lr_schedule="constant", augment=False,
    clip_mode="value", clip_value=0.5, legacy_bce=True, num_workers=4, amp=False,
)
BY_NAME = {"fast": FAST, "laptop": LAPTOP, "course": COURSE, "paper": PAPER}

# ``make demo`` (fast profile + these; kdas_lab.course.demo), a few minutes on 2 CPU cores: 64 px synthetic frames,
# a teacher on every label for 15 epochs, students on 10 % of the labels with 4 labelled images in every batch of 8
DEMO_OVERRIDES: dict[str, Any] = dict(
    data_dir=Path("data/synthetic_demo64_v2"), image_size=64, synthetic_train=256, synthetic_test=64,
    teacher_recipe={"epochs": 15}, epochs=3, batch_size=8, max_steps_per_epoch=None, lr=1e-3, warmup_epochs=1.0,
    lr_schedule="cosine", clip_mode="norm", clip_value=1.0, augment=True, augment_mode="dihedral",
    teacher_cache=True, labelled_fraction=0.1, labelled_per_batch=4,
)
