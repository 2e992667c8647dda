"""Polyp data: sources, download, PraNet-layout builder, verification, dataset, splits, synthetic frames.

See ``docs/data.md``. The public API is re-exported here.
"""
from kdas_lab.data.archive import safe_extract, sha256_file
from kdas_lab.data.dataset import PolypDataset, collate_eval, find_pairs, load_pair
from kdas_lab.data.download import DownloadError, download
from kdas_lab.data.io import DataError, image_size, load_image, load_mask, load_mask_grey
from kdas_lab.data.pranet import build_pranet
from kdas_lab.data.sources import SOURCES, TEST_SETS, DataSource, pranet_test_stems, sources_table
from kdas_lab.data.split import CLINICDB_SEQUENCES, clinicdb_sequence, split_stems, train_val_split
from kdas_lab.data.synthetic import SYNTHETIC_SET, build_synthetic, ensure_synthetic, render_frame
from kdas_lab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_augment, denormalize, normalize
from kdas_lab.data.verify import VerifyReport, verify_pranet

__all__ = [
    "CLINICDB_SEQUENCES", "DataError", "DataSource", "DownloadError", "IMAGENET_MEAN", "IMAGENET_STD",
    "PolypDataset", "SOURCES", "SYNTHETIC_SET", "TEST_SETS", "VerifyReport", "build_augment", "build_pranet",
    "build_synthetic", "clinicdb_sequence", "collate_eval", "denormalize", "download", "ensure_synthetic",
    "find_pairs", "image_size", "load_image", "load_mask", "load_mask_grey", "load_pair", "normalize",
    "pranet_test_stems", "render_frame", "safe_extract", "sha256_file", "sources_table", "split_stems",
    "train_val_split", "verify_pranet",
]
