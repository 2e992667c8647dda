"""``kdas-lab bench --json OUT [--models] [--eval] [--data-loading] [--size S] [--batch B]``.

Always: the distillation step of kdas_lab vs the published recipe's step (same batch and size),
teacher / student training-step throughput and inference latency (batch 1); see
:mod:`kdas_lab.bench.distill_step`. The JSON holds ``distill_step_speedup``,
``distill_step_speedup_cached``, ``distill_step_memory_ratio``, ``compile_speedup`` (CUDA),
``tflops_per_s`` and ``paper_recipe_minutes_projected`` (:mod:`kdas_lab.bench.throughput`) at the top
level, and the machine facts.
"""
from __future__ import annotations

import os
from pathlib import Path

from kdas_lab.atomic import write_json_atomic
from kdas_lab.cli.errors import network_size, positive_int


def run_from_args(args, json_path: Path | None = None) -> dict:
    """Core benchmark, then the optional sections; with ``json_path`` the JSON is rewritten after
    each part, so a run cut short by a timeout still leaves the figures measured so far."""
    import pandas as pd

    from kdas_lab.bench.distill_step import run_bench

    variants = tuple(args.variants.split(",")) if args.variants else None  # None: the device's default list
    report = run_bench(size=args.size, batch=args.batch, device=args.device, steps=args.steps,
                       warmup=args.warmup, infer_size=args.infer_size, channels_last=args.channels_last,
                       variants=variants)
    table = pd.DataFrame(report["variants"].values())
    columns = ["variant", "size", "batch", "median_s", "images_per_s", "tflops_per_s", "warmup_total_s",
               "step_mem_mb", "peak_mem_mb"]
    print(table[[c for c in columns if c in table]].round(3).to_string(index=False))
    if "distill_step_speedup" in report:
        print(f"distillation step: kdas_lab is {report['distill_step_speedup']:.2f}x the published step's "
              f"throughput, with {report['distill_step_memory_ratio']:.2f}x its step memory")
    if "distill_step_speedup_vs_finite" in report:
        print(f"  vs the published step without NaNs in the teacher backward: "
              f"{report['distill_step_speedup_vs_finite']:.2f}x")
    print_throughput(report)
    if json_path is not None:
        write_json_atomic(report, json_path)
    if args.models:
        from kdas_lab.bench.efficiency import efficiency_dict, efficiency_table

        report["models"] = efficiency_dict(efficiency_table(["polyp_pvt_b2", "polyp_pvt_b0"],
                                                            size=args.infer_size, device=args.device))
        if json_path is not None:
            write_json_atomic(report, json_path)
    if args.eval:
        from kdas_lab.bench.eval_speed import run_eval_bench

        report["eval"] = run_eval_bench()
        report["eval_speedup"] = report["eval"]["eval_speedup"]  # top-level, like distill_step_speedup
        if json_path is not None:
            write_json_atomic(report, json_path)
    if args.data_loading:
        from kdas_lab.bench.data_loading import run_data_bench
        from kdas_lab.data.layout import train_folder

        data = args.data or Path(os.environ.get("KDAS_DATA_DIR", "data/polyp"))
        if not train_folder(data).is_dir():
            raise FileNotFoundError(f"--data-loading: {train_folder(data)} not found (pass --data DIR)")
        report["data_loading"] = run_data_bench(data, size=args.size)
    return report


def print_throughput(report: dict) -> None:
    """The cached-teacher speedup, compile speedup and paper-recipe projection, when measured."""
    if "distill_step_speedup_cached" in report:
        print(f"  with the teacher-output cache: {report['distill_step_speedup_cached']:.2f}x the published step")
    if "distill_step_speedup_compiled" in report:
        print(f"  with --compile: {report['distill_step_speedup_compiled']:.2f}x the published step (compile time: "
              f"{report['variants']['kdas_lab_distill_compiled']['warmup_total_s']:.0f} s of warm-up)")
    if report.get("compile_speedup"):
        print("torch.compile speedup: " + ", ".join(f"{k} {v:.2f}x" for k, v in report["compile_speedup"].items()))
    elif report.get("compile_speedup_note"):
        print(f"torch.compile speedup: not measured ({report['compile_speedup_note']})")
    proj = report.get("paper_recipe_projection")
    if proj:
        print(f"published recipe projected: {proj['minutes']:.1f} min (teacher {proj['teacher']['minutes']:.1f} "
              f"[{proj['teacher']['variant']}] + student {proj['student']['minutes']:.1f} "
              f"[{proj['student']['variant']}]; measured at {proj['measured_size']} px, "
              f"batch {proj['measured_batch']})")


def _run(args) -> int:
    report = run_from_args(args, json_path=args.json)
    path = write_json_atomic(report, args.json)
    print(f"wrote {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="distillation-step speed vs the published recipe, model efficiency")
    p.add_argument("--json", type=Path, default=Path("runs/bench.json"), help="output JSON (default runs/bench.json)")
    p.add_argument("--size", type=network_size, default=352, help="training resolution (default 352)")
    p.add_argument("--batch", type=positive_int, default=None, help="batch size (default 2 on CPU, 16 on CUDA)")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant (median reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--infer-size", type=network_size, default=352, help="inference latency resolution (batch 1)")
    p.add_argument("--channels-last", action="store_true", help="channels_last for kdas_lab variants")
    p.add_argument("--variants", default=None, help="comma-separated subset of the variants")
    p.add_argument("--models", action="store_true", help="add the efficiency table (params, MACs, latency)")
    p.add_argument("--eval", action="store_true", help="add the evaluator speed benchmark")
    p.add_argument("--data-loading", action="store_true", help="add the data-loading benchmark (needs --data)")
    p.add_argument("--data", type=Path, default=None, help="dataset root for --data-loading")
    p.set_defaults(func=_run)
