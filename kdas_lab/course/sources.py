"""Where the course's models come from: one helper for the teacher and the students.

:func:`get_teacher` returns, in this order,

1. the **published** Polyp-PVT checkpoint when there is one: ``KDAS_TEACHER``, else
   ``checkpoints/PolypPVT.pth`` when that file exists (a path that is named but missing is an error, never
   silently skipped);
2. the **cached** teacher trained earlier: ``runs/notebooks/<profile>/teacher/best.pt`` (what the course
   trained), else, for the ``laptop`` profile, ``runs/laptop/teacher/best.pt`` (the from-scratch CPU
   teacher of ``docs/results.md``), each only when its fingerprint (:mod:`kdas_lab.store`) is what the
   course would train now: same recipe, same data, same profile;
3. a teacher **trained** now, after a loud notice with an up-front time estimate, with a progress bar.

:func:`get_student` does the same for a student distilled with ``method`` (``"none"``: no teacher); in the
``laptop`` profile the cached students include the laptop studies' seed-0 students (``runs/laptop/full``,
``runs/laptop/scarce2``) when their recorded teacher, data and profile are the ones in use. A cached model
that does not match is not reused, and the reason is printed.
An existing checkpoint is never overwritten unless ``retrain=True``, and then only once the new one is
trained (it trains beside it and replaces it on success). Every checkpoint records its fingerprint, and the
course's its provenance (profile, data folder, seed, role); :func:`describe_checkpoint` prints both.
"""
from __future__ import annotations

import datetime
import math
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch

from kdas_lab.ablation.tables import run_dir
from kdas_lab.config import Config
from kdas_lab.data.archive import sha256_file
from kdas_lab.data.integrity import is_synthetic
from kdas_lab.data.layout import data_root, list_stems, train_folder
from kdas_lab.losses import create_loss
from kdas_lab.models import create_model, load_model, read_checkpoint
from kdas_lab.runtime import resolve_device
from kdas_lab.store import Fingerprint, data_key, replace_dir, reusable, short, staging_dir, state_dict_sha256

TEACHER_ENV = "KDAS_TEACHER"
PUBLISHED_DEFAULT = Path("checkpoints/PolypPVT.pth")  # relative to the project root (notebook_setup's cwd)
STUDY_TEACHER = Path("runs/laptop/teacher/best.pt")  # the laptop teacher of docs/results.md (read only)
# the laptop studies (read only) whose seed-0 students the course reuses, by (method, targets, labelled
# share): (the study's folder, the arm)
STUDY_STUDENTS = {
    ("none", "mask", 1.0): (Path("runs/laptop/full"), "no_kd"),
    ("kdas", "mask", 1.0): (Path("runs/laptop/full"), "kdas"),
    ("kd", "mask", 1.0): (Path("runs/laptop/full"), "kd"),
    ("none", "mask", 0.02): (Path("runs/laptop/scarce2"), "no_kd"),
    ("targets", "pseudo", 0.02): (Path("runs/laptop/scarce2"), "pseudo"),
}


class Source(NamedTuple):
    model: torch.nn.Module  # eval mode, on the CPU
    checkpoint: Path
    origin: str  # "published" | "cached" | "trained"


def course_dir(cfg: Config) -> Path:
    """Where the course writes what it trains: ``runs/notebooks/<profile>``."""
    return Path("runs/notebooks") / cfg.profile


def published_teacher() -> Path | None:
    """The published checkpoint to use, or None; a path named by ``KDAS_TEACHER`` must exist."""
    named = os.environ.get(TEACHER_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"teacher checkpoint {path} (from {TEACHER_ENV}) not found")
        return path
    return PUBLISHED_DEFAULT if PUBLISHED_DEFAULT.is_file() else None


def teacher_candidates(cfg: Config) -> list[Path]:
    """The cached teacher checkpoints, in the order they are tried."""
    found = [course_dir(cfg) / "teacher" / "best.pt"]
    if cfg.profile == "laptop":
        found.append(STUDY_TEACHER)
    return found


def student_dir(cfg: Config, method: str) -> Path:
    """Where the course keeps its student of ``method``: ``student_<method>``, with the target mode and
    the labelled share in the name when they are not the defaults (e.g. ``student_targets_pseudo_labels2%``)."""
    name = f"student_{method}"
    if cfg.targets != "mask":
        name += f"_{cfg.targets}"
    if cfg.labelled_fraction < 1:
        name += f"_labels{cfg.labelled_fraction:.0%}"
    return course_dir(cfg) / name


