"""A hostile or clumsy user's battery (issue 13): what already held keeps holding, and the weaker
spots stay fixed. Tiny files in tmp_path, CPU; one short real run (B0, 32 px, one step an epoch)."""
from __future__ import annotations

import json
import os
import tarfile
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from kdas_lab.atomic import clean_stale
from kdas_lab.cli import main
from kdas_lab.data import build_pranet, build_synthetic, pranet_test_stems, verify_pranet
from kdas_lab.data.archive import safe_extract
from kdas_lab.data.io import DataError, load_mask
from kdas_lab.evaluation import evaluate_maps
from kdas_lab.models import CheckpointError, create_model, load_checkpoint, read_checkpoint


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            pass
        pid -= 1


def _no_traceback(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", 6, 2, 32, seed=0)


# ------------------------------------------------------------------ archives
@pytest.mark.parametrize("name", ["../escape.png", "/abs.png"])
def test_unsafe_zip_entries_are_refused_and_leave_nothing(tmp_path, name):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("ok.txt", "x")
        zf.writestr(name, "x")
    with pytest.raises(DataError, match="unsafe entry"):
        safe_extract(tmp_path / "a.zip", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_tar_links_are_refused(tmp_path):
    with tarfile.open(tmp_path / "a.tar", "w") as tf:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="link entry 'link'"):
        safe_extract(tmp_path / "a.tar", tmp_path / "out")


def test_truncated_zip_says_so_without_download_advice(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("a.txt", "x" * 5000)
    (tmp_path / "cut.zip").write_bytes((tmp_path / "a.zip").read_bytes()[:100])
    with pytest.raises(DataError, match=r"cut\.zip is truncated or corrupt .*get a fresh copy"):
        safe_extract(tmp_path / "cut.zip", tmp_path / "out")


# ------------------------------------------------------------------ builds
def _release(root, stems, img_dir="images", msk_dir="masks"):
    (root / img_dir).mkdir(parents=True)
    (root / msk_dir).mkdir(parents=True)
    for s in stems:
        Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(root / img_dir / f"{s}.png")
        m = np.zeros((20, 24), np.uint8)
        m[:10] = 255
        Image.fromarray(m).save(root / msk_dir / f"{s}.png")
    return root.parent


def _zip(folder, dst):
    with zipfile.ZipFile(dst, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder).as_posix())
    return dst


def test_partial_build_passes_verify_with_umask_permissions(tmp_path):
    kv = _release(tmp_path / "kv" / "Kvasir-SEG", pranet_test_stems("kvasir")[:1] + ["cja"])
    cl = _release(tmp_path / "cl" / "CVC-ClinicDB", ["2"], "Original", "Ground Truth")
    old = os.umask(0o022)
    try:
        root = build_pranet(tmp_path / "polyp", kv, cl, allow_partial=True, progress=False)
    finally:
        os.umask(old)
    assert (root.stat().st_mode & 0o777) == 0o755  # not mkdtemp's 0700
    report = verify_pranet(root)
    assert report.ok, report.problems
    assert len(json.loads((root / "kdas_data.json").read_text())["files"]) == 6


def test_build_errors_name_the_archive_entry_not_a_scratch_path(tmp_path):
    kv = _release(tmp_path / "kv" / "Kvasir-SEG", pranet_test_stems("kvasir")[:1] + ["cja"])
    (kv / "Kvasir-SEG" / "images" / "cja.png").write_bytes(b"broken")
    archive = _zip(kv, tmp_path / "kvasir.zip")
    cl = _release(tmp_path / "cl" / "CVC-ClinicDB", ["2"], "Original", "Ground Truth")
    with pytest.raises(DataError) as e:
        build_pranet(tmp_path / "polyp", archive, cl, allow_partial=True, progress=False)
    assert f"{archive}:Kvasir-SEG/images/cja.png" in str(e.value) and "tmp-" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cl", "kv", "kvasir.zip"]  # nothing half-built


def test_overwrite_refuses_a_folder_kdas_lab_did_not_build(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="no kdas_data.json"):
        build_synthetic(tmp_path / "mine", 2, 1, 32, overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_killed_build_leftovers_are_cleaned_at_the_next_build(tmp_path, capsys):
    dead = _dead_pid()
    stale = tmp_path / f"syn.tmp-{dead}-abcd1234"
    stale.mkdir()
    unknown = tmp_path / "syn.tmp-abcd1234"  # an older name without a process id: reported only
    unknown.mkdir()
    build_synthetic(tmp_path / "syn", 2, 1, 32)
    err = capsys.readouterr().err
    assert not stale.exists() and f"removed {stale}" in err
    assert unknown.exists() and f"{unknown} looks like the leftover" in err


def test_corrupt_manifest_is_named(syn, tmp_path):
    root = build_synthetic(tmp_path / "s", 2, 1, 32)
    (root / "kdas_data.json").write_text("{not json")
    with pytest.raises(DataError, match=r"kdas_data\.json is corrupt"):
        verify_pranet(root)


def test_verify_flags_an_added_file(syn, tmp_path):
    root = build_synthetic(tmp_path / "s", 2, 1, 32)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "TrainDataset" / "masks" / "extra.png")
    assert any("file added since the build" in p and "extra.png" in p for p in verify_pranet(root).problems)


def test_jpeg_masks_are_never_read_as_label_maps(tmp_path):
    m = np.zeros((16, 16), np.uint8)
    m[:2] = 1  # JPEG noise on an empty mask must stay empty
    Image.fromarray(m).save(tmp_path / "m.jpg", quality=100)
    assert not load_mask(tmp_path / "m.jpg").any()


def test_a_damaged_cache_is_named_and_rebuilt(tmp_path, capsys):
    from kdas_lab.data.cache import cache_paths, load_or_build_cache

    def load(i):
        return np.full((4, 4, 3), i, np.uint8), np.full((4, 4), i, np.uint8)

    load_or_build_cache(tmp_path, "k", ["a", "b"], 4, load, progress=False)
    meta = cache_paths(tmp_path, "k")[2]
    meta.write_text("{cut")
    images, _ = load_or_build_cache(tmp_path, "k", ["a", "b"], 4, load, progress=False)
    assert images[1].max() == 1 and f"rebuilding the cache {meta}" in capsys.readouterr().err


# ------------------------------------------------------------------ checkpoints
def test_strict_keys_and_plain_objects_still_hold(tmp_path):
    from fractions import Fraction

    torch.save({"a": Fraction(1, 3)}, tmp_path / "f.pt")
    with pytest.raises(CheckpointError, match=r"would execute code \(global fractions\.Fraction\)"):
        read_checkpoint(tmp_path / "f.pt")
    sd = dict(create_model("polyp_pvt_b0").state_dict())
    del sd["out_CFM.weight"]
    with pytest.raises(CheckpointError, match="missing keys: out_CFM.weight"):
        load_checkpoint(create_model("polyp_pvt_b0"), sd)
    sd = dict(create_model("polyp_pvt_b0").state_dict())
    sd["out_CFM.bias"] = torch.full_like(sd["out_CFM.bias"], float("nan"))
    with pytest.raises(CheckpointError, match=r"non-finite weights .*out_CFM\.bias"):
        load_checkpoint(create_model("polyp_pvt_b0"), sd)


# ------------------------------------------------------------------ command line
@pytest.mark.parametrize("argv,needle", [
    (["predict", "--checkpoint", "x.pt", "img.png", "--out", "o", "--size", "100"], "not a multiple of 32"),
    (["evaluate", "--checkpoint", "x.pt", "--data", "d", "--size", "0"], "must be >= 1"),
    (["data", "verify", "d", "--workers", "-1"], "must be >= 1"),
    (["train-teacher", "--out", "o", "--resume", "--overwrite-run"], "not allowed with argument"),
])
def test_bad_flags_are_argparse_errors(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and needle in _no_traceback(capsys)


def test_evaluate_maps_stem_check_still_holds(syn, tmp_path, capsys):
    (tmp_path / "pred" / "Synthetic").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "pred" / "Synthetic" / "stranger.png")
    with pytest.raises(DataError, match="without a prediction.*without a mask"):
        evaluate_maps(tmp_path / "pred", syn, progress=False)
    assert main(["evaluate-maps", "--pred", str(tmp_path / "pred"), "--gt", str(syn), "--workers", "1"]) == 2
    assert "stranger.png" in _no_traceback(capsys)


def test_allow_change_needs_resume_and_a_real_field(tmp_path, capsys):
    base = ["train-teacher", "--out", str(tmp_path / "r"), "--profile", "fast", "--quiet"]
    assert main([*base, "--allow-change", "epochs"]) == 2
    assert "only applies to --resume" in _no_traceback(capsys)
    assert main([*base, "--resume", "--allow-change", "epoch"]) == 2
    assert "epoch: not configuration fields" in _no_traceback(capsys)


def test_real_run_refuse_extend_and_overwrite(syn, tmp_path, capsys):
    """Train one epoch; re-running without a flag is refused; --resume with more epochs needs
    --allow-change epochs; --overwrite-run starts again; a killed run's temp file is cleaned."""
    run = tmp_path / "run"
    common = ["--out", str(run), "--model", "polyp_pvt_b0", "--profile", "fast", "--data", str(syn),
              "--device", "cpu", "--batch-size", "2", "--set", "max_steps_per_epoch=1", "--set", "threads=1",
              "--image-size", "32", "--quiet"]
    assert main(["train-teacher", "--epochs", "1", *common]) == 0
    best = (run / "best.pt").read_bytes()
    assert main(["train-teacher", "--epochs", "1", *common]) == 2
    assert "already holds a run" in _no_traceback(capsys) and (run / "best.pt").read_bytes() == best
    assert main(["train-teacher", "--epochs", "2", "--resume", *common]) == 2
    assert "epochs 1 -> 2" in _no_traceback(capsys)
    stale = run / f".last.pt.{_dead_pid()}-0123abcd.tmp.pt"
    stale.write_bytes(b"half a checkpoint")
    assert main(["train-teacher", "--epochs", "2", "--resume", "--allow-change", "epochs", *common]) == 0
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [1, 2] and not stale.exists()
    assert "epochs 1 -> 2" in (run / "resume.log").read_text()
    assert main(["train-teacher", "--epochs", "1", "--overwrite-run", *common]) == 0
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [1] and not (run / "resume.log").exists()
    assert clean_stale(run) == []
