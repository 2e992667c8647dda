"""``kdas-lab ablate``: every arm x seed of a preset or YAML grid, resumable, with seed statistics.

Examples::

    kdas-lab ablate --preset fast --out runs/ablation_fast
    kdas-lab ablate --grid configs/ablation_example.yaml --seeds 3 --data data/pranet --out runs/abl
    kdas-lab ablate --preset course --arms no_kd,kdas --teacher runs/teacher/best.pt --out runs/abl

Settings apply in this order, later wins: the profile (``--profile``, else the grid's
``profile``, else the preset's), the grid's ``set:`` block, then the command-line flags.

A finished run is reused only when its fingerprint (config, teacher weights, data, profile) matches
this invocation's; a run of another teacher or config is moved to ``runs/<arm>/replaced/`` and
trained again (the decision is printed), so one study never mixes teachers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kdas_lab.ablation.arms import ARMS, PRESETS, Grid, get_arm, load_grid, preset_grid, seed_list
from kdas_lab.cli.common import FLAG_FIELDS, add_config_args, config_from_args
from kdas_lab.cli.errors import standalone_main
from kdas_lab.config import Config


def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> ``[0, 1, 2]``; ``"0,4,7"`` -> ``[0, 4, 7]``."""
    try:
        if "," in text:
            return seed_list([int(s) for s in text.split(",") if s.strip()])
        return seed_list(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: {exc}") from None


def _grid_value(key: str, value):
    if key in ("data_dir", "out_dir"):
        return Path(value)
    return tuple(value) if isinstance(value, list) else value


def build_grid_and_config(args: argparse.Namespace) -> tuple[Grid, Config]:
    """The grid (preset or YAML, then --arms / --seeds) and the base Config for ``args``."""
    if (args.preset is None) == (args.grid is None):
        raise ValueError(f"give exactly one of --preset {{{'|'.join(PRESETS)}}} or --grid GRID.yaml")
    grid = preset_grid(args.preset) if args.preset else load_grid(args.grid)
    if args.arms:
        in_grid = {a.name: a for a in grid.arms}
        grid.arms = [in_grid.get(n) or get_arm(n) for n in (a.strip() for a in args.arms.split(",")) if n]
        grid.__post_init__()
    if args.seeds is not None:
        grid.seeds = args.seeds
    if args.profile is None:
        args.profile = grid.profile
    cfg = config_from_args(args)
    # flags and --set win over the grid's settings
    cli_keys = {f for flag, f in FLAG_FIELDS.items() if getattr(args, flag, None) is not None}
    cli_keys |= {item.partition("=")[0] for item in args.set}
    grid_overrides = {k: _grid_value(k, v) for k, v in grid.overrides.items() if k not in cli_keys}
    return grid, cfg.replace(**grid_overrides)


def _run(args: argparse.Namespace) -> int:
    from kdas_lab.ablation.runner import run_ablation
    from kdas_lab.ablation.tables import export_study

    if args.export:
        if args.out is None:
            raise ValueError("--export NAME needs --out STUDY_DIR (the study to export)")
        for path in export_study(args.out, args.export, args.results_dir):
            print(f"wrote {path}")
        return 0
    grid, cfg = build_grid_and_config(args)
    out = args.out or Path("runs") / f"ablation_{args.preset or Path(args.grid).stem}"
    datasets = [d.strip() for d in args.datasets.split(",")] if args.datasets else None
    print(f"ablation: {len(grid.arms)} arms x {len(grid.seeds)} seeds, profile {cfg.profile}, "
          f"{cfg.image_size}px, {cfg.epochs} epochs -> {out}")
    result = run_ablation(cfg, grid, out, teacher=args.teacher, datasets=datasets,
                          progress=not args.no_progress)
    print(f"trained {len(result.trained)} runs, skipped {len(result.skipped)} finished runs")
    s = result.summary
    if not s.empty:
        metric = "meanDic"
        view = s[s["metric"] == metric][["arm", "dataset", "n", "mean", "std", "diff",
                                          "diff_ci_low", "diff_ci_high"]]
        print(f"{metric} by arm and dataset (diff = paired difference to {grid.baseline}, 95 % CI):")
        print(view.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    teacher = result.out_dir / "teacher.csv"
    if teacher.is_file():
        import pandas as pd

        t = pd.read_csv(teacher)
        t = t[t["metric"] == "meanDic"]
        print("teacher meanDic: " + ", ".join(f"{r.dataset} {r.value:.4f}" for r in t.itertuples()))
    print(f"wrote {result.out_dir / 'runs.csv'} and {result.out_dir / 'summary.csv'}")
    return 0


def register(sub) -> None:
    arms = "\n".join(f"  {a.name:16s} {a.description}" for a in ARMS.values())
    p = sub.add_parser("ablate", help="train every arm x seed (resumable) and tabulate with CIs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=f"registered arms:\n{arms}")
    src = p.add_argument_group("what to run")
    src.add_argument("--preset", choices=list(PRESETS), default=None,
                     help="built-in grid: " + "; ".join(f"{name} ({p['about']})" for name, p in PRESETS.items()))
    src.add_argument("--grid", type=Path, default=None, help="YAML grid (see configs/ablation_example.yaml)")
    src.add_argument("--arms", default=None,
                     help=f"comma-separated arms (the grid's or registered) replacing the grid's list; "
                          f"registered: {', '.join(ARMS)}")
    src.add_argument("--seeds", type=parse_seeds, default=None,
                     help="N (seeds 0..N-1) or a list 0,3,5 (one seed s: s,)")
    src.add_argument("--out", type=Path, default=None, help="ablation directory (default runs/ablation_<name>)")
    src.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint (else trained once)")
    src.add_argument("--datasets", default=None, help="comma-separated test sets (default: all)")
    src.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    src.add_argument("--export", metavar="NAME", default=None,
                     help="train nothing: write the finished runs of --out as RESULTS_DIR/NAME_runs.csv, "
                          "_summary.csv and _times.csv, named by their teacher (refused if teachers are mixed)")
    src.add_argument("--results-dir", type=Path, default=Path("docs/results"), help="where --export writes")
    add_config_args(p)
    p.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m kdas_lab.cli.ablate ...``), same flags as ``kdas-lab ablate``."""
    return standalone_main("kdas-lab", register, ["ablate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
