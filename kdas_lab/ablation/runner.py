"""Run every arm x seed of an ablation grid, resumably, and tabulate the results.

``run_ablation(cfg, grid, out_dir)``:

1. the teacher is loaded (``teacher=`` path) or trained once into ``out_dir/teacher`` (reused on
   the next invocation while it records this configuration's teacher fingerprint; only when some arm distils);
2. for each (arm, seed) without a ``metrics.json`` marker of the same fingerprint (config, teacher,
   data, profile: :mod:`kdas_lab.store.fingerprint`): train the student with
   ``kdas_lab.train.train_model`` at ``arm.config(cfg, seed)``, reload its best checkpoint
   (selected on the validation split by the trainer), record the trainer's best validation Dice
   (dataset ``val``) and evaluate every test set with ``kdas_lab.evaluation.evaluate_model``;
   write the marker last, with the fingerprint. Runs with a marker of the same fingerprint are skipped,
   so an interrupted ablation resumes; a run made with another teacher, config or data is moved aside
   (to ``replaced/seed<k>.<n>``, nothing is deleted) and trained again, and the decision is printed; the
   teacher itself is evaluated the same way once (``teacher.csv``), to report beside the arms;
3. after every run ``runs.csv`` and ``summary.csv`` are rewritten (atomically) from the markers of
   the grid's (arm, seed) pairs, so partial results are always on disk.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from kdas_lab.ablation.arms import Arm, Grid, check_methods
from kdas_lab.ablation.stats import RUN_COLUMNS, arm_summary
from kdas_lab.ablation.tables import MARKER, read_marker, run_dir, write_marker
from kdas_lab.atomic import write_csv_atomic, write_json_atomic
from kdas_lab.config import Config
from kdas_lab.data.layout import data_root
from kdas_lab.evaluation import evaluate_model
from kdas_lab.models import load_model
from kdas_lab.runtime import machine_info, resolve_device
from kdas_lab.store import Fingerprint, data_key, recorded_differences, set_aside, short, state_dict_sha256
from kdas_lab.train import ensure_teacher, train_model


@dataclass
class AblationResult:
    out_dir: Path
    runs: pd.DataFrame
    summary: pd.DataFrame
    trained: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)
    teacher_checkpoint: Path | None = None


def _val_dice(history: pd.DataFrame) -> float:
    """The best validation Dice the trainer logged (NaN if it logged none)."""
    cols = [c for c in history.columns if "val" in c.lower() and "dic" in c.lower()]
    if not cols or history.empty:
        return math.nan
    return float(pd.to_numeric(history[cols[0]], errors="coerce").max())


def _records(table: pd.DataFrame) -> list[dict]:
    """``evaluate_model``'s table (rows datasets, columns metrics) as tidy records."""
    return [{"dataset": str(ds), "metric": str(m), "value": float(v)}
            for ds, row in table.iterrows() for m, v in row.items()]


def prepare_teacher(cfg: Config, out_dir: Path, teacher: str | Path | None = None,
                    progress: bool = True) -> Path:
    """A teacher checkpoint: ``teacher`` if given, else the study's own in ``out_dir/teacher``, reused while it
    records this configuration's teacher fingerprint and trained there otherwise (:func:`ensure_teacher`)."""
    if teacher is not None:
        teacher = Path(teacher)
        if not teacher.is_file():
            raise FileNotFoundError(f"teacher checkpoint {teacher} does not exist")
        return teacher
    best, _ = ensure_teacher(cfg, out_dir / "teacher", progress=progress)
    return best


def teacher_scores(model: torch.nn.Module, teacher_ckpt: Path, teacher: str, cfg: Config, out_dir: Path,
                   datasets: list[str] | None = None, progress: bool = True) -> pd.DataFrame:
    """The teacher's own test scores (tidy: dataset, metric, value), evaluated like every student
    (same size and protocol) and kept in ``out_dir/teacher.csv``; re-evaluated when the teacher (its
    weights' digest ``teacher``), the size or the datasets change. ``model`` is the loaded ``teacher_ckpt``."""

    stamp = {"checkpoint": str(teacher_ckpt), "teacher": teacher, "size": cfg.image_size, "datasets": datasets}
    path, meta = out_dir / "teacher.csv", out_dir / "teacher_scores.json"
    if path.is_file() and meta.is_file():
        try:
            if json.loads(meta.read_text()) == stamp:
                return pd.read_csv(path)
        except ValueError:  # a damaged stamp: evaluate again and rewrite it
            tqdm.write(f"note: {meta} is unreadable; evaluating the teacher again")
    table = evaluate_model(model, cfg.data_dir, datasets=datasets, size=cfg.image_size, device=cfg.device,
                           progress=progress)
    scores = pd.DataFrame(_records(table))
    write_csv_atomic(scores, path)
    write_json_atomic(stamp, meta)
    return scores


