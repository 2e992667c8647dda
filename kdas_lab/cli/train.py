"""``kdas-lab train-teacher`` and ``kdas-lab distill`` (also under ``torchrun`` for multi-GPU DDP).

    kdas-lab train-teacher --data DIR --out RUN [--profile fast|course|paper] [overrides] [--resume]
    kdas-lab train-teacher ... --resume --epochs 40 --allow-change epochs   # extend a finished run
    kdas-lab distill --teacher CKPT --method kdas --data DIR --out RUN [--student polyp_pvt_b0]
    torchrun --nproc_per_node=4 -m kdas_lab train-teacher --data DIR --out RUN --profile paper
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from kdas_lab.cli.common import add_config_args, config_from_args, explicit_overrides
from kdas_lab.config import TeacherRecipe

RECIPE_FIELDS = {f.name for f in dataclasses.fields(TeacherRecipe)}


def _summary(result) -> None:
    hist = result.history
    best = hist.loc[hist["val_meanDic"].idxmax()] if hist["val_meanDic"].notna().any() else hist.iloc[-1]
    print(hist.drop(columns=["time"], errors="ignore").to_string(index=False))
    print(f"best epoch {int(best['epoch'])}: val_meanDic {best['val_meanDic']:.4f} -> {result.best_checkpoint}")


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _train_teacher(args) -> int:
    from kdas_lab.train import train_teacher

    cfg = config_from_args(args)
    if args.model:
        cfg = cfg.replace(teacher=args.model)
    # what this command line sets is the teacher's own: where the teacher's recipe has the field, it goes there
    given = explicit_overrides(args)
    cfg = cfg.with_teacher(**{k: v for k, v in given.items() if k in RECIPE_FIELDS})
    result = train_teacher(cfg, args.out, show_progress=not args.quiet, **_run_flags(args))
    if _is_main():
        _summary(result)
    return 0


def _distill(args) -> int:
    from kdas_lab.losses import LOSS_METHODS
    from kdas_lab.train import distill

    if args.method not in LOSS_METHODS:
        raise ValueError(f"--method {args.method!r}: valid methods are {', '.join(LOSS_METHODS)}")
    cfg = config_from_args(args)
    if args.student:
        cfg = cfg.replace(student=args.student)
    cfg = cfg.replace(method=args.method)
    teacher = args.teacher
    if teacher is None and args.method != "none":
        raise ValueError(f"--method {args.method} needs --teacher CKPT (a checkpoint from train-teacher)")
    result = distill(cfg, teacher, args.out, show_progress=not args.quiet, **_run_flags(args))
    if _is_main():
        _summary(result)
    return 0


def _run_flags(args) -> dict:
    allow = [f.strip() for item in args.allow_change for f in item.split(",") if f.strip()]
    return dict(resume=args.resume, overwrite_run=args.overwrite_run, allow_change=allow)


def _common(p) -> None:
    p.add_argument("--out", type=Path, required=True, help="run directory (last.pt, best.pt, history.csv)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue exactly from OUT/last.pt")
    run.add_argument("--overwrite-run", action="store_true",
                     help="OUT already holds a run: delete it and start again (without this, or --resume, "
                          "an existing run is never touched)")
    p.add_argument("--allow-change", action="append", default=[], metavar="FIELD[,FIELD]",
                   help="with --resume: configuration fields that may differ from the run's (e.g. epochs, "
                        "to extend it); any other difference is refused")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_config_args(p)


def register(sub) -> None:
    p = sub.add_parser("train-teacher", help="train the Polyp-PVT teacher (segmentation loss only)")
    p.add_argument("--model", default=None, help="teacher architecture (default: config teacher, polyp_pvt_b2)")
    _common(p)
    p.set_defaults(func=_train_teacher)

    p = sub.add_parser("distill", help="distil a teacher checkpoint into the student")
    p.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint (best.pt of train-teacher)")
    p.add_argument("--method", default="kdas",
                   help="kdas | kdas-official | kd | at | cwd | skd | dist | fitnet | none (default kdas)")
    p.add_argument("--student", default=None, help="student architecture (default polyp_pvt_b0)")
    _common(p)
    p.set_defaults(func=_distill)
