"""PraNet builder on tiny fake releases: failures leave no half-built output, partial builds work."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kdas_lab.data import build_pranet, pranet_test_stems
from kdas_lab.data.io import DataError


def _release(root, img_dir, msk_dir, stems, ext=".png", bad_size=()):
    (root / img_dir).mkdir(parents=True)
    (root / msk_dir).mkdir(parents=True)
    for s in stems:
        Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(root / img_dir / f"{s}{ext}")
        m = np.zeros((10, 24) if s in bad_size else (20, 24), np.uint8)
        m[:5] = 200
        Image.fromarray(m).save(root / msk_dir / f"{s}.png")
    return root


@pytest.fixture
def releases(tmp_path):
    kv = pranet_test_stems("kvasir")[:2] + ["cjtrainaaa", "cjtrainbbb"]
    cl = pranet_test_stems("clinicdb")[:1] + ["2", "3"]
    kvasir = _release(tmp_path / "kv" / "Kvasir-SEG", "images", "masks", kv, ".jpg")
    clinic = _release(tmp_path / "cl" / "CVC-ClinicDB", "Original", "Ground Truth", cl)
    return tmp_path, kvasir.parent, clinic.parent


def test_wrong_counts_fail_without_allow_partial(releases):
    tmp, kvasir, clinic = releases
    with pytest.raises(DataError, match="Kvasir: 4 pairs found, the release has 1000.*--allow-partial"):
        build_pranet(tmp / "out" / "polyp", kvasir, clinic, progress=False)
    assert list((tmp / "out").iterdir()) == []


def test_partial_build_splits_by_the_lists(releases):
    tmp, kvasir, clinic = releases
    root = build_pranet(tmp / "out" / "polyp", kvasir, clinic, allow_partial=True, progress=False)
    assert sorted(p.name for p in (root / "TrainDataset" / "images").iterdir()) == \
        ["2.png", "3.png", "cjtrainaaa.jpg", "cjtrainbbb.jpg"]
    assert len(list((root / "TestDataset" / "Kvasir" / "masks").iterdir())) == 2
    mask = np.asarray(Image.open(root / "TestDataset" / "CVC-ClinicDB" / "masks" /
                                 f"{pranet_test_stems('clinicdb')[0]}.png"))
    assert set(np.unique(mask)) == {0, 255}
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["polyp"]
    with pytest.raises(DataError, match="already exists"):
        build_pranet(root, kvasir, clinic, allow_partial=True, progress=False)


def test_failure_mid_build_leaves_nothing(tmp_path):
    kvasir = _release(tmp_path / "kv", "images", "masks", ["cjtrainaaa"], ".jpg")
    clinic = _release(tmp_path / "cl", "Original", "Ground Truth", ["2", "3"], bad_size=("3",))
    with pytest.raises(DataError, match=r"size mismatch: image .*3\.png is 24x20, mask .*3\.png is 24x10"):
        build_pranet(tmp_path / "out" / "polyp", kvasir, clinic, allow_partial=True, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_missing_source_names_the_landing_page(tmp_path):
    with pytest.raises(DataError, match=r"--clinicdb .*nope.*polyp.grand-challenge.org"):
        build_pranet(tmp_path / "polyp", tmp_path, tmp_path / "nope", progress=False)
