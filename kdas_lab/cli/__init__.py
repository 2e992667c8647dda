"""``kdas-lab`` command line: each sub-module registers its sub-commands onto the config.

A command module exposes ``register(subparsers)``; each parser sets ``func(args) -> int``.
"""
from __future__ import annotations

import importlib

from kdas_lab.cli.errors import standalone_main

COMMAND_MODULES = ("info", "train", "predict", "demo", "evaluate", "bench", "ablate", "data", "cache")


def register_all(subparsers) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"kdas_lab.cli.{name}").register(subparsers)


def main(argv: list[str] | None = None) -> int:
    return standalone_main("kdas-lab", register_all, argv, __doc__.splitlines()[0])
