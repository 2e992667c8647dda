"""ONNX export of the student: exportable pooling, probability wrapper, onnxruntime agreement."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kdas_lab.evaluation.export import BinnedAvgPool2d, check_onnx, export_onnx, make_exportable, onnx_session

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("n_in, n_out, expected", [
    (8, 6, [(0, 2), (1, 3), (2, 4), (4, 6), (5, 7), (6, 8)]),
    (6, 6, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]),
    (4, 2, [(0, 2), (2, 4)]),
    (5, 3, [(0, 2), (1, 4), (3, 5)]),
])
def test_bins_hand_computed(n_in, n_out, expected):
    assert BinnedAvgPool2d.bins(n_in, n_out) == expected


@pytest.mark.parametrize("hw, out", [((8, 8), 6), ((44, 44), 6), ((7, 9), (3, 4)), ((6, 6), 6), ((5, 5), 1)])
def test_binned_pool_equals_adaptive_pool(hw, out):
    x = torch.randn(2, 3, *hw, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(BinnedAvgPool2d(out)(x), nn.AdaptiveAvgPool2d(out)(x), rtol=0, atol=1e-6)


def test_binned_pool_by_hand():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # 2x2 blocks of [[0,1,4,5], [2,3,6,7], [8,9,12,13], [10,11,14,15]]
    assert BinnedAvgPool2d(2)(x).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]


@pytest.fixture(scope="module")
def student():
    from kdas_lab.models import create_model

    torch.manual_seed(0)
    return create_model("polyp_pvt_b0").eval()


def test_make_exportable_swaps_pools_and_keeps_outputs(student):
    wrapped = make_exportable(student)
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size not in (1, (1, 1))
                   for m in wrapped.modules())
    assert any(isinstance(m, BinnedAvgPool2d) for m in wrapped.modules())
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in student.modules())  # original untouched
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = student(x)
        prob = wrapped(x)
    assert prob.shape == (2, 1, 64, 64)
    torch.testing.assert_close(prob, torch.sigmoid(out.p1 + out.p2), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_export_matches_onnxruntime(student, tmp_path):
    path = export_onnx(student, tmp_path / "sub" / "student.onnx", size=64)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    report = check_onnx(student, path, size=64, batch=2, repeats=1)  # batch 2: the batch axis is dynamic
    assert report["max_abs_diff"] < 1e-4
    assert report["torch_ms"] > 0 and report["onnxruntime_ms"] > 0
    assert 10 < report["file_mb"] < 20  # 3.65 M float32 parameters = 13.9 MB


def test_export_rejects_bad_size(student, tmp_path):
    with pytest.raises(ValueError, match="multiple of 32"):
        export_onnx(student, tmp_path / "x.onnx", size=50)


def test_onnx_session_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        onnx_session(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="bad.onnx"):
        onnx_session(bad)
