"""One set-up call for the notebooks: ``cfg = kdas_lab.notebook_setup()``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch

from kdas_lab.config import Config
from kdas_lab.runtime import resolve_device

RUNS = Path("runs/notebooks")  # artefacts the notebooks share (git-ignored), relative to the project root


def project_root() -> Path | None:
    """The source checkout holding this package (editable install), else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def notebook_setup(dpi: int = 100, **overrides: Any) -> Config:
    """The notebooks' configuration, from the environment (:meth:`Config.from_env`: ``KDAS_PROFILE`` =
    fast | laptop | course | paper, ``KDAS_FAST=1`` for fast, ``KDAS_DATA_DIR``, ``KDAS_DEVICE``).

    Works from the project root (so ``data/`` and ``runs/`` are shared with the command line), sets
    small inline figures and 4-digit tables, one torch thread in the fast profile (tiny tensors gain
    nothing from more, and shared CI cores stay free), and prints profile, device and data folder.
    """
    root = project_root()
    if root is not None:
        os.chdir(root)
    cfg = Config.from_env(**overrides)
    if cfg.profile == "fast":
        torch.set_num_threads(1)
    plt.rcParams.update({"figure.dpi": dpi})
    pd.set_option("display.precision", 4)
    print(f"profile {cfg.profile} | device {resolve_device(cfg.device)} | data {cfg.data_dir} "
          f"| {cfg.image_size} px, {cfg.epochs} epochs")
    return cfg
