"""Polyp data: sources, download, PraNet-layout builder, verification, dataset, splits, synthetic frames.

See ``docs/data.md``. The public API is re-exported here lazily (PEP 562), so that the command
line and the synthetic generator do not import torch unless a dataset is used.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "archive": ("safe_extract",),
    "dataset": ("PolypDataset", "collate_eval", "load_pair"),
    "download": ("DownloadError", "download"),
    "io": ("DataError", "image_size", "load_image", "load_mask", "load_mask_grey", "sha256_file"),
    "layout": ("TEST", "TRAIN", "data_root", "dataset_folders", "find_pairs", "find_test_root", "list_stems",
               "list_test_sets", "train_folder"),
    "pranet": ("build_pranet",),
    "sources": ("SOURCES", "TEST_SETS", "DataSource", "pranet_test_stems", "sources_table"),
    "split": ("CLINICDB_SEQUENCES", "clinicdb_sequence", "split_stems", "train_val_split"),
    "synthetic": ("SYNTHETIC_SET", "build_synthetic", "ensure_synthetic", "render_frame"),
    "transforms": ("IMAGENET_MEAN", "IMAGENET_STD", "build_augment", "denormalize", "normalize"),
    "verify": ("VerifyReport", "verify_pranet"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'kdas_lab.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kdas_lab.data.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
