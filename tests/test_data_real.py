"""Real polyp data (../shared/data): the PraNet build, verify, the TIFF path. Marked ``realdata``."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image

from kdas_lab.data import PolypDataset, load_image, load_mask, pranet_test_stems, verify_pranet
from kdas_lab.data.archive import safe_extract, sha256_file
from kdas_lab.data.pranet import install_pairs, source_pairs

pytestmark = pytest.mark.realdata


def _stems(folder):
    return sorted(p.stem for p in (folder / "images").iterdir())


def test_pranet_build_counts_and_split_lists(pranet_root):
    assert len(_stems(pranet_root / "TrainDataset")) == 1450
    assert _stems(pranet_root / "TestDataset" / "Kvasir") == sorted(pranet_test_stems("kvasir"))
    assert _stems(pranet_root / "TestDataset" / "CVC-ClinicDB") == sorted(pranet_test_stems("clinicdb"))
    train = set(_stems(pranet_root / "TrainDataset"))
    assert len(train & set(pranet_test_stems("kvasir"))) == 0
    assert sum(s.isdigit() for s in train) == 550 and sum(not s.isdigit() for s in train) == 900


def test_pranet_verify_passes_and_lists_table(pranet_root):
    report = verify_pranet(pranet_root)
    assert report.ok, report.problems
    assert report.table.loc["TrainDataset", "pairs"] == 1450
    assert report.table.loc["Kvasir", "pairs"] == 100 and report.table.loc["CVC-ClinicDB", "pairs"] == 62


def test_kvasir_jpeg_bytes_are_copied_and_masks_binarised(pranet_root, shared_dir):
    stem = pranet_test_stems("kvasir")[0]
    with zipfile.ZipFile(shared_dir / "data" / "Kvasir-SEG.zip") as zf:
        original = zf.read(f"Kvasir-SEG/images/{stem}.jpg")
        with zf.open(f"Kvasir-SEG/masks/{stem}.jpg") as f:
            grey = np.asarray(Image.open(f).convert("L"))
    assert (pranet_root / "TestDataset" / "Kvasir" / "images" / f"{stem}.jpg").read_bytes() == original
    mask = np.asarray(Image.open(pranet_root / "TestDataset" / "Kvasir" / "masks" / f"{stem}.png"))
    assert set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask == 255, grey > 127)


def test_dataset_loads_real_test_set_with_originals(pranet_root):
    ds = PolypDataset(pranet_root / "TestDataset" / "CVC-ClinicDB", 64, return_original=True)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (1, 64, 64)
    assert item["mask_orig"].shape == (288, 384) and item["image_orig_size"] == (288, 384)


def test_tiff_sample_installs_like_the_png_release(shared_dir, tmp_path):
    data = shared_dir / "data"
    assert sha256_file(data / "CVC-ClinicDB-tif-sample.zip") == \
        "338b504d052fcfac8871da72c04a80a39f6308c5e27f3f914ec96bd7944325d6"
    folder = safe_extract(data / "CVC-ClinicDB-tif-sample.zip", tmp_path / "src")
    pairs = source_pairs(folder)
    assert sorted(pairs) == ["14", "205", "300"]
    assert install_pairs(pairs, tmp_path / "out", progress=False) == 3
    with zipfile.ZipFile(data / "CVC-ClinicDB.zip") as zf:
        for stem, (tif_img, _) in pairs.items():
            ours = load_image(tmp_path / "out" / "images" / f"{stem}.png")
            np.testing.assert_array_equal(ours, tifffile.imread(tif_img)[..., :3])
            with zf.open(f"CVC-ClinicDB/Original/{stem}.png") as f:
                np.testing.assert_array_equal(ours, np.asarray(Image.open(f).convert("RGB")))
            with zf.open(f"CVC-ClinicDB/Ground Truth/{stem}.png") as f:
                ref = np.asarray(Image.open(f).convert("L")) > 127
            np.testing.assert_array_equal(load_mask(tmp_path / "out" / "masks" / f"{stem}.png"), ref)
