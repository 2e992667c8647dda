"""``kdas-lab evaluate`` (a checkpoint on PraNet test sets) and ``kdas-lab evaluate-maps`` (saved maps)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from kdas_lab.atomic import write_csv_atomic, write_json_atomic
from kdas_lab.cli.errors import network_size, positive_int
from kdas_lab.metrics import PROTOCOLS


def results_dict(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{dataset: {metric: value}}`` (plain floats, JSON-ready)."""
    return {str(name): {k: float(v) for k, v in row.items()} for name, row in df.iterrows()}


def write_outputs(df: pd.DataFrame, json_path: Path | None, csv_path: Path | None) -> None:
    if json_path is not None:
        write_json_atomic(results_dict(df), json_path)
    if csv_path is not None:
        write_csv_atomic(df, csv_path, index=True)


def show(df: pd.DataFrame, reference: bool = False) -> str:
    table = df.copy()
    if reference:
        from kdas_lab.evaluation.reference import reference_rows
        ref = reference_rows(list(df.index))
        if len(ref):
            table = pd.concat([table.assign(source="kdas_lab"),
                               ref[[c for c in df.columns if c in ref.columns]].assign(source=ref["method"])])
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        text = table.to_string()
    if reference:
        text += "\nReference sources:\n" + "\n".join(
            f"- {m}: {s}" for m, s in _sources().items())
    return text


def _sources() -> dict[str, str]:
    from kdas_lab.evaluation.reference import reference_table
    t = reference_table()
    return dict(zip(t["method"], t["source"]))


def run_evaluate(args) -> int:
    from kdas_lab.evaluation import evaluate_model
    from kdas_lab.models import load_model
    from kdas_lab.runtime import resolve_device

    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device=device)
    df = evaluate_model(model, args.data, datasets=args.datasets, protocol=args.protocol, size=args.size,
                        save_maps=args.save_maps, device=device)
    print(f"{model.name} from {args.checkpoint}, protocol {args.protocol}, size {args.size}, device {device}")
    print(show(df, reference=args.reference))
    write_outputs(df, args.json, args.csv)
    return 0


def run_evaluate_maps(args) -> int:
    from kdas_lab.evaluation import evaluate_maps

    df = evaluate_maps(args.pred, args.gt, datasets=args.datasets, protocol=args.protocol, workers=args.workers)
    print(f"maps {args.pred} vs {args.gt}, protocol {args.protocol}")
    print(show(df, reference=args.reference))
    write_outputs(df, args.json, args.csv)
    return 0


def _common(p) -> None:
    p.add_argument("--datasets", nargs="+", default=None, metavar="NAME",
                   help="test sets (folder names under TestDataset; default: all)")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="matlab",
                   help="matlab (PraNet toolbox, default) or kdas (the evaluator shipped with KDAS)")
    p.add_argument("--json", type=Path, default=None, help="write {dataset: {metric: value}}")
    p.add_argument("--csv", type=Path, default=None, help="write the table as CSV")
    p.add_argument("--reference", action="store_true", help="add the published rows per dataset")


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="predict and evaluate a checkpoint on PraNet test sets")
    p.add_argument("--checkpoint", type=Path, required=True, help="kdas_lab or published checkpoint")
    p.add_argument("--data", type=Path, required=True, help="ROOT with TestDataset/<name>/{images,masks}")
    p.add_argument("--save-maps", type=Path, default=None, help="write DIR/<name>/<stem>.png")
    p.add_argument("--size", type=network_size, default=352, help="model input size (multiple of 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    _common(p)
    p.set_defaults(func=run_evaluate)

    q = sub.add_parser("evaluate-maps", help="evaluate saved maps PRED/<name>/<stem>.png")
    q.add_argument("--pred", type=Path, required=True, help="PRED_ROOT with <name>/<stem>.png")
    q.add_argument("--gt", type=Path, required=True, help="TEST_ROOT with <name>/masks/<stem>.*")
    q.add_argument("--workers", type=positive_int, default=min(4, os.cpu_count() or 1),
                   help="processes over images (1: this process)")
    _common(q)
    q.set_defaults(func=run_evaluate_maps)
