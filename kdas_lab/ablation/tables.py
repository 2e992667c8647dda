"""Reading and writing the ablation's files: per-run ``metrics.json`` markers, ``runs.csv``, ``summary.csv``.

Layout of an ablation directory ``DIR``::

    DIR/grid.json                      the arms, seeds and base config of the latest invocation
    DIR/teacher/...                    the teacher trained once (absent when --teacher is given)
    DIR/runs/<arm>/seed<k>/            the trainer's output for one (arm, seed)
    DIR/runs/<arm>/seed<k>/metrics.json  written last: its presence marks the run finished; it records
                                       the run's fingerprint (kdas_lab.store.fingerprint)
    DIR/runs/<arm>/replaced/seed<k>.<n>/  a run of another fingerprint, set aside before training again
    DIR/runs.csv                       tidy: arm, seed, dataset, metric, value
    DIR/summary.csv                    arm x dataset x metric statistics (see ``stats.arm_summary``)

Every file is written atomically (``kdas_lab.atomic``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from kdas_lab.ablation.stats import RUN_COLUMNS, arm_summary, check_runs
from kdas_lab.atomic import write_csv_atomic, write_json_atomic
from kdas_lab.store import Fingerprint, short

MARKER = "metrics.json"


def run_dir(out_dir: str | Path, arm: str, seed: int) -> Path:
    return Path(out_dir) / "runs" / arm / f"seed{int(seed)}"


def write_marker(directory: Path, arm: str, seed: int, records: list[dict], info: dict) -> Path:
    """``records``: dicts with keys dataset, metric, value. Written last, so it marks completion."""
    for r in records:
        if set(r) != {"dataset", "metric", "value"}:
            raise ValueError(f"run {arm}/seed{seed}: record {r} must have exactly dataset, metric, value")
    return write_json_atomic({"arm": arm, "seed": int(seed), "records": records, **info}, directory / MARKER)


def load_marker(path: Path, arm: str | None = None, seed: int | None = None) -> dict:
    """One finished run's marker, its records checked; a damaged marker, or one of another (``arm``,
    ``seed``) than its folder's, is an error naming the file."""
    try:
        data = json.loads(Path(path).read_text())
        if arm is not None and (data["arm"], int(data["seed"])) != (arm, int(seed)):
            raise ValueError(f"it records {data['arm']}/seed{data['seed']}, not {arm}/seed{seed} (copied?)")
        data["seed"] = int(data["seed"])
        data["records"] = [{"dataset": r["dataset"], "metric": r["metric"],
                            "value": math.nan if r["value"] is None else float(r["value"])} for r in data["records"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable run marker ({exc}); delete it to rerun that run") from None
    return data


def marker_rows(marker: dict) -> pd.DataFrame:
    """The tidy rows (arm, seed, dataset, metric, value) of a marker read by :func:`load_marker`."""
    rows = [{"arm": marker["arm"], "seed": marker["seed"], **r} for r in marker["records"]]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def read_marker(path: Path, arm: str | None = None, seed: int | None = None) -> pd.DataFrame:
    """The tidy rows of the finished run whose marker is ``path`` (see :func:`load_marker`)."""
    return marker_rows(load_marker(path, arm, seed))


def collect_runs(out_dir: str | Path) -> pd.DataFrame:
    """Every finished run's rows under ``out_dir/runs`` (markers only), sorted by arm then seed."""
    markers = sorted((Path(out_dir) / "runs").glob(f"*/seed*/{MARKER}"))
    if not markers:
        return pd.DataFrame(columns=RUN_COLUMNS)
    return pd.concat([read_marker(m) for m in markers], ignore_index=True)


def load_runs(directory: str | Path) -> pd.DataFrame:
    """``DIR/runs.csv`` as a DataFrame (arm, seed, dataset, metric, value).

    ``directory`` may also be the CSV file itself. Errors name the file and what is wrong.
    """
    path = Path(directory)
    if path.is_dir():
        path = path / "runs.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (run `kdas-lab ablate` first)")
    try:
        df = pd.read_csv(path, dtype={"arm": str, "dataset": str, "metric": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable CSV ({exc})") from None
    try:
        return check_runs(df)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def markdown_summary(summary: pd.DataFrame, metric: str = "meanDic", teacher: pd.DataFrame | None = None,
                     digits: int = 3) -> str:
    """One metric of ``summary.csv`` as a Markdown table: arms as rows, per dataset ``mean ± std`` and
    the paired difference to the baseline with its 95 % interval; ``teacher`` (``teacher.csv``) adds
    the teacher's own scores as a first row."""
    s = summary[summary["metric"] == metric]
    datasets = list(dict.fromkeys(s["dataset"]))
    f = f"{{:.{digits}f}}".format

    def cell(r) -> str:
        text = f(r["mean"]) + ("" if pd.isna(r["std"]) else " ± " + f(r["std"]))
        if r["diff"] != 0 and not pd.isna(r["diff"]):
            lo, hi = r["diff_ci_low"], r["diff_ci_high"]
            ci = "" if pd.isna(lo) else f" [{f(lo)}, {f(hi)}]"
            text += f"; Δ {r['diff']:+.{digits}f}{ci}"
        return text

    lines = ["| arm | n | " + " | ".join(datasets) + " |", "|---|---|" + "---|" * len(datasets)]
    if teacher is not None:
        t = teacher[teacher["metric"] == metric].set_index("dataset")["value"]
        lines.append("| teacher (B2) | 1 | " + " | ".join(f(t[d]) if d in t else "—" for d in datasets) + " |")
    for arm, g in s.groupby("arm", sort=False):
        rows = g.set_index("dataset")
        cells = [cell(rows.loc[d]) if d in rows.index else "—" for d in datasets]
        lines.append(f"| {arm} | {int(g['n'].max())} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def export_study(out_dir: str | Path, name: str, results_dir: str | Path, baseline: str = "no_kd") -> list[Path]:
    """Every finished run of the study ``out_dir`` as ``<results_dir>/<name>_runs.csv``, ``_summary.csv`` and
    ``_times.csv`` (arm, seed, train and evaluation seconds, load average, torch threads), each with a
    ``teacher`` column (the short digest of the teacher's weights). Runs of more than one teacher (or data)
    are refused: one teacher behind every number."""
    markers = sorted((Path(out_dir) / "runs").glob(f"*/seed*/{MARKER}"))
    if not markers:
        raise ValueError(f"{out_dir}: no finished runs to export")
    infos = [load_marker(m) for m in markers]
    fingerprints = [Fingerprint.from_dict(i.get("fingerprint")) for i in infos]
    if any(f is None for f in fingerprints):
        raise ValueError(f"{out_dir}: runs without a fingerprint; rerun them with this version")
    teachers = {f.teacher for f in fingerprints if f.teacher is not None}
    datas = {f.data for f in fingerprints}
    if len(teachers) > 1 or len(datas) > 1:
        raise ValueError(f"{out_dir}: runs of {len(teachers)} teachers and {len(datas)} data sets; "
                         "a study exports one teacher and one data set")
    teacher = short(teachers.pop()) if teachers else "none"
    runs = pd.concat([marker_rows(i) for i in infos], ignore_index=True)
    times = pd.DataFrame([{"arm": i["arm"], "seed": i["seed"], "train_seconds": round(i["train_seconds"], 1),
                           "eval_seconds": round(i["eval_seconds"], 1),
                           "load_avg_1min": None if i.get("load_avg_1min") is None else round(i["load_avg_1min"], 2),
                           "torch_threads": (i.get("machine") or {}).get("torch_threads")} for i in infos])
    results_dir = Path(results_dir)
    paths = [results_dir / f"{name}_{kind}.csv" for kind in ("runs", "summary", "times")]
    for table, path in zip((runs, arm_summary(runs, baseline=baseline), times), paths):
        write_csv_atomic(table.assign(teacher=teacher), path)
    return paths
