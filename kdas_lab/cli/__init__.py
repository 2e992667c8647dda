"""``kdas-lab`` command line: each sub-module registers its sub-commands onto the config.

A command module exposes ``register(subparsers)``; each parser sets ``func(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib

COMMAND_MODULES = ("info", "train", "predict", "demo", "evaluate", "bench", "ablate", "data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdas-lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"kdas_lab.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from kdas_lab.cli.errors import run_command

    args = build_parser().parse_args(argv)
    return run_command(args, f"kdas-lab {args.command}")
