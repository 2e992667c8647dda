"""Flags shared by the training-like commands, mapped onto :class:`kdas_lab.config.Config`."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from kdas_lab.config import PROFILES, Config


def add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration (profile first, then overrides)")
    g.add_argument("--profile", choices=PROFILES, default=None,
                   help="fast | laptop | course | paper (default: KDAS_PROFILE, else fast if KDAS_FAST=1, "
                        "else course)")
    g.add_argument("--data", type=Path, default=None, help="dataset root (PraNet layout)")
    g.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N | mps")
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--image-size", type=int, default=None)
    g.add_argument("--lr", type=float, default=None)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--labelled-fraction", type=float, default=None, metavar="F",
                   help="label-scarce training: the student reads masks of only this share of the training "
                        "images (a seeded subset); distillation terms still use every image, a run without "
                        "a teacher trains on the labelled subset only (default 1.0)")
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the networks (default: on for CUDA, off elsewhere; eager if it fails)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other Config field, value parsed as JSON when possible (repeatable)")


# The flags of add_config_args (argparse dest) and the Config fields they set.
FLAG_FIELDS = {"data": "data_dir", "device": "device", "epochs": "epochs", "batch_size": "batch_size",
               "image_size": "image_size", "lr": "lr", "seed": "seed", "labelled_fraction": "labelled_fraction",
               "compile": "compile"}


def config_from_args(args: argparse.Namespace) -> Config:
    return Config.from_env(profile=args.profile, **explicit_overrides(args))


def explicit_overrides(args: argparse.Namespace) -> dict:
    """The Config fields the command line sets (flags and ``--set``), parsed."""
    overrides: dict = {}
    for flag, name in FLAG_FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    fields = {f.name for f in dataclasses.fields(Config)}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(fields)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides[key] = tuple(value) if isinstance(value, list) else value
    return overrides
