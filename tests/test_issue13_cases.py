"""Issue 13, one test per numbered case: each failed before the fix (tiny files, CPU, no training)."""
from __future__ import annotations

import io
import math
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from kdas_lab.cli import main
from kdas_lab.config import Config
from kdas_lab.data import build_pranet, pranet_test_stems, verify_pranet
from kdas_lab.data.io import DataError, load_image, load_mask, load_mask_grey
from kdas_lab.models import CheckpointError, create_model, load_model, read_checkpoint, save_checkpoint
from kdas_lab.train.run_guard import RunFolderError, prepare_run


def one_line_error(capsys, *needles):
    """stderr is one ``error:`` line holding every needle, and no traceback."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "error:" in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _release(root, img_dir, msk_dir, stems, mask):
    """A fake release: 20x24 images, every mask ``mask`` (uint8 or uint16)."""
    (root / img_dir).mkdir(parents=True)
    (root / msk_dir).mkdir(parents=True)
    for s in stems:
        Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(root / img_dir / f"{s}.jpg", quality=95)
        Image.fromarray(mask).save(root / msk_dir / f"{s}.png")
    return root.parent


def _releases(tmp_path, mask):
    kv = _release(tmp_path / "kv" / "Kvasir-SEG", "images", "masks", pranet_test_stems("kvasir")[:1] + ["cjx"], mask)
    cl = _release(tmp_path / "cl" / "CVC-ClinicDB", "Original", "Ground Truth", ["2"], mask)
    return kv, cl


def _half_mask(fg=1):
    m = np.zeros((20, 24), np.uint8)
    m[:10] = fg  # 0/1: a label map; top half is the object
    return m


# 1 ---------------------------------------------------------------- 0/1 label masks
def test_01_label_masks_are_scaled_not_emptied(tmp_path):
    kv, cl = _releases(tmp_path, _half_mask(1))
    root = build_pranet(tmp_path / "polyp", kv, cl, allow_partial=True, progress=False)
    installed = np.asarray(Image.open(root / "TrainDataset" / "masks" / "cjx.png"))
    assert installed[:10].min() == 255 and installed[10:].max() == 0  # 0/1 -> 0/255, not all zero
    assert verify_pranet(root).ok


def test_01_masks_far_from_binary_or_vanishing_are_refused(tmp_path):
    soft = np.tile(np.linspace(0, 255, 24).astype(np.uint8), (20, 1))  # a soft ramp
    Image.fromarray(soft).save(tmp_path / "soft.png")
    with pytest.raises(DataError, match=r"soft\.png is far from binary"):
        load_mask(tmp_path / "soft.png")
    Image.fromarray(_half_mask(38)).save(tmp_path / "dim.png")  # a palette red seen as grey 38
    with pytest.raises(DataError, match=r"dim\.png would become empty: its brightest level is 38"):
        load_mask(tmp_path / "dim.png")


# 2 ---------------------------------------------------------------- forgetting --resume
def test_02_existing_run_is_not_overwritten_without_a_flag(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"the earlier run")
    args = ["train-teacher", "--out", str(run), "--data", str(tmp_path / "nodata"), "--profile", "fast",
            "--device", "cpu", "--quiet"]
    assert main(args) == 2
    one_line_error(capsys, str(run), "already holds a run", "--resume", "--overwrite-run")
    assert (run / "best.pt").read_bytes() == b"the earlier run"
    cfg = Config.from_profile("fast")
    prepare_run(cfg, run, resume=False, overwrite_run=True)  # what --overwrite-run does first
    assert not (run / "best.pt").exists()


# 3 ---------------------------------------------------------------- --overwrite and its sources
def test_03_overwrite_refuses_an_out_folder_holding_a_source_or_the_cwd(tmp_path, monkeypatch, capsys):
    kv, cl = _releases(tmp_path / "data", _half_mask(255))  # sources inside data/
    with pytest.raises(DataError, match=r"refusing to replace .*data: it contains the source"):
        build_pranet(tmp_path / "data", kv, cl, allow_partial=True, overwrite=True, progress=False)
    assert (kv / "Kvasir-SEG" / "images").is_dir()  # untouched
    monkeypatch.chdir(tmp_path / "data")
    assert main(["data", "pranet", "--kvasir", str(kv), "--clinicdb", str(cl), "--out", ".", "--overwrite",
                 "--allow-partial", "--quiet"]) == 2
    one_line_error(capsys, "it contains the working directory")
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name or ".tmp-" in p.name]


# 4 ---------------------------------------------------------------- code-executing checkpoints
class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def test_04_code_executing_checkpoint_is_refused_as_such(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _RunsCode()}, path)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    msg = str(e.value)
    assert "refused: loading it would execute code (global os.system)" in msg
    assert "truncated" not in msg and "weights_only" not in msg.replace("weights_only=True", "")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", "--checkpoint", str(path), str(tmp_path / "x.png"), "--out", str(tmp_path / "p"),
                 "--device", "cpu"]) == 2
    one_line_error(capsys, "evil.pt refused: loading it would execute code (global os.system)")
    cut = tmp_path / "cut.pt"
    save_checkpoint(tmp_path / "ok.pt", create_model("polyp_pvt_b0"))
    cut.write_bytes((tmp_path / "ok.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated, corrupt") as e:
        read_checkpoint(cut)
    assert "False" not in str(e.value)


# 5 ---------------------------------------------------------------- 16-bit PNG
def test_05_sixteen_bit_pngs_are_scaled_not_clipped(tmp_path):
    grey16 = np.array([[0, 257, 32896, 65535]] * 2, np.uint16)  # 0, 1, 128, 255 in 8 bits
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert load_image(tmp_path / "g16.png")[0, :, 0].tolist() == [0, 1, 128, 255]
    assert load_mask_grey(tmp_path / "g16.png")[0].tolist() == [0, 1, 128, 255]
    mask16 = np.zeros((20, 20), np.uint16)
    mask16[:10] = 65535
    Image.fromarray(mask16).save(tmp_path / "m16.png")
    assert load_mask(tmp_path / "m16.png").sum() == 200


# 6 ---------------------------------------------------------------- teacher architecture
def test_06_b0_checkpoint_as_b2_teacher_is_refused(tmp_path, capsys):
    save_checkpoint(tmp_path / "b0.pt", create_model("polyp_pvt_b0"))
    assert main(["distill", "--teacher", str(tmp_path / "b0.pt"), "--out", str(tmp_path / "s"), "--profile", "fast",
                 "--data", str(tmp_path / "nodata"), "--device", "cpu", "--quiet"]) == 2
    one_line_error(capsys, "is polyp_pvt_b0, but the configuration's teacher is polyp_pvt_b2",
                   "--set teacher=polyp_pvt_b0")
    assert not (tmp_path / "s" / "last.pt").exists()


# 7 ---------------------------------------------------------------- NaN / Inf weights
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_07_non_finite_weights_are_refused_on_every_load(tmp_path, capsys, bad):
    model = create_model("polyp_pvt_b0")
    with torch.no_grad():
        model.out_CFM.weight[0, 0, 0, 0] = bad
    save_checkpoint(tmp_path / "nan.pt", model)
    with pytest.raises(CheckpointError, match=r"non-finite weights \(NaN or Inf\) in out_CFM\.weight"):
        load_model(tmp_path / "nan.pt")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", "--checkpoint", str(tmp_path / "nan.pt"), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "p"), "--size", "32", "--device", "cpu"]) == 2
    one_line_error(capsys, "nan.pt", "non-finite")
    assert not (tmp_path / "p").exists()


# 8 ---------------------------------------------------------------- truncated JPEG, changed files
def _jpeg(shape=(20, 24, 3)):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_08_truncated_jpeg_fails_install_and_changes_fail_verify(tmp_path, capsys):
    kv, cl = _releases(tmp_path, _half_mask(255))
    (kv / "Kvasir-SEG" / "images" / "cjx.jpg").write_bytes(_jpeg()[:300])  # valid header, cut data
    with pytest.raises(DataError, match=r"cannot read image .*cjx\.jpg"):
        build_pranet(tmp_path / "polyp", kv, cl, allow_partial=True, progress=False)
    (kv / "Kvasir-SEG" / "images" / "cjx.jpg").write_bytes(_jpeg())
    root = build_pranet(tmp_path / "polyp", kv, cl, allow_partial=True, progress=False)
    assert main(["data", "verify", str(root)]) == 0
    image = root / "TrainDataset" / "images" / "cjx.jpg"
    image.write_bytes(image.read_bytes()[:300])  # truncated after the install
    report = verify_pranet(root)
    assert not report.ok and f"file changed since the build (sha256 differs): {image}" in report.problems
    full = verify_pranet(root, full=True)
    assert any("cannot read image" in p and "cjx.jpg" in p for p in full.problems)


# 9 ---------------------------------------------------------------- resume with another config
def test_09_resume_refuses_a_changed_config_unless_allowed(tmp_path):
    cfg = Config.from_profile("fast", device="cpu")
    save_checkpoint(tmp_path / "last.pt", create_model("polyp_pvt_b0"), config=cfg.to_dict(), epoch=2)
    prepare_run(cfg.replace(device="cuda", num_workers=3), tmp_path, resume=True)  # runtime fields: fine
    for change in (dict(lr=1e-3), dict(batch_size=2), dict(image_size=96), dict(epochs=5)):
        with pytest.raises(RunFolderError, match=f"{next(iter(change))} .* -> .*--allow-change {next(iter(change))}"):
            prepare_run(cfg.replace(**change), tmp_path, resume=True)
    prepare_run(cfg.replace(epochs=5), tmp_path, resume=True, allow_change=["epochs"])
    assert (tmp_path / "resume.log").read_text() == "resumed after epoch 2 with epochs 2 -> 5\n"


# 10 --------------------------------------------------------------- values checked up front
@pytest.mark.parametrize("flags,needle", [
    (["--set", "epochs=abc"], "epochs must be a whole number, got 'abc'"),
    (["--set", "epochs=2.5"], "epochs must be a whole number, got 2.5"),
    (["--set", "multiscale=abc"], "multiscale must be a JSON list"),
    (["--image-size", "100"], "image_size must be a positive multiple of 32"),
    (["--set", "augment=maybe"], "augment must be true or false"),
    (["--set", "drop_path_rate=1.5"], "drop_path_rate must be in [0, 1)"),
])
def test_10_bad_values_fail_before_any_work(tmp_path, capsys, flags, needle):
    assert main(["train-teacher", "--out", str(tmp_path / "run"), "--data", str(tmp_path / "nodata"),
                 "--profile", "fast", "--quiet", *flags]) == 2
    one_line_error(capsys, needle)
    assert not (tmp_path / "run").exists()


# 11 --------------------------------------------------------------- OS failures, one line each
def test_11_os_errors_are_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    from kdas_lab.cli.data import main as get_data

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert get_data(["synthetic", "--out", str(blocker / "syn"), "--train", "2", "--test", "1", "--size", "32",
                     "--quiet"]) == 2
    one_line_error(capsys, f"error: {blocker}: File exists")  # mkdir of a folder where a file is
    assert main(["data", "synthetic", "--out", str(blocker / "syn"), "--quiet"]) == 2
    one_line_error(capsys, f"error: {blocker}: File exists")

    def disk_full(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError) as e:
        save_checkpoint(tmp_path / "run" / "last.pt", create_model("polyp_pvt_b0"))
    assert e.value.filename == str(tmp_path / "run" / "last.pt") and "MiB free" in e.value.strerror
    assert list((tmp_path / "run").iterdir()) == []  # no partial file left

    link = zipfile.ZipInfo("kv/escape")
    link.external_attr = (0o120777 << 16)  # a symlink entry
    with zipfile.ZipFile(tmp_path / "kv.zip", "w") as zf:
        zf.writestr(link, "/etc/passwd")
    assert get_data(["pranet", "--kvasir", str(tmp_path / "kv.zip"), "--clinicdb", str(tmp_path),
                     "--out", str(tmp_path / "polyp"), "--quiet"]) == 2
    one_line_error(capsys, "link entry 'kv/escape'")
