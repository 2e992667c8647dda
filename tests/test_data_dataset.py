"""PolypDataset: strict pairing, clear errors, resize/normalise values, augmentation, cache, collate."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kdas_lab.data import IMAGENET_MEAN, IMAGENET_STD, PolypDataset, collate_eval, denormalize, load_mask
from kdas_lab.data.io import DataError


def _write_set(folder, specs):
    """specs: {stem: (H, W, mask_value_fn)}; images PNG with a constant colour, masks 0/255 PNG."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    for stem, (h, w) in specs.items():
        Image.fromarray(np.full((h, w, 3), (200, 100, 50), np.uint8)).save(folder / "images" / f"{stem}.png")
        m = np.zeros((h, w), np.uint8)
        m[: h // 2] = 255
        Image.fromarray(m).save(folder / "masks" / f"{stem}.png")
    return folder


@pytest.fixture
def small_set(tmp_path):
    return _write_set(tmp_path / "set", {"a": (40, 48), "b": (32, 32), "c": (64, 40)})


def test_items_shapes_values_and_stems(small_set):
    ds = PolypDataset(small_set, 32)
    assert len(ds) == 3 and ds.stems == ["a", "b", "c"]
    item = ds[1]
    assert item["stem"] == "b" and item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    expected = [(v / 255 - m) / s for v, m, s in zip((200, 100, 50), IMAGENET_MEAN, IMAGENET_STD)]
    torch.testing.assert_close(item["image"][:, 5, 5], torch.tensor(expected), atol=1e-5, rtol=0)
    torch.testing.assert_close(denormalize(item["image"])[:, 0, 0], torch.tensor([200, 100, 50]) / 255.0,
                               atol=1e-5, rtol=0)
    assert item["mask"][0, :16].eq(1).all() and item["mask"][0, 16:].eq(0).all()  # same size: exact


def test_resized_masks_are_soft_like_published(small_set):
    mask = PolypDataset(small_set, 32)[0]["mask"]  # 40 rows -> 32: the border row is blended
    values = set(torch.unique(mask).tolist())
    assert 0.0 in values and 1.0 in values and any(0 < v < 1 for v in values)


def test_return_original_and_collate(small_set):
    ds = PolypDataset(small_set, 32, return_original=True)
    batch = collate_eval([ds[0], ds[2]])
    assert batch["image"].shape == (2, 3, 32, 32) and batch["stem"] == ["a", "c"]
    assert [m.shape for m in batch["mask_orig"]] == [(40, 48), (64, 40)]
    assert batch["image_orig_size"] == [(40, 48), (64, 40)]
    assert batch["mask_orig"][0].dtype == np.uint8 and set(np.unique(batch["mask_orig"][0])) == {0, 255}


def test_stems_subset_and_unknown_stem(small_set):
    assert PolypDataset(small_set, 32, stems=["c", "a"]).stems == ["c", "a"]
    with pytest.raises(DataError, match="stems not found.*zzz"):
        PolypDataset(small_set, 32, stems=["a", "zzz"])


def test_image_without_mask_is_an_error(small_set):
    (small_set / "masks" / "b.png").unlink()
    with pytest.raises(DataError, match=r"image\(s\) without a mask.*b\.png"):
        PolypDataset(small_set, 32)


def test_mask_without_image_is_an_error(small_set):
    (small_set / "images" / "a.png").unlink()
    with pytest.raises(DataError, match=r"mask\(s\) without an image.*a\.png"):
        PolypDataset(small_set, 32)


def test_duplicate_stem_is_an_error(small_set):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(small_set / "images" / "a.jpg")
    with pytest.raises(DataError, match="share the stem 'a'"):
        PolypDataset(small_set, 32)


def test_unreadable_image_names_the_file(small_set):
    (small_set / "images" / "b.png").write_bytes(b"not a png")
    ds = PolypDataset(small_set, 32)
    with pytest.raises(DataError, match=r"cannot read image .*b\.png"):
        ds[1]


def test_size_mismatch_names_both_files(small_set):
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(small_set / "masks" / "c.png")
    with pytest.raises(DataError, match=r"size mismatch: image .*c\.png is 40x64, mask .*c\.png is 12x10"):
        PolypDataset(small_set, 32)[2]


def test_load_mask_thresholds_above_127(tmp_path):
    m = np.zeros((20, 20), np.uint8)  # a binary mask with a few edge pixels near the threshold
    m[10:], m[0, :4] = 255, [0, 127, 128, 255]
    Image.fromarray(m).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png")[0, :4].tolist() == [False, False, True, True]


def test_augment_is_joint_and_keeps_shapes(tmp_path):
    folder = _write_set(tmp_path / "s", {"x": (32, 32)})
    img = np.zeros((32, 32, 3), np.uint8)
    img[:16] = 255  # the image's bright half is exactly the mask's foreground half
    Image.fromarray(img).save(folder / "images" / "x.png")
    torch.manual_seed(0)
    ds = PolypDataset(folder, 32, augment=True)
    for _ in range(8):
        item = ds[0]
        assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
        bright = denormalize(item["image"]).mean(0) > 0.5
        fg = item["mask"][0] > 0.5
        assert (bright == fg).float().mean() > 0.9  # geometry moved together


def test_cache_matches_files_and_is_reused(small_set, tmp_path):
    plain = PolypDataset(small_set, 32)
    cached = PolypDataset(small_set, 32, cache_dir=tmp_path / "cache")
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 3 and all(not f.startswith(".") for f in files)
    for i in range(3):
        torch.testing.assert_close(cached[i]["image"], plain[i]["image"], atol=1e-6, rtol=0)
        torch.testing.assert_close(cached[i]["mask"], plain[i]["mask"], atol=1 / 255, rtol=0)
    mtimes = [p.stat().st_mtime_ns for p in sorted((tmp_path / "cache").iterdir())]
    PolypDataset(small_set, 32, cache_dir=tmp_path / "cache")
    assert mtimes == [p.stat().st_mtime_ns for p in sorted((tmp_path / "cache").iterdir())]
    PolypDataset(small_set, 48, cache_dir=tmp_path / "cache")  # another size: another cache
    assert len(list((tmp_path / "cache").iterdir())) == 6
