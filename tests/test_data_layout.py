"""The PraNet layout module: stem indexes, pairing errors, the set folders and the data-root rule."""
from __future__ import annotations

import pytest

from kdas_lab import Config
from kdas_lab.data.io import DataError
from kdas_lab.data.layout import (
    TEST,
    TRAIN,
    data_root,
    dataset_folders,
    find_pairs,
    find_test_root,
    index_by_stem,
    list_test_sets,
    pair_by_stem,
    stem_index,
    train_folder,
)


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_index_by_stem_skips_non_images_and_names_a_shared_stem(tmp_path):
    _touch(tmp_path / "images", "a.png", "b.jpg", "notes.txt", ".hidden.png")
    assert list(index_by_stem(tmp_path / "images")) == ["a", "b"]
    _touch(tmp_path / "images", "a.jpg")
    with pytest.raises(DataError, match=r"two image files share the stem 'a'"):
        index_by_stem(tmp_path / "images")
    index, problems = stem_index(tmp_path / "nope", "mask")
    assert index == {} and "mask folder not found" in problems[0] and "nope" in problems[0]


def test_pairing_names_both_sides_folder_and_stems(tmp_path):
    _touch(tmp_path / "images", "a.png", "b.png")
    _touch(tmp_path / "masks", "a.png", "c.png")
    with pytest.raises(DataError) as e:
        find_pairs(tmp_path)
    text = str(e.value)
    assert "1 mask(s) without an image in" in text and str(tmp_path / "masks" / "c.png") in text
    assert "1 image(s) without a mask in" in text and str(tmp_path / "images" / "b.png") in text
    with pytest.raises(DataError, match="holds no predictions"):
        pair_by_stem({}, {}, ("prediction", "mask"), (tmp_path / "p", tmp_path / "m"))


def test_find_pairs_keeps_the_order_of_the_stems_asked_for(tmp_path):
    _touch(tmp_path / "images", "a.png", "b.png")
    _touch(tmp_path / "masks", "a.png", "b.png")
    assert [s for s, _, _ in find_pairs(tmp_path, ["b", "a"])] == ["b", "a"]
    with pytest.raises(DataError, match="stems not found.*zzz"):
        find_pairs(tmp_path, ["zzz"])


def test_set_folders(tmp_path):
    (tmp_path / TRAIN).mkdir()
    (tmp_path / TEST / "Kvasir" / "masks").mkdir(parents=True)
    (tmp_path / TEST / "empty").mkdir()
    assert train_folder(tmp_path) == tmp_path / TRAIN
    assert find_test_root(tmp_path) == tmp_path / TEST and find_test_root(tmp_path / TEST) == tmp_path / TEST
    assert list_test_sets(tmp_path) == ["Kvasir"]
    with pytest.raises(DataError, match=r"\['CVC'\] not found; available: \['Kvasir'\]"):
        list_test_sets(tmp_path, ["CVC"])
    assert list(dataset_folders(tmp_path)) == [TRAIN, "Kvasir", "empty"]


def test_data_root_builds_synthetic_in_fast_mode_only(tmp_path):
    fast = Config.from_profile("fast", data_dir=tmp_path / "syn", synthetic_train=2, synthetic_test=1, image_size=32)
    assert data_root(fast) == tmp_path / "syn" and (train_folder(tmp_path / "syn") / "images").is_dir()
    with pytest.raises(DataError, match="has no TrainDataset/images"):
        data_root(Config.from_profile("course", data_dir=tmp_path / "none"))
