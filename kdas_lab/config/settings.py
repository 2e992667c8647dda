"""The :class:`Config` dataclass: every field with its default, choices or range side by side
(:func:`~kdas_lab.config.fields.setting`), and the teacher's recipe as a named section."""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdas_lab.config.fields import (
    MULTIPLE_OF_32,
    RATES,
    SIZES,
    above,
    at_least,
    check_fields,
    runtime_fields,
    setting,
    within,
)
from kdas_lab.config.profiles import BY_NAME, PROFILES

TARGET_MODES = ("mask", "pseudo", "pseudo_soft", "mix")  # cfg.targets: kdas_lab.losses.targets
AUGMENT_MODES = ("random", "dihedral")
SGM_HEADS = ("both", "p1")


def _plain(value: Any) -> Any:
    """Paths as strings and tuples as lists, through dicts (JSON and ``weights_only`` checkpoints)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


@dataclass(frozen=True)
class TeacherRecipe:
    """What ``train-teacher`` changes from the students' recipe (it trains on every label, with the
    segmentation loss alone); None = as the students. ``threads`` is not inherited: None = torch's default
    (every core), as a teacher trains alone."""

    epochs: int | None = setting(None, rule=at_least(1))
    lr: float | None = setting(None, rule=above(0))
    batch_size: int | None = setting(None, rule=at_least(1))
    warmup_epochs: float | None = setting(None, rule=at_least(0))
    lr_schedule: str | None = setting(None, choices=("constant", "cosine", "poly"))
    drop_path_rate: float | None = setting(None, rule=within(0, 1, high_open=True))
    augment_mode: str | None = setting(None, choices=AUGMENT_MODES)
    epoch_sizes: tuple[int, ...] | None = setting(None, rule=SIZES)
    threads: int | None = setting(None, rule=at_least(1))

    def __post_init__(self) -> None:
        check_fields(self, prefix="Config: teacher_recipe: ")

    def replace(self, **changes: Any) -> TeacherRecipe:
        return dataclasses.replace(self, **changes)


@dataclass
class Config:
    profile: str = setting("course", choices=PROFILES)
    # paths and runtime
    data_dir: Path = setting(Path("data/polyp"), runtime=True)  # the data is named by its content instead
    out_dir: Path = setting(Path("runs"), runtime=True)
    device: str = setting("auto", runtime=True)  # "auto" | "cpu" | "cuda" | "cuda:1" | "mps"
    seed: int = setting(0)
    num_workers: int = setting(2, rule=at_least(0), runtime=True)
    threads: int | None = setting(None, rule=at_least(1), runtime=True)  # torch CPU threads; None = torch's default
    # models
    teacher: str = setting("polyp_pvt_b2")
    student: str = setting("polyp_pvt_b0")
    pretrained_backbone: str | None = setting(None)  # None | "imagenet" | path to pvt_v2_bX.pth
    # stochastic depth in the backbone (Polyp-PVT's 0.1)
    drop_path_rate: float = setting(0.1, rule=within(0, 1, high_open=True))
    # data
    image_size: int = setting(256, rule=MULTIPLE_OF_32)
    multiscale: tuple[float, ...] = setting((0.75, 1.0, 1.25), rule=RATES)
    # progressive resizing: epoch e (from 1) trains at epoch_sizes[e - 1] (times the multiscale rates; the
    # batch is resized from image_size) while there is an entry, later epochs at image_size; validation
    # always at image_size
    epoch_sizes: tuple[int, ...] = setting((), rule=SIZES)
    augment: bool = setting(True)
    augment_mode: str = setting("random", choices=AUGMENT_MODES)  # continuous v2 augmentation | 8 flips/rotations
    val_fraction: float = setting(0.1, rule=within(0, 1, high_open=True))
    split_by_sequence: bool = setting(False)
    cache: bool = setting(False)
    synthetic_train: int = setting(400, rule=at_least(1))
    synthetic_test: int = setting(100, rule=at_least(1))
    # optimisation
    epochs: int = setting(20, rule=at_least(1))
    batch_size: int = setting(8, rule=at_least(1))
    drop_last: bool = setting(False)  # drop an epoch's incomplete last batch (kdas-official breaks on a batch of 1)
    lr: float = setting(1e-4, rule=above(0))
    weight_decay: float = setting(1e-4, rule=at_least(0))
    lr_schedule: str = setting("cosine", choices=("constant", "cosine", "poly"))
    warmup_epochs: float = setting(0.0, rule=at_least(0))  # linear warm-up length, in epochs
    clip_mode: str = setting("value", choices=("value", "norm", "none"))
    clip_value: float = setting(0.5, rule=above(0))
    amp: bool | None = setting(None)  # None = bf16 on CUDA, off on CPU (the paper profile: False, fp32)
    amp_dtype: str = setting("bfloat16", choices=("bfloat16", "float16"))  # float16 adds a gradient scaler
    channels_last: bool = setting(False)
    # stop after the last epoch expected to end within this many seconds
    time_budget_s: float | None = setting(None, rule=above(0), runtime=True)
    max_steps_per_epoch: int | None = setting(None, rule=at_least(1))
    # the teacher's own recipe (train-teacher): kdas_lab.config.TeacherRecipe
    teacher_recipe: TeacherRecipe = setting(TeacherRecipe())
    # distillation
    method: str = setting("none")  # the training objective (kdas_lab.losses.LOSS_METHODS); --method sets it
    temperature: float = setting(2.0, rule=above(0))
    alpha: float = setting(0.3, rule=within(0, 1))
    sgm_heads: str = setting("both", choices=SGM_HEADS)  # the fixed kdas SGM on P1 and P2 | on P1 (as published)
    legacy_bce: bool = setting(False)
    log_term_grads_every: int = setting(0, rule=at_least(0))  # each loss term's gradient norm every N steps; 0 = off
    # share of the training images whose masks the student may use
    labelled_fraction: float = setting(1.0, rule=within(0, 1, low_open=True))
    # label-scarce distillation: labelled images in every batch (drawn with replacement from the labelled
    # ones), the rest unlabelled; None = batches drawn from all training images, whatever their label
    labelled_per_batch: int | None = setting(None, rule=at_least(1))
    # what the segmentation loss compares the student with (methods "targets" and "kdas"): "mask", or the
    # teacher's answers: "pseudo" (its hard masks where no label is given), "pseudo_soft" (its
    # probabilities there), "mix" (mix_lambda * mask + (1 - mix_lambda) * teacher; the teacher where unlabelled)
    targets: str = setting("mask", choices=TARGET_MODES)
    mix_lambda: float = setting(0.5, rule=within(0, 1))
    # speed (the same numbers, faster): teacher P1/P2 computed once per (image, view, size) when exact,
    # stored in teacher_cache_dir (None: <data_dir>/.kdas_cache/teacher)
    teacher_cache: bool = setting(False, runtime=True)
    teacher_cache_dir: Path | None = setting(None, runtime=True)
    # torch.compile of the student and the frozen teacher (static shapes per training scale, eager
    # fallback on failure); None = on for CUDA, off elsewhere (meant to be chosen by ``kdas-lab bench``'s
    # compile_speedup; not yet measured on a GPU here). Mode None = torch's default; "reduce-overhead" adds CUDA graphs
    compile: bool | None = setting(None, runtime=True)
    compile_backend: str = setting("inductor", runtime=True)
    compile_mode: str | None = setting(None, choices=("default", "reduce-overhead", "max-autotune",
                                                      "max-autotune-no-cudagraphs"), runtime=True)
    # training images and masks held as tensors on the device (normalisation and dihedral views done there,
    # no DataLoader workers); None = on for CUDA when they take at most device_data_max_fraction of its free memory
    device_data: bool | None = setting(None, runtime=True)
    device_data_max_fraction: float = setting(0.5, rule=within(0, 1, low_open=True), runtime=True)
    # hyperparameters of one loss (keys listed in kdas_lab.losses, e.g. {"sgm_weight": 0.5})
    extra: dict[str, Any] = setting({})

    def __post_init__(self) -> None:
        check_fields(self)  # types (converted where safe), choices and ranges of every field, first
        checks = (
            (self.labelled_per_batch is None or self.labelled_per_batch < self.batch_size,
             "labelled_per_batch must be < batch_size (the rest of a batch is unlabelled)"),
            (len(self.epoch_sizes) <= self.epochs, f"epoch_sizes lists {len(self.epoch_sizes)} sizes for "
             f"{self.epochs} epoch(s): at most one size per epoch"),
            (max(self.epoch_sizes, default=0) <= self.image_size, f"epoch_sizes holds "
             f"{max(self.epoch_sizes, default=0)}, larger than image_size {self.image_size} (sizes grow up to it)"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Config: {message}")
        if self.teacher_recipe != TeacherRecipe():
            try:
                self.for_teacher()  # a recipe that breaks a rule of the whole (e.g. epoch_sizes) fails now
            except ValueError as exc:
                raise ValueError(f"Config: teacher_recipe: {str(exc).removeprefix('Config: ')}") from None

    @classmethod
    def from_profile(cls, profile: str, **overrides: Any) -> Config:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
        return cls(profile=profile, **{**BY_NAME[profile], **overrides})

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

    def with_teacher(self, **changes: Any) -> Config:
        """This config with ``teacher_recipe`` fields changed, e.g. ``cfg.with_teacher(epochs=1)``."""
        return self.replace(teacher_recipe=self.teacher_recipe.replace(**changes))

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (for checkpoints loaded with ``weights_only=True`` and for JSON)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """A Config from :meth:`to_dict` (keys of fields it no longer has are dropped)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def for_teacher(self) -> Config:
        """What ``train-teacher`` runs (and its checkpoint records): ``teacher_recipe`` applied, every label,
        the segmentation loss alone."""
        recipe = {k: v for k, v in dataclasses.asdict(self.teacher_recipe).items() if v is not None}
        return self.replace(**{**recipe, "threads": self.teacher_recipe.threads}, teacher_recipe=TeacherRecipe(),
                            method="none", labelled_fraction=1.0, labelled_per_batch=None, targets="mask")

    def train_sizes(self, epoch: int | None = None) -> list[int]:
        """Multi-scale training sizes of ``epoch`` (None: after ``epoch_sizes``), ``round(size * rate / 32)
        * 32`` as published."""
        size = self.epoch_sizes[epoch - 1] if epoch is not None and epoch <= len(self.epoch_sizes) else self.image_size
        return [max(32, int(round(size * r / 32)) * 32) for r in self.multiscale]

    def size_passes(self) -> Counter[int]:
        """How many passes over the training set (epoch x scale) each training size gets."""
        return Counter(size for epoch in range(1, self.epochs + 1) for size in self.train_sizes(epoch))


RUNTIME_FIELDS = runtime_fields(Config)  # how a run executes, not what it computes
_DEFAULTS = Config().to_dict()


def config_changes(old: dict[str, Any], new: dict[str, Any], *, ignore=()) -> dict[str, tuple[Any, Any]]:
    """``{field: (old, new)}`` for every Config field whose values in the two :meth:`Config.to_dict` dicts
    differ, less ``ignore``. A field one dict lacks (written by another version of kdas_lab) counts as its
    default; keys of fields Config no longer has are not compared."""
    out = {}
    for key, default in _DEFAULTS.items():
        a, b = old.get(key, default), new.get(key, default)
        if key not in ignore and a != b:
            out[key] = (a, b)
    return out
