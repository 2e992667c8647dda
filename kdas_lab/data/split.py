"""Deterministic validation split of a TrainDataset, optionally keeping CVC-ClinicDB videos together.

The published recipe selects its model on the test set; kdas_lab holds out part of TrainDataset
instead. CVC-ClinicDB frames come from 29 video sequences whose neighbouring frames are near
duplicates; ``by_sequence=True`` puts each sequence entirely on one side of the split.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kdas_lab.data.io import DataError
from kdas_lab.data.layout import list_stems

# CVC-ClinicDB frame ranges (inclusive) per video sequence 1..29.
# Source: the README.txt distributed inside the CVC-ClinicDB archive (section "Description").
CLINICDB_SEQUENCES: tuple[tuple[int, int], ...] = (
    (1, 25), (26, 50), (51, 67), (68, 78), (79, 103), (104, 126), (127, 151), (152, 177),
    (178, 199), (200, 205), (206, 227), (228, 252), (253, 277), (278, 297), (298, 317), (318, 342),
    (343, 363), (364, 383), (384, 408), (409, 428), (429, 447), (448, 466), (467, 478), (479, 503),
    (504, 528), (529, 546), (547, 571), (572, 591), (592, 612),
)


def clinicdb_sequence(frame: int) -> int:
    """Sequence number (1..29) of CVC-ClinicDB frame ``frame`` (1..612)."""
    for seq, (lo, hi) in enumerate(CLINICDB_SEQUENCES, start=1):
        if lo <= frame <= hi:
            return seq
    raise ValueError(f"CVC-ClinicDB frame {frame} is outside 1..612")


def group_of(stem: str) -> str:
    """Grouping key: ``clinicdb-seq<N>`` for ClinicDB frame numbers, the stem itself otherwise."""
    if stem.isdigit() and 1 <= int(stem) <= CLINICDB_SEQUENCES[-1][1]:
        return f"clinicdb-seq{clinicdb_sequence(int(stem))}"
    return stem


def split_stems(stems: list[str], val_fraction: float = 0.1, seed: int = 0,
                by_sequence: bool = False) -> tuple[list[str], list[str]]:
    """Pure split of a stem list; both halves sorted. ``round(n * val_fraction)`` validation stems
    (with ``by_sequence``, whole groups are added until at least that many are held out)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    stems = sorted(set(stems))
    target = int(round(len(stems) * val_fraction))
    groups: dict[str, list[str]] = {}
    for s in stems:
        groups.setdefault(group_of(s) if by_sequence else s, []).append(s)
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    val: list[str] = []
    for i in order:
        if len(val) >= target:
            break
        val.extend(groups[keys[i]])
    val_set = set(val)
    return [s for s in stems if s not in val_set], sorted(val_set)


def train_val_split(train_folder: str | os.PathLike, val_fraction: float = 0.1, seed: int = 0,
                    by_sequence: bool = False) -> tuple[list[str], list[str]]:
    """``(train_stems, val_stems)`` of ``train_folder`` (a PraNet TrainDataset with images/)."""
    stems = list_stems(train_folder)
    if not stems:
        raise DataError(f"{Path(train_folder) / 'images'} holds no images")
    return split_stems(stems, val_fraction, seed, by_sequence)


def labelled_subset(stems: list[str], fraction: float, seed: int = 0) -> list[str]:
    """The stems whose masks a label-scarce run may use: ``max(1, round(n * fraction))`` of ``stems``,
    drawn with ``seed`` (so arms trained with one seed share one subset); sorted."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"labelled_fraction must be in (0, 1], got {fraction}")
    stems = sorted(set(stems))
    if fraction == 1.0:
        return stems
    k = max(1, int(round(len(stems) * fraction)))
    order = np.random.default_rng([seed, 1]).permutation(len(stems))[:k]
    return sorted(stems[i] for i in order)