def student_candidates(cfg: Config, method: str) -> list[Path]:
    """The cached student checkpoints for ``method``, in the order they are tried: the course's own, then
    (``laptop`` profile) the laptop studies' seed-0 student of that method, targets and labelled share."""
    found = [student_dir(cfg, method) / "best.pt"]
    study = STUDY_STUDENTS.get((method, cfg.targets, cfg.labelled_fraction)) if cfg.profile == "laptop" else None
    if study is not None:
        found.append(run_dir(*study, seed=0) / "best.pt")
    return found


def provenance(cfg: Config, root: str | os.PathLike, *, role: str, method: str,
               teacher_checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """What a checkpoint trained by the course records about how it was made."""
    return {
        "role": role, "method": method, "profile": cfg.profile, "data_dir": str(root),
        "synthetic": is_synthetic(root), "seed": cfg.seed,
        "image_size": cfg.image_size, "epochs": cfg.for_teacher().epochs if role == "teacher" else cfg.epochs,
        "teacher_checkpoint": None if teacher_checkpoint is None else str(teacher_checkpoint),
        "kdas_lab": version("kdas_lab"), "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def describe_checkpoint(path: str | os.PathLike) -> pd.Series:
    """Model, epoch, validation Dice and provenance of a checkpoint, as one printable Series."""
    path = Path(path)
    ckpt = read_checkpoint(path, meta_only=True)
    cfg = ckpt.get("config") or {}
    prov = ckpt.get("provenance") or {}
    fingerprint = Fingerprint.from_dict(ckpt.get("fingerprint"))
    rows: dict[str, Any] = {"checkpoint": str(path), "model": ckpt.get("model_name", "?"),
                            "epoch": ckpt.get("epoch"), "val_meanDic": (ckpt.get("metrics") or {}).get("val_meanDic")}
    if fingerprint is not None:
        rows.update({"provenance": "trained by the course" if prov else "trained by kdas_lab (CLI or study)",
                     "profile": fingerprint.profile, "method": ckpt.get("method"), "seed": cfg.get("seed"),
                     "teacher": short(fingerprint.teacher), "data_key": fingerprint.data})
        rows.update({k: v for k, v in prov.items() if k not in rows and (k != "teacher_checkpoint" or v is not None)})
    elif ckpt.get("format") == "kdas_lab":
        rows.update({"provenance": "not recorded (trained by a kdas_lab older than fingerprints)",
                     "profile": cfg.get("profile"), "data_dir": cfg.get("data_dir"), "seed": cfg.get("seed"),
                     "method": ckpt.get("method")})
    else:
        rows.update({"provenance": "published release (not trained by kdas_lab)", "sha256": sha256_file(path)})
    return pd.Series(rows, name=path.name, dtype=object)


def training_history(checkpoint: str | os.PathLike) -> pd.DataFrame | None:
    """The per-epoch ``history.csv`` beside a checkpoint the trainer wrote (None for a published one)."""
    path = Path(checkpoint).parent / "history.csv"
    return pd.read_csv(path) if path.is_file() else None


def estimate_seconds(cfg: Config, root: Path, model_name: str, *, with_teacher: str | None = None) -> float:
    """Rough training time: the real training step (:mod:`kdas_lab.train.step_timing`: the run's loss,
    precision, optimizer, clipping and checks), timed once per training size after a warm-up step, times the
    number of steps at that size over ``cfg.epochs`` (progressive resizing and multi-scale included)."""
    from kdas_lab.train.step_timing import step_trainer, time_step  # noqa: PLC0415 (as in get_teacher)

    device = resolve_device(cfg.device)
    n_train = len(list_stems(train_folder(root)))
    n_fit = max(1, n_train - int(round(n_train * cfg.val_fraction)))
    steps = math.ceil(n_fit / cfg.batch_size)
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    student = create_model(model_name).to(device)
    teacher = create_model(with_teacher).to(device).eval().requires_grad_(False) if with_teacher else None
    run_cfg = cfg if teacher is not None else cfg.replace(method="none", targets="mask")
    loss = create_loss(run_cfg.method, run_cfg, student=student, teacher=teacher)
    trainer = step_trainer(run_cfg, student=student, loss=loss, device=device, teacher=teacher, n_train=n_fit)
    total = 0.0
    for size, passes in cfg.size_passes().items():
        batch = min(cfg.batch_size, n_fit)
        images = torch.randn(batch, 3, size, size, device=device)  # (B, 3, s, s)
        masks = (torch.rand(batch, 1, size, size, device=device) > 0.5).float()  # (B, 1, s, s)
        total += time_step(trainer.train_step, trainer.device, images, masks, size) * steps * passes
    return total


def _notice(what: str, cfg: Config, root: Path, seconds: float, out_dir: Path) -> None:
    line = "=" * 88
    print(f"{line}\nNOTICE: training {what} now ({cfg.profile} profile, data {root}, device "
          f"{resolve_device(cfg.device)}).\nEstimated time: about {seconds / 60:.1f} min "
          f"({seconds:.0f} s). It is saved to {out_dir} and reused next time (RETRAIN = True trains again).\n{line}")


def _train(cfg: Config, out_dir: Path, run, what: str, root: Path, seconds: float, progress: bool) -> Path:
    """Train into a sibling of ``out_dir`` and swap it in on success: an interrupt keeps the old model."""
    _notice(what, cfg, root, seconds, out_dir)
    staged = staging_dir(out_dir)
    run(cfg.replace(data_dir=root), staged, progress)  # overwrite_run: an interrupted staging folder starts again
    return replace_dir(staged, out_dir) / "best.pt"


def get_teacher(cfg: Config, retrain: bool = False, *, progress: bool = True) -> Source:
    """The course's teacher: published, else cached, else trained now (see the module docstring)."""
    from kdas_lab.train import ensure_teacher  # noqa: PLC0415 (kdas_lab.train imports much; only needed to train)

    root = data_root(cfg)
    if not retrain:
        published = published_teacher()
        if published is not None:
            return Source(create_model(cfg.teacher, checkpoint=published).eval(), published, "published")
        expected = Fingerprint.of(cfg.for_teacher(), None, data_key(root))
        for path in teacher_candidates(cfg):
            if reusable(path, expected):
                return Source(load_model(path), path, "cached")
    out_dir = course_dir(cfg) / "teacher"
    seconds = estimate_seconds(cfg.for_teacher(), root, cfg.teacher)
    best, _ = ensure_teacher(cfg.replace(data_dir=root), out_dir, retrain=True, progress=progress,
                             before_training=lambda: _notice(f"a teacher ({cfg.teacher})", cfg, root, seconds, out_dir),
                             provenance=provenance(cfg, root, role="teacher", method="none"))
    return Source(load_model(best), best, "trained")


def get_student(cfg: Config, method: str, teacher: Source | str | os.PathLike | None = None,
                retrain: bool = False, *, progress: bool = True) -> Source:
    """The course's student for ``method`` (``"none"``: trained without a teacher): cached in
    :func:`student_dir` when made from this teacher and data, else
    distilled now from ``teacher`` (a :class:`Source` or a checkpoint path; None: :func:`get_teacher`)."""
    from kdas_lab.train import train_model  # noqa: PLC0415 (as in get_teacher)

    out_dir = student_dir(cfg, method)
    root = data_root(cfg)
    teacher_ckpt, digest = None, None
    if method != "none":  # the student's teacher: the course's own unless one is given
        teacher = get_teacher(cfg, progress=progress) if teacher is None else teacher
        if not isinstance(teacher, Source):
            teacher = Source(load_model(teacher), Path(teacher), "given")
        teacher_ckpt, digest = teacher.checkpoint, state_dict_sha256(teacher.model)
    cfg = cfg.replace(method=method)
    if not retrain:
        expected = Fingerprint.of(cfg, digest, data_key(root))
        own, *study = student_candidates(cfg, method)
        if reusable(own, expected):
            return Source(load_model(own), own, "cached")
        for path in study:
            if reusable(path, expected, recipe=False):
                return Source(load_model(path), path, "cached")
    seconds = estimate_seconds(cfg, root, cfg.student,
                               with_teacher=cfg.teacher if teacher_ckpt else None)
    prov = provenance(cfg, root, role="student", method=method, teacher_checkpoint=teacher_ckpt)

    def run(c, o, p):
        return train_model(c, out_dir=o, teacher=teacher_ckpt, student_name=c.student, show_progress=p,
                           overwrite_run=True, provenance=prov)

    best = _train(cfg, out_dir, run, f"a student ({cfg.student}, method {method})", root, seconds, progress)
    return Source(load_model(best), best, "trained")
