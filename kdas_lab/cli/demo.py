"""``kdas-lab demo [--out DIR] [--data DIR] [--profile ...]`` (what ``make demo`` runs).

Without ``--profile`` the demo-sized run of :data:`kdas_lab.config.DEMO_OVERRIDES` (synthetic data,
a few minutes on 2 CPU cores); ``--data DIR --profile course`` runs the same pipeline on real data.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from kdas_lab.cli.common import FLAG_FIELDS, add_config_args


def demo_config_from_args(args):
    """``config_from_args``, except that without ``--profile`` the demo sizing
    (fast profile + ``DEMO_OVERRIDES``) replaces the defaults; explicit flags still win."""
    from kdas_lab.cli.common import config_from_args
    from kdas_lab.config import DEMO_OVERRIDES, Config

    if args.profile is not None:
        return config_from_args(args)
    flagged = config_from_args(argparse.Namespace(**{**vars(args), "profile": "fast"}))
    given = {name for flag, name in FLAG_FIELDS.items() if getattr(args, flag, None) is not None}
    given |= {item.partition("=")[0] for item in args.set}
    explicit = {name: getattr(flagged, name) for name in given}
    return Config.from_env(profile="fast", **{**DEMO_OVERRIDES, **explicit})


def _run(args) -> int:
    from kdas_lab.course.demo import run_demo

    cfg = demo_config_from_args(args)
    run_demo(cfg, args.out, show_progress=not args.quiet)
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="teacher -> KDAS student vs plain student, table and figures")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_config_args(p)
    p.set_defaults(func=_run)
