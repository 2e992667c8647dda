"""The PraNet folder names: ``ROOT/TrainDataset`` and ``ROOT/TestDataset/<set>``.

The bottom of :mod:`kdas_lab.data` with :mod:`~kdas_lab.data.io` and :mod:`~kdas_lab.data.manifest`:
the builders (:mod:`~kdas_lab.data.synthetic`, :mod:`~kdas_lab.data.pranet`), the integrity check and
:mod:`~kdas_lab.data.layout` (which re-exports these names) all import it, and it imports none of them.
"""
from __future__ import annotations

import os
from pathlib import Path

TRAIN, TEST = "TrainDataset", "TestDataset"


def train_folder(root: str | os.PathLike) -> Path:
    """``ROOT/TrainDataset``."""
    return Path(root) / TRAIN


def has_train_images(root: str | os.PathLike) -> bool:
    return (train_folder(root) / "images").is_dir()
