"""One typed configuration shared by the CLI, the notebooks and the tests.

Profiles:
- ``fast``: tiny synthetic images and a few steps, so CI runs every notebook on 2 CPU cores.
- ``course``: a real but affordable recipe (augmentation on, cosine schedule, 256 px).
- ``laptop``: the from-scratch CPU recipe on the real PraNet data (128 px, one scale, augmentation,
  linear warm-up then cosine decay; students on one torch thread); the teacher trains for
  ``teacher_epochs``, far longer than the students' ``epochs`` (it is trained once and reused), with its
  own ``teacher_set`` (lr, batch, no stochastic depth, dihedral views, progressive resizing, every core).
  The recipe study behind it is in ``docs/results.md``.
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
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdas_lab.config_check import check_config

PROFILES = ("fast", "laptop", "course", "paper")
TARGET_MODES = ("mask", "pseudo", "pseudo_soft", "mix")  # cfg.targets: kdas_lab.losses.targets
AUGMENT_MODES = ("random", "dihedral")
SGM_HEADS = ("both", "p1")
TEACHER_SET_FORBIDDEN = {"profile", "teacher_set", "teacher_epochs", "epochs", "method", "labelled_fraction",
                         "labelled_per_batch", "targets"}


@dataclass
class Config:
    profile: str = "course"
    # paths and runtime
    data_dir: Path = Path("data/polyp")
    out_dir: Path = Path("runs")
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" | "mps"
    seed: int = 0
    num_workers: int = 2
    threads: int | None = None  # torch CPU threads for training; None = torch's default
    # models
    teacher: str = "polyp_pvt_b2"
    student: str = "polyp_pvt_b0"
    pretrained_backbone: str | None = None  # None | "imagenet" | path to pvt_v2_bX.pth
    drop_path_rate: float = 0.1  # stochastic depth in the backbone (Polyp-PVT's 0.1); 0 = off
    # data
    image_size: int = 256
    multiscale: tuple[float, ...] = (0.75, 1.0, 1.25)
    # progressive resizing: epoch e (from 1) trains at epoch_sizes[e - 1] (times the multiscale rates; the
    # batch is resized from image_size) while there is an entry, later epochs at image_size; validation
    # always at image_size
    epoch_sizes: tuple[int, ...] = ()
    augment: bool = True
    augment_mode: str = "random"  # "random" (continuous v2 augmentation) | "dihedral" (8 flips/rotations)
    val_fraction: float = 0.1
    split_by_sequence: bool = False
    cache: bool = False
    synthetic_train: int = 400
    synthetic_test: int = 100
    # optimisation
    epochs: int = 20
    teacher_epochs: int | None = None  # epochs of train-teacher; None = ``epochs``
    # the teacher's own recipe: Config fields train-teacher sets on top of the rest, e.g. {"lr": 5e-4}
    teacher_set: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    drop_last: bool = False  # drop an epoch's incomplete last batch (kdas-official breaks on a batch of 1)
    lr: float = 1e-4
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"  # "constant" | "cosine" | "poly"
    warmup_epochs: float = 0.0  # linear warm-up length, in epochs
    clip_mode: str = "value"  # "value" | "norm" | "none"
    clip_value: float = 0.5
    amp: bool | None = None  # None = bf16 on CUDA, off on CPU (the paper profile: False, fp32)
    amp_dtype: str = "bfloat16"  # "bfloat16" | "float16" (float16 adds a gradient scaler)
    channels_last: bool = False
    # torch.compile of the student and the frozen teacher (static shapes per training scale, eager
    # fallback on failure); None = on for CUDA, off elsewhere. On CUDA the default is meant to be chosen
    # by measurement (``kdas-lab bench``: compile_speedup); it is not yet measured here (no GPU lent).
    compile: bool | None = None
    # training images and masks held as tensors on the device (normalisation and dihedral views done
    # there, no DataLoader workers); None = on for CUDA when the uint8 arrays fit (kdas_lab.train.device_data)
    device_data: bool | None = None
    time_budget_s: float | None = None  # stop after the last epoch expected to end within this budget
    max_steps_per_epoch: int | None = None
    # distillation
    method: str = "none"  # the training objective (kdas_lab.losses.LOSS_METHODS); distill sets it
    temperature: float = 2.0
    alpha: float = 0.3
    sgm_heads: str = "both"  # heads the fixed kdas SGM compares: "both" (P1 and P2) | "p1" (as published)
    legacy_bce: bool = False
    log_term_grads_every: int = 0  # log each loss term's gradient norm every N steps (0 = off)
    labelled_fraction: float = 1.0  # share of training images whose masks the student may use
    # label-scarce distillation: labelled images in every batch (drawn with replacement from the labelled
    # ones), the rest unlabelled; None = batches drawn from all training images, whatever their label
    labelled_per_batch: int | None = None
    # what the segmentation loss compares the student with (methods "targets" and "kdas"): "mask", or the
    # teacher's answers: "pseudo" (its hard masks where no label is given), "pseudo_soft" (its
    # probabilities there), "mix" (mix_lambda * mask + (1 - mix_lambda) * teacher; the teacher where unlabelled)
    targets: str = "mask"
    mix_lambda: float = 0.5
    teacher_cache: bool = False  # teacher P1/P2 computed once per (image, view, size) when exact
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_config(self)  # types (converted where safe) and ranges of every field, first
        checks = (
            (self.profile in PROFILES, f"profile must be one of {', '.join(PROFILES)}"),
            (self.lr_schedule in ("constant", "cosine", "poly"), "lr_schedule must be constant, cosine or poly"),
            (self.clip_mode in ("value", "norm", "none"), "clip_mode must be value, norm or none"),
            (0.0 < self.labelled_fraction <= 1.0, "labelled_fraction must be in (0, 1]"),
            (self.warmup_epochs >= 0.0, "warmup_epochs must be >= 0"),
            (self.log_term_grads_every >= 0, "log_term_grads_every must be >= 0"),
            (self.amp_dtype in ("bfloat16", "float16"), "amp_dtype must be bfloat16 or float16"),
            (self.sgm_heads in SGM_HEADS, f"sgm_heads must be one of {', '.join(SGM_HEADS)}"),
            (self.targets in TARGET_MODES, f"targets must be one of {', '.join(TARGET_MODES)}"),
            (self.labelled_per_batch is None or self.labelled_per_batch < self.batch_size,
             "labelled_per_batch must be < batch_size (the rest of a batch is unlabelled)"),
            (self.augment_mode in AUGMENT_MODES, "augment_mode must be random or dihedral"),
            (self.threads is None or self.threads >= 1, "threads must be >= 1 (or None)"),
            (self.teacher_epochs is None or self.teacher_epochs >= 1, "teacher_epochs must be >= 1 (or None)"),
            (not set(self.teacher_set) & TEACHER_SET_FORBIDDEN,
             f"teacher_set may not set {', '.join(sorted(TEACHER_SET_FORBIDDEN))} (use teacher_epochs)"),
            (self.time_budget_s is None or self.time_budget_s > 0, "time_budget_s must be > 0 (or None)"),
            (len(self.epoch_sizes) <= self.epochs, f"epoch_sizes lists {len(self.epoch_sizes)} sizes for "
             f"{self.epochs} epoch(s): at most one size per epoch"),
            (max(self.epoch_sizes, default=0) <= self.image_size, f"epoch_sizes holds "
             f"{max(self.epoch_sizes, default=0)}, larger than image_size {self.image_size} (sizes grow up to it)"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Config: {message}")
        if self.teacher_set:
            try:
                self.for_teacher()  # unknown or out-of-range entries fail now
            except ValueError as exc:
                raise ValueError(f"Config: teacher_set: {str(exc).removeprefix('Config: ')}") from None

    @classmethod
    def from_profile(cls, profile: str, **overrides: Any) -> Config:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
        base = {"fast": _FAST, "laptop": _LAPTOP, "course": _COURSE, "paper": _PAPER}[profile]
        return cls(profile=profile, **{**base, **overrides})

    @classmethod
    def from_env(cls, profile: str | None = None, **overrides: Any) -> Config:
        """Profile from ``KDAS_PROFILE``, else ``KDAS_FAST=1`` (``fast``), else ``course``; paths and device
        from the environment."""
        if profile is None and os.environ.get("KDAS_PROFILE"):
            profile = os.environ["KDAS_PROFILE"]
            if profile not in PROFILES:
                raise ValueError(f"environment variable KDAS_PROFILE={profile!r}: unknown profile; valid "
                                 f"profiles: {', '.join(PROFILES)}")
        if profile is None:
            profile = "fast" if os.environ.get("KDAS_FAST", "0") not in ("", "0", "false") else "course"
        env: dict[str, Any] = {}
        if os.environ.get("KDAS_DATA_DIR"):
            env["data_dir"] = Path(os.environ["KDAS_DATA_DIR"])
        if os.environ.get("KDAS_DEVICE"):
            env["device"] = os.environ["KDAS_DEVICE"]
        return cls.from_profile(profile, **{**env, **overrides})

    def replace(self, **changes: Any) -> Config:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (for checkpoints loaded with ``weights_only=True`` and for JSON)."""
        out = dataclasses.asdict(self)
        out["data_dir"], out["out_dir"] = str(self.data_dir), str(self.out_dir)
        out["multiscale"], out["epoch_sizes"] = list(self.multiscale), list(self.epoch_sizes)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("data_dir", "out_dir"):
            if k in d:
                d[k] = Path(d[k])
        if "multiscale" in d:
            d["multiscale"] = tuple(d["multiscale"])
        return cls(**d)

    def for_teacher(self) -> Config:
        """What ``train-teacher`` runs (and its checkpoint records): ``teacher_set`` applied,
        ``teacher_epochs`` epochs, every label, the segmentation loss alone."""
        return self.replace(**self.teacher_set, method="none", labelled_fraction=1.0, labelled_per_batch=None,
                            targets="mask",
                            epochs=self.teacher_epochs or self.epochs, teacher_epochs=None, teacher_set={})

    def train_sizes(self, epoch: int | None = None) -> list[int]:
        """Multi-scale training sizes of ``epoch`` (None: after ``epoch_sizes``), ``round(size * rate / 32)
        * 32`` as published."""
        size = self.epoch_sizes[epoch - 1] if epoch is not None and epoch <= len(self.epoch_sizes) else self.image_size
        return [max(32, int(round(size * r / 32)) * 32) for r in self.multiscale]

    def size_passes(self) -> Counter[int]:
        """How many passes over the training set (epoch x scale) each training size gets."""
        return Counter(size for epoch in range(1, self.epochs + 1) for size in self.train_sizes(epoch))


