"""Validation split (deterministic, by sequence) and verify (every problem listed)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kdas_lab.data import CLINICDB_SEQUENCES, build_synthetic, clinicdb_sequence, split_stems, verify_pranet
from kdas_lab.data.split import group_of


def test_sequence_table_covers_612_frames_in_order():
    assert len(CLINICDB_SEQUENCES) == 29 and CLINICDB_SEQUENCES[0][0] == 1 and CLINICDB_SEQUENCES[-1][1] == 612
    assert all(a[1] + 1 == b[0] for a, b in zip(CLINICDB_SEQUENCES, CLINICDB_SEQUENCES[1:]))


@pytest.mark.parametrize("frame,seq", [(1, 1), (25, 1), (26, 2), (200, 10), (205, 10), (547, 27), (612, 29)])
def test_clinicdb_sequence(frame, seq):
    assert clinicdb_sequence(frame) == seq


def test_split_is_deterministic_and_sized():
    stems = [f"k{i:03d}" for i in range(100)]
    train, val = split_stems(stems, 0.1, seed=3)
    assert len(val) == 10 and len(train) == 90 and not set(train) & set(val)
    assert (train, val) == split_stems(list(reversed(stems)), 0.1, seed=3)
    assert val != split_stems(stems, 0.1, seed=4)[1]


def test_split_by_sequence_keeps_videos_together():
    stems = [str(i) for i in range(1, 613)] + [f"cju{i:04d}" for i in range(100)]
    train, val = split_stems(stems, 0.1, seed=0, by_sequence=True)
    assert len(val) >= 71 and len(train) + len(val) == 712
    val_groups = {group_of(s) for s in val}
    assert not any(group_of(s) in val_groups for s in train)
    plain_train, plain_val = split_stems(stems, 0.1, seed=0)
    assert any(group_of(s) in {group_of(v) for v in plain_val} for s in plain_train if s.isdigit())


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        split_stems(["a"], 1.5)


@pytest.fixture
def syn_root(tmp_path):
    return build_synthetic(tmp_path / "syn", 6, 3, 32, seed=1)


def test_verify_synthetic_ok(syn_root):
    report = verify_pranet(syn_root)
    assert report.ok, report.problems
    assert report.table.loc["TrainDataset", "pairs"] == 6 and report.table.loc["Synthetic", "pairs"] == 3


def test_verify_lists_every_problem(syn_root):
    test = syn_root / "TestDataset" / "Synthetic"
    grey = np.zeros((32, 32), np.uint8)
    grey[5:9, 5:9] = 128
    Image.fromarray(grey).save(test / "masks" / "syn_test_00000.png")  # non-binary
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(test / "masks" / "syn_test_00001.png")  # size
    (syn_root / "TrainDataset" / "masks" / "syn_train_00002.png").unlink()  # image without mask
    (syn_root / "TrainDataset" / "images" / "syn_train_00003.png").write_bytes(b"broken")
    report = verify_pranet(syn_root)
    text = "\n".join(report.problems)
    assert not report.ok and len(report.problems) == 8  # 4 found by looking, 4 by the recorded sha256
    assert text.count("changed since the build") == 3 and text.count("missing since the build") == 1
    assert "syn_test_00000.png is not binary" in text
    assert "size mismatch: image" in text and "syn_test_00001.png is 32x16" in text
    assert "image(s) without a mask" in text and "syn_train_00002.png" in text
    assert "cannot read" in text and "syn_train_00003.png" in text
    assert list(report.table["status"]) == ["FAIL", "FAIL"]
    assert "8 problem(s)" in str(report)
    (syn_root / "TrainDataset" / "images" / "syn_train_00004.png").unlink()
    (syn_root / "TrainDataset" / "masks" / "syn_train_00004.png").unlink()
    assert "5 images, expected 6" in "\n".join(verify_pranet(syn_root).problems)
