"""Reliability issue, round 2: predict never replaces a file it did not write, paths that exist are
described as what they are, and weak validation cases name the file or field. Tiny files, CPU."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kdas_lab.cli import main


def one_line_error(capsys, needle: str) -> str:
    """stderr (progress bars aside) is one line holding ``needle``, no traceback."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and "it/s]" not in ln]
    assert "Traceback" not in err and len(lines) == 1, err
    assert needle in err, err
    return err


def _png(path, shape, value=0):
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def b0_ckpt(tmp_path_factory):
    from kdas_lab.models import create_model, save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "b0.pt", create_model("polyp_pvt_b0"))


# ------------------------------------------------------------------ predict
def test_predict_refuses_an_existing_mask_then_overwrite_replaces_it(b0_ckpt, tmp_path, capsys):
    frame = _png(tmp_path / "f1.png", (32, 32, 3), 90)
    truth = _png(tmp_path / "f1_mask.png", (32, 32), 255)  # the user's ground truth beside the frames
    before = truth.read_bytes()
    argv = ["predict", "--checkpoint", str(b0_ckpt), str(frame), "--out", str(tmp_path), "--size", "32",
            "--device", "cpu"]
    assert main(argv) == 2
    one_line_error(capsys, f"{truth} already exists: refusing to replace it (pass --overwrite)")
    assert truth.read_bytes() == before and not (tmp_path / "f1_overlay.png").exists()
    assert main([*argv, "--overwrite"]) == 0
    assert truth.read_bytes() != before and (tmp_path / "f1_overlay.png").is_file()


def test_predict_names_a_folder_as_a_folder(b0_ckpt, tmp_path, capsys):
    (tmp_path / "frames").mkdir()
    assert main(["predict", "--checkpoint", str(b0_ckpt), str(tmp_path / "frames"), "--out", str(tmp_path / "o")]) == 2
    one_line_error(capsys, f"image file(s): {tmp_path / 'frames'} is a directory, not a file")


def test_predict_names_a_symlink_loop(b0_ckpt, tmp_path, capsys):
    loop = tmp_path / "loop.png"
    os.symlink(loop, loop)
    assert main(["predict", "--checkpoint", str(b0_ckpt), str(loop), "--out", str(tmp_path / "o")]) == 2
    one_line_error(capsys, f"{loop} is a symlink loop")


def test_predict_names_a_checkpoint_folder(tmp_path, capsys):
    frame = _png(tmp_path / "f.png", (32, 32, 3))
    assert main(["predict", "--checkpoint", str(tmp_path), str(frame), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 2
    one_line_error(capsys, f"checkpoint file: {tmp_path} is a directory, not a file")


# ------------------------------------------------------------------ Config
def test_epoch_sizes_longer_than_epochs_is_refused():
    from kdas_lab.config import Config

    with pytest.raises(ValueError, match=r"^Config: epoch_sizes lists 3 sizes for 2 epoch\(s\)"):
        Config.from_profile("fast", epochs=2, epoch_sizes=[32, 32, 64])


def test_epoch_sizes_larger_than_image_size_is_refused():
    from kdas_lab.config import Config

    with pytest.raises(ValueError, match="^Config: epoch_sizes holds 160, larger than image_size 128"):
        Config.from_profile("fast", image_size=128, epoch_sizes=[160])


def test_teacher_recipe_errors_say_teacher_recipe():
    from kdas_lab.config import Config

    with pytest.raises(ValueError, match=r"^Config: teacher_recipe: lr must be > 0, got -1\.0$"):
        Config.from_profile("fast", teacher_recipe={"lr": -1})
    with pytest.raises(ValueError, match=r"^Config: teacher_recipe: unknown fields \['nope'\]"):
        Config.from_profile("fast", teacher_recipe={"nope": 1})


def test_a_bad_kdas_profile_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("KDAS_PROFILE", "nope")
    assert main(["info"]) == 2
    one_line_error(capsys, "environment variable KDAS_PROFILE='nope': unknown profile")


# ------------------------------------------------------------------ data folders
def test_an_empty_data_folder_under_the_fast_profile_says_so(tmp_path):
    from kdas_lab.config import Config
    from kdas_lab.data.io import DataError
    from kdas_lab.data.layout import data_root

    (tmp_path / "data").mkdir()
    cfg = Config.from_profile("fast", data_dir=tmp_path / "data")
    with pytest.raises(DataError, match=f"^data folder {tmp_path / 'data'} .* is an empty folder: the fast profile"):
        data_root(cfg)
    assert list((tmp_path / "data").iterdir()) == []


# ------------------------------------------------------------------ resume
def test_allow_change_method_is_refused_before_anything_is_logged(tmp_path, capsys):
    import torch

    from kdas_lab.config import Config

    run = tmp_path / "run"
    run.mkdir()
    stored = Config.from_profile("fast", method="kdas").to_dict()
    torch.save({"config": stored, "epoch": 1}, run / "last.pt")
    assert main(["distill", "--out", str(run), "--resume", "--allow-change", "method", "--method", "kd",
                 "--teacher", str(tmp_path / "t.pt"), "--profile", "fast", "--quiet"]) == 2
    err = one_line_error(capsys, "--allow-change method: a resumed run cannot change its method")
    assert "resumed after" not in err and not (run / "resume.log").exists()


# ------------------------------------------------------------------ evaluate
def test_evaluate_refuses_a_mask_whose_size_differs_from_its_image(b0_ckpt, tmp_path, capsys):
    folder = tmp_path / "data" / "TestDataset" / "Odd"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    image = _png(folder / "images" / "a.png", (64, 64, 3), 80)
    mask = _png(folder / "masks" / "a.png", (24, 40), 255)  # 40 wide, 24 high
    assert main(["evaluate", "--checkpoint", str(b0_ckpt), "--data", str(tmp_path / "data"), "--size", "32",
                 "--device", "cpu"]) == 2
    one_line_error(capsys, f"size mismatch: image {image} is 64x64, mask {mask} is 40x24 (WxH)")


# ------------------------------------------------------------------ checkpoints
class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_bare_pickle_is_refused_as_legacy_without_a_torch_warning(tmp_path, protocol, recwarn):
    import pickle

    import torch

    from kdas_lab.models import CheckpointError, read_checkpoint

    path = tmp_path / "old.pt"
    path.write_bytes(pickle.dumps({"state_dict": {}, "x": _RunsCode()}, protocol=protocol))
    with pytest.raises(CheckpointError, match=f"^checkpoint {path}: legacy pickle checkpoint, refused: loading it "
                                              "could execute code; re-save it with torch.save in a trusted"):
        read_checkpoint(path)
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)  # torch's legacy format: read
    assert read_checkpoint(path)["w"].tolist() == [1.0, 1.0]



def test_a_read_only_data_folder_names_the_way_round_it(tmp_path, monkeypatch):
    import errno

    from kdas_lab.data.cache import cache_folder
    from kdas_lab.data.io import DataError

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(DataError, match=r"\.kdas_cache: cannot create the cache folder \(Read-only file system\).*"
                                        r"--set cache=false.*teacher_cache_dir"):
        cache_folder(tmp_path / ".kdas_cache")