_FAST: dict[str, Any] = dict(
    data_dir=Path("data/synthetic_fast"), image_size=64, multiscale=(1.0,), epochs=2, batch_size=4,
    synthetic_train=24, synthetic_test=8, num_workers=0, max_steps_per_epoch=4,
    lr=5e-4, lr_schedule="constant",
)
_LAPTOP: dict[str, Any] = dict(
    data_dir=Path("data/pranet"), image_size=128, multiscale=(1.0,), augment=True, cache=True,
    num_workers=0, threads=1, batch_size=8, lr=1e-3, warmup_epochs=1.0, lr_schedule="cosine",
    clip_mode="norm", clip_value=1.0, epochs=4, teacher_epochs=22,
    # the teacher alone on the machine (all cores, or OMP_NUM_THREADS), underfitting rather than
    # overfitting: no stochastic depth, the 8 dihedral views only; progressive resizing (5 epochs at
    # 64 px, 5 at 96, 12 at 128) and batch 16 buy 22 epochs in about 31 min on 2 cores (docs/results.md §1)
    teacher_set={"lr": 7e-4, "batch_size": 16, "warmup_epochs": 1.0, "drop_path_rate": 0.0,
                 "augment_mode": "dihedral", "epoch_sizes": [64] * 5 + [96] * 5, "threads": None},
)
_COURSE: dict[str, Any] = dict()
# ``make demo`` (fast profile + these; kdas_lab.demo), a few minutes on 2 CPU cores: 64 px synthetic frames,
# a teacher on every label, students on 10 % of the labels with 4 labelled images in every batch of 8
DEMO_OVERRIDES: dict[str, Any] = dict(
    data_dir=Path("data/synthetic_demo64_v2"), image_size=64, synthetic_train=256, synthetic_test=64,
    teacher_epochs=15, epochs=3, batch_size=8, max_steps_per_epoch=None, lr=1e-3, warmup_epochs=1.0,
    lr_schedule="cosine", clip_mode="norm", clip_value=1.0, augment=True, augment_mode="dihedral",
    teacher_cache=True, labelled_fraction=0.1, labelled_per_batch=4,
)
_PAPER: dict[str, Any] = dict(
    image_size=352, epochs=99, batch_size=16, lr_schedule="constant", augment=False,
    clip_mode="value", clip_value=0.5, legacy_bce=True, num_workers=4, amp=False,
)
