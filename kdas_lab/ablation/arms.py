"""Ablation arms, presets and the YAML grid format.

An *arm* is one training recipe for the student: a name, a distillation method (one of
``kdas_lab.losses.LOSS_METHODS``; ``"none"`` = no teacher, segmentation loss only) and
:class:`~kdas_lab.config.Config` overrides. ``extra`` is merged into ``cfg.extra`` (the KDAS
component switches ``at_weight`` / ``sgm_weight`` live there). Every arm is trained once per seed.

YAML grid format (see ``configs/ablation_example.yaml``)::

    profile: course            # optional base profile (fast | course | paper)
    seeds: 3                   # a count (seeds 0..N-1) or an explicit list [0, 1, 2]
    teacher: runs/teacher.pt   # optional teacher checkpoint (otherwise trained once)
    baseline: no_kd            # optional: the arm the differences are taken against
    set:                       # optional Config overrides for every arm
      image_size: 128
      epochs: 5
    arms:
      - no_kd                  # a registered arm, by name (see ARMS)
      - kdas
      - name: kdas_T8          # a new arm: method + Config overrides (+ cfg.extra)
        method: kdas
        set: {temperature: 8.0}
        extra: {sgm_weight: 0.5}
      - name: kdas_alpha       # a sweep: one arm per value, named kdas_alpha=0.2, kdas_alpha=0.4
        method: kdas
        sweep: {alpha: [0.2, 0.4]}

Unknown registered names, unknown Config fields and unknown top-level keys raise ``ValueError``
naming the grid file and the problem.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kdas_lab.config import DEMO_OVERRIDES, PROFILES, Config
from kdas_lab.losses import LOSS_METHODS

BASELINE = "no_kd"
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(Config)}
# Fields an arm may not override: they are the ablation's own axes or shared by all arms.
_RESERVED = {"method", "seed", "extra", "profile"}


@dataclass(frozen=True)
class Arm:
    """One ablation arm: ``name``, distillation ``method``, Config ``overrides`` and ``extra``."""

    name: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"invalid arm name {self.name!r} (non-empty, no '/', no leading '.')")
        bad = set(self.overrides) - (_CONFIG_FIELDS - _RESERVED)
        if bad:
            raise ValueError(f"arm {self.name!r}: cannot override {sorted(bad)}; "
                             f"allowed Config fields: {sorted(_CONFIG_FIELDS - _RESERVED)}")

    @property
    def needs_teacher(self) -> bool:
        return self.method != "none"

    def config(self, base: Config, seed: int) -> Config:
        """The Config this arm trains with for ``seed``."""
        return base.replace(method=self.method, seed=int(seed), **self.overrides,
                            extra={**base.extra, **self.extra})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "overrides": dict(self.overrides),
                "extra": dict(self.extra), "description": self.description}


def _registry() -> dict[str, Arm]:
    arms = [
        Arm("no_kd", "none", description="student alone: structure loss on both heads"),
        Arm("kdas", "kdas", description="KDAS as described: (1-a) L_seg + a (L_AT + L_SGM)"),
        Arm("kdas_at_only", "kdas", extra={"sgm_weight": 0.0}, description="KDAS without L_SGM"),
        Arm("kdas_sgm_only", "kdas", extra={"at_weight": 0.0}, description="KDAS without L_AT"),
        Arm("kdas_official", "kdas-official", {"drop_last": True},
            description="the published KDAS arithmetic (its SGM breaks on a last batch of 1: dropped)"),
        Arm("kdas_T1", "kdas", {"temperature": 1.0}, description="KDAS, temperature 1"),
        Arm("kdas_T4", "kdas", {"temperature": 4.0}, description="KDAS, temperature 4"),
        Arm("kdas_alpha0.1", "kdas", {"alpha": 0.1}, description="KDAS, alpha 0.1"),
        Arm("kdas_alpha0.5", "kdas", {"alpha": 0.5}, description="KDAS, alpha 0.5"),
        Arm("kdas_sgm_prob", "kdas", extra={"sgm_space": "prob"},
            description="VARIANT (not the method): KDAS with L_SGM on probabilities instead of raw logits"),
        # the teacher's answers through the segmentation loss (kdas_lab.losses.targets); not KDAS
        Arm("pseudo", "targets", {"targets": "pseudo"},
            description="teacher's hard masks as structure-loss targets where no label is given"),
        Arm("pseudo_soft", "targets", {"targets": "pseudo_soft"},
            description="teacher's probabilities as structure-loss targets where no label is given"),
        Arm("mix0.5", "targets", {"targets": "mix", "mix_lambda": 0.5},
            description="structure loss on 0.5 mask + 0.5 teacher probability"),
        Arm("mix0.7", "targets", {"targets": "mix", "mix_lambda": 0.7},
            description="structure loss on 0.7 mask + 0.3 teacher probability"),
        Arm("kdas_pseudo", "kdas", {"targets": "pseudo"}, extra={"sgm_space": "prob"},
            description="VARIANT (not the method): KDAS terms, SGM on probabilities, on top of pseudo"),
        Arm("kdas_mix", "kdas", {"targets": "mix", "mix_lambda": 0.5}, extra={"sgm_space": "prob"},
            description="VARIANT (not the method): KDAS terms, SGM on probabilities, on top of mix0.5"),
    ]
    for m, d in (("kd", "logit KD (Hinton) on the prediction maps"), ("at", "attention transfer"),
                 ("cwd", "channel-wise distillation"), ("skd", "structured (pairwise) KD"),
                 ("dist", "DIST (Pearson correlation) KD"), ("fitnet", "FitNet feature hints")):
        arms.append(Arm(m, m, description=d))
    return {a.name: a for a in arms}


ARMS: dict[str, Arm] = _registry()

# labelled variants of the method and teacher-target arms: never in a preset's standard arms
_VARIANTS = ("kdas_sgm_prob", "pseudo", "pseudo_soft", "mix0.5", "mix0.7", "kdas_pseudo", "kdas_mix")
_ALL = tuple(a for a in ARMS if a != "kdas_official" and a not in _VARIANTS)
PRESETS: dict[str, dict[str, Any]] = {
    # A CI-sized check of the whole pipeline: two arms, two seeds, tiny synthetic data.
    "fast": {"profile": "fast", "arms": ("no_kd", "kdas"), "seeds": 2, "about": "2 arms, CI-sized"},
    # The CPU study (docs/results.md): KDAS and its parts against no-KD and logit KD, laptop recipe.
    # Students see the 8 dihedral views (flips, right-angle rotations), so the teacher's maps are
    # computed once per image and view (the exact teacher-output cache) instead of every step.
    "laptop": {"profile": "laptop", "arms": ("no_kd", "kdas", "kdas_at_only", "kdas_sgm_only",
                                             "kdas_official", "kd"), "seeds": 3,
               "set": {"augment_mode": "dihedral", "teacher_cache": True},
               "about": "the CPU KDAS study: KDAS and its parts against no-KD and KD, 3 seeds"},
    # Label-scarce: the student reads 10 % of the masks; the teacher (trained on all) sees every image.
    "laptop-scarce": {"profile": "laptop", "arms": ("no_kd", "kdas", "kd"), "seeds": 3,
                      "set": {"augment_mode": "dihedral", "teacher_cache": True, "labelled_fraction": 0.1},
                      "about": "history: 10%% of the masks, batches drawn from all images (unfair to the KD arms)"},
    # Distillation that pays (docs/results.md): the teacher's answers through the segmentation loss.
    # Label-scarce, fair: 4 labelled + 4 unlabelled images in every batch, every term per sample, equal
    # steps (no_kd trains on its labelled images alone, resampled to the same number of batches).
    "laptop-scarce2": {"profile": "laptop", "arms": ("no_kd", "pseudo", "pseudo_soft", "kdas_pseudo"), "seeds": 5,
                       "set": {"augment_mode": "dihedral", "teacher_cache": True, "labelled_fraction": 0.02,
                               "labelled_per_batch": 4},
                       "about": "2%% of the masks, 4 labelled + 4 unlabelled per batch: no_kd vs the teacher's "
                                "answers as targets, 5 seeds"},
    "laptop-scarce10": {"profile": "laptop", "arms": ("no_kd", "pseudo", "pseudo_soft", "kdas_pseudo"), "seeds": 3,
                        "set": {"augment_mode": "dihedral", "teacher_cache": True, "labelled_fraction": 0.1,
                                "labelled_per_batch": 4},
                        "about": "the same with 10%% of the masks, 3 seeds"},
    # Full labels: teacher-mixed targets against no_kd, kd and KDAS, and KDAS's terms on top of the mix.
    "laptop-full": {"profile": "laptop", "arms": ("no_kd", "kd", "mix0.5", "mix0.7", "kdas", "kdas_mix"),
                    "seeds": 3, "set": {"augment_mode": "dihedral", "teacher_cache": True},
                    "about": "every mask: no_kd, kd, teacher-mixed targets, KDAS and KDAS on the mix, 3 seeds"},
    # The check behind `make demo` (its data and sizing): does the paying regime pay there, over 3 seeds?
    "demo": {"profile": "fast", "arms": ("no_kd", "kdas", "pseudo"), "seeds": 3, "set": DEMO_OVERRIDES,
             "about": "make demo's regime (synthetic, 10%% of the labels) with 3 seeds"},
    # The full ablation at the affordable course recipe.
    "course": {"profile": "course", "arms": _ALL, "seeds": 3, "about": "every standard arm, course recipe"},
    # The published recipe, with the bit-for-bit official KDAS arm added.
    "paper": {"profile": "paper", "arms": _ALL + ("kdas_official",), "seeds": 3,
              "about": "every standard arm and the published arithmetic, paper recipe"},
}


def get_arm(name: str) -> Arm:
    """A registered arm; unknown names raise ``ValueError`` listing the valid ones."""
    try:
        return ARMS[name]
    except KeyError:
        raise ValueError(f"unknown arm {name!r}; valid arms: {', '.join(ARMS)}") from None


def check_methods(arms: list[Arm]) -> None:
    """Fail early when an arm names a method the losses package does not know."""
    for arm in arms:
        if arm.method not in LOSS_METHODS:
            raise ValueError(f"arm {arm.name!r}: unknown method {arm.method!r}; "
                             f"valid methods: {', '.join(LOSS_METHODS)}")


def seed_list(seeds: int | list[int] | tuple[int, ...]) -> list[int]:
    """``3`` -> ``[0, 1, 2]``; a list is kept (duplicates rejected)."""
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a count or a list of integers, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds must be a non-empty list without duplicates, got {list(seeds)}")
    return out


@dataclass
class Grid:
    """A parsed ablation grid: arms, seeds and shared settings."""

    arms: list[Arm]
    seeds: list[int]
    profile: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    teacher: str | None = None
    baseline: str = BASELINE
    source: str = "<preset>"

    def __post_init__(self) -> None:
        names = [a.name for a in self.arms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{self.source}: duplicate arm names {dup}")
        if not self.arms:
            raise ValueError(f"{self.source}: no arms")


def preset_grid(name: str, seeds: int | list[int] | None = None) -> Grid:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    p = PRESETS[name]
    return Grid(arms=[get_arm(a) for a in p["arms"]], seeds=seed_list(seeds or p["seeds"]),
                profile=p["profile"], overrides=dict(p.get("set", {})), source=f"preset {name!r}")


def _parse_arm(entry: Any, where: str) -> list[Arm]:
    if isinstance(entry, str):
        return [get_arm(entry)]
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: an arm is a registered name or a mapping, got {entry!r}")
    unknown = set(entry) - {"name", "method", "set", "extra", "sweep", "description"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} "
                         "(allowed: name, method, set, extra, sweep, description)")
    if "name" not in entry:
        raise ValueError(f"{where}: arm mapping needs a 'name'")
    name = str(entry["name"])
    if "method" not in entry:
        if name in ARMS and set(entry) <= {"name"}:
            return [ARMS[name]]
        raise ValueError(f"{where}: arm {name!r} needs a 'method'")
    base = dict(name=name, method=str(entry["method"]), overrides=dict(entry.get("set") or {}),
                extra=dict(entry.get("extra") or {}), description=str(entry.get("description", "")))
    sweep = entry.get("sweep")
    if not sweep:
        return [Arm(**base)]
    if not isinstance(sweep, dict) or len(sweep) != 1:
        raise ValueError(f"{where}: 'sweep' must map exactly one Config field to a list of values")
    (key, values), = sweep.items()
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: sweep values for {key!r} must be a non-empty list")
    return [Arm(**{**base, "name": f"{name}={v}", "overrides": {**base["overrides"], key: v}})
            for v in values]


def parse_grid(data: dict[str, Any], source: str = "<grid>") -> Grid:
    """Build a :class:`Grid` from the mapping a YAML grid file holds."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a grid is a mapping with an 'arms' list, got {type(data).__name__}")
    unknown = set(data) - {"profile", "seeds", "teacher", "baseline", "set", "arms"}
    if unknown:
        raise ValueError(f"{source}: unknown top-level keys {sorted(unknown)} "
                         "(allowed: profile, seeds, teacher, baseline, set, arms)")
    profile = data.get("profile")
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"{source}: unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    overrides = dict(data.get("set") or {})
    bad = set(overrides) - (_CONFIG_FIELDS - _RESERVED)
    if bad:
        raise ValueError(f"{source}: 'set' has unknown or reserved Config fields {sorted(bad)}")
    if not isinstance(data.get("arms"), list):
        raise ValueError(f"{source}: 'arms' must be a list of arm names or mappings")
    arms: list[Arm] = []
    for i, entry in enumerate(data["arms"]):
        try:
            arms.extend(_parse_arm(entry, f"{source}: arms[{i}]"))
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if msg.startswith(source) else f"{source}: arms[{i}]: {msg}") from None
    teacher = data.get("teacher")
    return Grid(arms=arms, seeds=seed_list(data.get("seeds", 1)), profile=profile, overrides=overrides,
                teacher=str(teacher) if teacher else None, baseline=str(data.get("baseline", BASELINE)),
                source=source)


def load_grid(path: str | Path) -> Grid:
    """Read and validate a YAML grid file (errors name the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ablation grid {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    return parse_grid(data, source=str(path))