def run_one(arm: Arm, seed: int, cfg: Config, out_dir: Path, teacher_ckpt: Path | None,
            fingerprint: Fingerprint, datasets: list[str] | None = None, progress: bool = True) -> Path:
    """Train and evaluate one (arm, seed) whose run has ``fingerprint``; returns its marker path.

    An interrupted training run (``last.pt`` without a marker) resumes where it stopped.
    """

    acfg = arm.config(cfg, seed)
    rdir = run_dir(out_dir, arm.name, seed)
    t0 = time.perf_counter()
    result = train_model(acfg, out_dir=rdir,
                         teacher=teacher_ckpt if arm.needs_teacher else None,
                         resume=(rdir / "last.pt").is_file(), show_progress=progress)
    train_s = time.perf_counter() - t0
    device = resolve_device(acfg.device)
    model = load_model(result.best_checkpoint, device=device)
    t1 = time.perf_counter()
    table = evaluate_model(model, acfg.data_dir, datasets=datasets, size=acfg.image_size, device=device,
                           progress=progress)
    records = [{"dataset": "val", "metric": "meanDic", "value": _val_dice(result.history)}]
    records += _records(table)
    info = {"method": arm.method, "train_seconds": train_s, "eval_seconds": time.perf_counter() - t1,
            "best_checkpoint": str(result.best_checkpoint), "config": acfg.to_dict(),
            "fingerprint": fingerprint.to_dict(), "machine": machine_info(), "load_avg_1min": os.getloadavg()[0]}
    return write_marker(rdir, arm.name, seed, records, info)


def refresh_tables(out_dir: Path, grid: Grid) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rewrite ``runs.csv`` and ``summary.csv`` from the finished runs of ``grid``."""
    frames = [read_marker(run_dir(out_dir, a.name, s) / MARKER, a.name, s) for a in grid.arms for s in grid.seeds
              if (run_dir(out_dir, a.name, s) / MARKER).is_file()]
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RUN_COLUMNS)
    summary = arm_summary(runs, baseline=grid.baseline)
    write_csv_atomic(runs, out_dir / "runs.csv")
    write_csv_atomic(summary, out_dir / "summary.csv")
    return runs, summary


def run_ablation(cfg: Config, grid: Grid, out_dir: str | Path, *, teacher: str | Path | None = None,
                 datasets: list[str] | None = None, progress: bool = True) -> AblationResult:
    """Train/evaluate every (arm, seed) of ``grid`` not yet finished in ``out_dir``; see module doc.

    ``cfg`` is the base configuration (profile and shared overrides already applied); each arm
    changes only its method, seed and own overrides. ``teacher`` (a checkpoint) overrides
    ``grid.teacher``; without either a teacher is trained once when an arm needs one.
    """
    out_dir = Path(out_dir)
    check_methods(grid.arms)
    if grid.baseline not in {a.name for a in grid.arms}:
        tqdm.write(f"note: baseline arm {grid.baseline!r} is not in the grid; differences will be NaN")
    cfg = cfg.replace(data_dir=data_root(cfg))
    out_dir.mkdir(parents=True, exist_ok=True)
    teacher = teacher if teacher is not None else grid.teacher
    teacher_ckpt = prepare_teacher(cfg, out_dir, teacher, progress) if any(a.needs_teacher for a in grid.arms) else None
    teacher_model = None if teacher_ckpt is None else load_model(teacher_ckpt, device=resolve_device(cfg.device))
    digest = None if teacher_model is None else state_dict_sha256(teacher_model)  # the teacher's identity
    data = data_key(cfg.data_dir)
    write_json_atomic({"arms": [a.to_dict() for a in grid.arms], "seeds": grid.seeds, "baseline": grid.baseline,
                       "source": grid.source, "config": cfg.to_dict(), "teacher": digest, "data": data,
                       "machine": machine_info()}, out_dir / "grid.json")
    if teacher_ckpt is not None:
        tqdm.write(f"teacher {short(digest)} ({teacher_ckpt}), data {data}")
        teacher_scores(teacher_model, teacher_ckpt, digest, cfg, out_dir, datasets, progress)
        del teacher_model  # each run loads it from teacher_ckpt

    def fingerprint(arm: Arm, seed: int) -> Fingerprint:
        return Fingerprint.of(arm.config(cfg, seed), digest if arm.needs_teacher else None, data)

    todo = [(a, s) for a in grid.arms for s in grid.seeds]
    done = [(a, s) for a, s in todo if _reusable(run_dir(out_dir, a.name, s), fingerprint(a, s))]
    pending = [(a, s) for a, s in todo if (a, s) not in done]
    trained: list[tuple[str, int]] = []
    bar = tqdm(total=len(todo), initial=len(done), desc="ablation", unit="run", disable=not progress)
    for arm, seed in pending:
        bar.set_postfix_str(f"{arm.name} seed {seed}")
        run_one(arm, seed, cfg, out_dir, teacher_ckpt, fingerprint(arm, seed), datasets, progress)
        trained.append((arm.name, seed))
        refresh_tables(out_dir, grid)
        bar.update(1)
    bar.close()
    runs, summary = refresh_tables(out_dir, grid)
    return AblationResult(out_dir, runs, summary, trained, [(a.name, s) for a, s in done], teacher_ckpt)


def _reusable(rdir: Path, fingerprint: Fingerprint) -> bool:
    """Is the run in ``rdir`` (finished or interrupted) this experiment? A finished run of another is
    set aside, an interrupted one too (its ``last.pt`` would be resumed); the decision is printed."""
    marker, last = rdir / MARKER, rdir / "last.pt"
    if not marker.is_file() and not last.is_file():
        return False
    differs = recorded_differences(marker if marker.is_file() else last, fingerprint)
    if not differs:
        return marker.is_file()
    moved = set_aside(rdir)
    tqdm.write(f"{rdir} is another experiment (recorded -> now: {'; '.join(differs[:4])}"
               f"{' ...' if len(differs) > 4 else ''}): moved to {moved.relative_to(rdir.parent)}, training it again")
    return False
