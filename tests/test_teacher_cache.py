"""Dihedral views and the teacher-output cache (CPU, 64 px synthetic data, tiny B0 models)."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from kdas_lab.config import Config
from kdas_lab.data.views import N_VIEWS, apply_view, apply_views, draw_views
from kdas_lab.losses import create_loss
from kdas_lab.models import create_model
from kdas_lab.train import teacher_cache as tc
from kdas_lab.train.builders import build_loaders, is_distilling
from kdas_lab.train.distributed import DistInfo
from kdas_lab.train.loop import Trainer
from kdas_lab.train.parts import build_parts
from kdas_lab.train.teacher_outputs import LiveTeacher


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, one_thread):
    from kdas_lab.data import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", n_train=6, n_test=2, size=64, seed=0)


def tiny_cfg(root, **kw):
    base = dict(data_dir=Path(root), device="cpu", epochs=1, batch_size=2, max_steps_per_epoch=2, val_fraction=0.0,
                num_workers=0, teacher="polyp_pvt_b0", student="polyp_pvt_b0", augment=True,
                augment_mode="dihedral", teacher_cache=True, method="kdas")
    return Config.from_profile("fast", **{**base, **kw})


def make_trainer(cfg, tmp_path, teacher_seed=1):
    torch.manual_seed(0)
    student = create_model("polyp_pvt_b0")
    torch.manual_seed(teacher_seed)
    teacher = create_model("polyp_pvt_b0").eval().requires_grad_(False)
    loss = create_loss(cfg.method, cfg)
    cpu = torch.device("cpu")
    loaders = build_loaders(cfg, DistInfo(), cpu, distilling=is_distilling(teacher, loss))
    parts = build_parts(cfg, teacher=teacher, loss=loss, loaders=loaders, device=cpu, show_progress=False)
    return Trainer(cfg, out_dir=tmp_path, student=student, loss=loss, device=cpu, loaders=loaders,
                   teacher=teacher, show_progress=False, **parts._asdict())


def cache_of(trainer):
    """The teacher cache the trainer reads (None: the live teacher)."""
    return getattr(trainer.teacher_outputs, "cache", None)


def test_views_hand_values_identity_and_distinct():
    x = torch.tensor([[1, 2], [3, 4]])
    assert torch.equal(apply_view(x, 0), x)
    assert apply_view(x, 1).tolist() == [[2, 4], [1, 3]]  # 90 deg counter-clockwise
    assert apply_view(x, 2).tolist() == [[4, 3], [2, 1]]
    assert apply_view(x, 4).tolist() == [[2, 1], [4, 3]]  # left-right flip
    img = torch.arange(2 * 9).view(2, 3, 3)  # (C, S, S), no symmetry
    outs = {tuple(apply_view(img, v).flatten().tolist()) for v in range(N_VIEWS)}
    assert len(outs) == N_VIEWS
    with pytest.raises(ValueError, match="0..7"):
        apply_view(img, 8)


def test_apply_views_per_sample_and_draws_from_generator():
    batch = torch.randn(5, 3, 4, 4)
    views = draw_views(5, torch.Generator().manual_seed(3))
    assert torch.equal(views, draw_views(5, torch.Generator().manual_seed(3))) and views.max() < N_VIEWS
    out = apply_views(batch, views)
    for i in range(5):
        assert torch.equal(out[i], apply_view(batch[i], int(views[i])))


def test_unavailable_reasons(data_root):
    cfg = tiny_cfg(data_root)
    kd, at = create_loss("kd", cfg), create_loss("at", cfg)
    assert tc.unavailable_reason(cfg, kd, distilling=True) is None
    assert tc.unavailable_reason(cfg.replace(augment=False, augment_mode="random"), kd, True) is None
    assert "continuous random" in tc.unavailable_reason(cfg.replace(augment_mode="random"), kd, True)
    assert "features" in tc.unavailable_reason(cfg, at, True)
    assert "features" in tc.unavailable_reason(cfg, create_loss("cwd", cfg), True)
    assert tc.unavailable_reason(cfg, create_loss("cwd", cfg.replace(extra={"cwd_features": False})), True) is None
    assert "unknown" in tc.unavailable_reason(cfg, torch.nn.Module(), True)
    assert "torchrun" in tc.unavailable_reason(cfg, kd, True, distributed=True)


def test_trainer_logs_why_it_keeps_the_live_teacher(data_root, tmp_path, capsys):
    trainer = make_trainer(tiny_cfg(data_root, augment_mode="random"), tmp_path)
    assert cache_of(trainer) is None and isinstance(trainer.teacher_outputs, LiveTeacher)
    assert "keeping the live teacher (augment_mode='random'" in capsys.readouterr().out


def test_cached_loss_and_gradients_equal_live_teacher(data_root, tmp_path):
    """Cache vs a live teacher whose maps are rounded to float16: same loss and student gradients."""
    trainer = make_trainer(tiny_cfg(data_root), tmp_path)
    cache = cache_of(trainer)
    assert cache is not None and cache.paths[0].parent == Path(data_root) / ".kdas_cache" / "teacher"
    batch = next(iter(trainer.train_loader))
    views = torch.tensor([3, 6])
    images, masks = apply_views(batch["image"], views), apply_views(batch["mask"], views)  # (2, C, 64, 64)
    cached = cache.lookup(batch["stem"], views, 64, torch.device("cpu"))
    with torch.no_grad():
        live = trainer.teacher(images)
    rounded = tc.CachedTeacherOutput(live.p1.half().float(), live.p2.half().float())
    torch.testing.assert_close(cached.p1, rounded.p1, atol=1e-6, rtol=0)
    torch.testing.assert_close(cached.p2, rounded.p2, atol=1e-6, rtol=0)
    assert (cached.p1 - live.p1).abs().max() > 0  # it is float16 storage, not a copy of the live maps

    def loss_and_grads(teacher_out):
        trainer.model.zero_grad(set_to_none=True)
        out = trainer.loss(trainer.model(images), teacher_out, masks)
        out.total.backward()
        return out.total.detach(), [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]

    trainer.model.eval()  # no drop-path randomness between the two passes
    loss_c, grads_c = loss_and_grads(cached)
    loss_l, grads_l = loss_and_grads(rounded)
    torch.testing.assert_close(loss_c, loss_l, atol=1e-6, rtol=0)
    assert len(grads_c) == len(grads_l) > 0
    for a, b in zip(grads_c, grads_l):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_training_steps_skip_the_teacher_forward(data_root, tmp_path):
    trainer = make_trainer(tiny_cfg(data_root), tmp_path)
    trainer.teacher.forward = lambda *a, **k: (_ for _ in ()).throw(AssertionError("teacher was run"))
    means = trainer.train_epoch(1)
    assert np.isfinite(means["total"]) and trainer.step == 2


def test_changed_teacher_data_or_corrupt_file_rebuilds(data_root, tmp_path, capsys):
    import shutil

    from kdas_lab.data import PolypDataset

    folder = tmp_path / "TrainDataset"
    shutil.copytree(Path(data_root) / "TrainDataset", folder)
    ds = PolypDataset(folder, 64)
    torch.manual_seed(1)
    teacher = create_model("polyp_pvt_b0").eval()
    kw = dict(device=torch.device("cpu"), batch_size=4, progress=False)
    cdir = tmp_path / "cache"
    first, built = tc.load_or_build(teacher, ds, [64], 2, cdir, **kw)
    assert built and first.arrays[64].shape == (6, 2, 2, 64, 64)
    again, built = tc.load_or_build(teacher, ds, [64], 2, cdir, **kw)
    assert not built and again.paths == first.paths
    with torch.no_grad():
        teacher.out_SAM.weight.add_(0.1)  # other weights: another key, a fresh build
    other, built = tc.load_or_build(teacher, ds, [64], 2, cdir, **kw)
    assert built and other.paths != first.paths
    assert not np.array_equal(other.arrays[64][:, :, 1], first.arrays[64][:, :, 1])
    np.testing.assert_array_equal(other.arrays[64][:, :, 0], first.arrays[64][:, :, 0])  # p1 untouched
    _, built = tc.load_or_build(teacher, ds, [32], 2, cdir, **kw)  # another size
    assert built
    img = ds.pairs[0][1]  # changed data: rewrite one image (new size/mtime -> new data key)
    img.write_bytes(img.read_bytes())
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))
    changed, built = tc.load_or_build(teacher, PolypDataset(folder, 64), [64], 2, cdir, **kw)
    assert built and changed.paths != other.paths
    path = changed.paths[0]  # a corrupt (truncated) file is named and rebuilt
    path.write_bytes(path.read_bytes()[:200])
    fixed, built = tc.load_or_build(teacher, PolypDataset(folder, 64), [64], 2, cdir, **kw)
    assert built and np.load(path, mmap_mode="r").shape == (6, 2, 2, 64, 64)
    assert f"teacher cache {path} is unreadable" in capsys.readouterr().out


def test_one_cache_serves_every_seed_split(data_root, tmp_path, capsys):
    for seed in (0, 1):  # other seeds: other train/val splits, the same cached folder
        cfg = tiny_cfg(data_root, seed=seed, val_fraction=0.34, teacher_cache_dir=tmp_path / "c")
        trainer = make_trainer(cfg, tmp_path / f"run{seed}")
        assert len(trainer.train_loader.dataset) == 4 and len(cache_of(trainer).index) == 6
    out = capsys.readouterr().out
    assert out.count("teacher_cache: built") == 1 and out.count("teacher_cache: reusing") == 1
    assert len(list((tmp_path / "c").glob("*.npy"))) == 1


def test_cache_holds_every_size_of_a_progressive_schedule(data_root, tmp_path):
    cfg = tiny_cfg(data_root, epochs=2, epoch_sizes=[32], teacher_cache_dir=tmp_path / "c")
    trainer = make_trainer(cfg, tmp_path / "run")
    assert sorted(cache_of(trainer).arrays) == [32, 64]
    trainer.fit()  # epoch 1 reads the 32 px maps, epoch 2 the 64 px ones


@pytest.mark.slow
def test_dihedral_cached_run_resumes_exactly(data_root, tmp_path):
    import pandas as pd

    from kdas_lab.train import distill

    cfg = tiny_cfg(data_root, epochs=2, teacher_cache_dir=tmp_path / "c")
    torch.manual_seed(1)
    teacher = create_model("polyp_pvt_b0")
    distill(cfg, teacher, tmp_path / "full", show_progress=False)
    distill(cfg, teacher, tmp_path / "part", stop_after=1, show_progress=False)
    distill(cfg, teacher, tmp_path / "part", resume=True, show_progress=False)
    a, b = (pd.read_csv(tmp_path / r / "steps.csv") for r in ("full", "part"))
    pd.testing.assert_frame_equal(a, b, atol=1e-6, rtol=0)
    assert len(a) == 4 and a["loss_sgm"].notna().all()


def _small_cache(data_root, cdir, n_views=2):
    """A B0 teacher's cache of the 6 synthetic 64 px images: ``(teacher, dataset, kwargs, cache)``."""
    from kdas_lab.data import PolypDataset

    ds = PolypDataset(Path(data_root) / "TrainDataset", 64)
    torch.manual_seed(1)
    teacher = create_model("polyp_pvt_b0").eval()
    kw = dict(device=torch.device("cpu"), batch_size=6, progress=False)
    cache, _ = tc.load_or_build(teacher, ds, [64], n_views, cdir, **kw)
    return teacher, ds, kw, cache


def _overwrite_block(path, row, view, value: bytes, n_views=2, size=64):
    """Overwrite the (2, size, size) float16 block of (row, view) in the .npy with ``value`` repeated."""
    block = 2 * size * size * 2
    offset = np.load(path, mmap_mode="r").offset + (row * n_views + view) * block
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(value * (block // len(value)))


def test_full_disk_is_one_error_naming_the_bytes_and_leaves_no_temp(data_root, tmp_path):
    import subprocess

    from kdas_lab.data import PolypDataset

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a 256 KiB tmpfs to fill: {mounted.stderr.strip() or mounted.returncode}")
    try:
        teacher = create_model("polyp_pvt_b0").eval()
        ds = PolypDataset(Path(data_root) / "TrainDataset", 64)
        needed = 128 + 6 * 8 * 2 * 64 * 64 * 2  # npy header + (N, V, 2, s, s) float16
        with pytest.raises(OSError, match=f"disk full: the teacher cache needs {needed} bytes") as err:
            tc.load_or_build(teacher, ds, [64], 8, disk, device=torch.device("cpu"), progress=False)
        assert str(disk) in err.value.filename and err.value.filename.endswith(".npy")
        assert [p.suffix for p in disk.iterdir()] == [".lock"]  # no temp file keeps the disk full
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_stale_temp_of_a_killed_build_is_removed_at_load(data_root, tmp_path, capsys):
    from tests.test_hostile_inputs import _dead_pid

    cdir = tmp_path / "c"
    cdir.mkdir()
    stale = cdir / f".x.npy.{_dead_pid()}-0123abcd.tmp.npy"
    stale.write_bytes(b"\0" * 100)
    _small_cache(data_root, cdir)
    assert not stale.exists() and f"removed {stale}" in capsys.readouterr().err


def test_zeroed_area_is_detected_at_load_and_rebuilt(data_root, tmp_path, capsys):
    teacher, ds, kw, cache = _small_cache(data_root, tmp_path / "c")
    path = cache.paths[0]
    good = np.array(cache.arrays[64][5])
    del cache
    _overwrite_block(path, row=5, view=1, value=b"\0")
    again, built = tc.load_or_build(teacher, ds, [64], 2, tmp_path / "c", **kw)
    assert built and f"teacher cache {path} is damaged" in capsys.readouterr().out
    np.testing.assert_array_equal(again.arrays[64][5], good)


def test_nan_area_read_mid_run_fails_naming_the_cache(data_root, tmp_path):
    _, ds, _, cache = _small_cache(data_root, tmp_path / "c")
    cpu = torch.device("cpu")
    cache.lookup([ds.stems[0]], torch.tensor([1]), 64, cpu)  # read once: fine
    _overwrite_block(cache.paths[0], row=3, view=1, value=np.float16("nan").tobytes())
    cache.lookup([ds.stems[0]], torch.tensor([0]), 64, cpu)  # another block: fine
    damaged = rf"teacher cache {cache.paths[0]} is damaged: the maps of \['{ds.stems[3]}'\]"
    with pytest.raises(ValueError, match=damaged):
        cache.lookup([ds.stems[2], ds.stems[3]], torch.tensor([1, 1]), 64, cpu)


def test_cache_command_lists_then_prunes_an_absent_teachers_cache(data_root, tmp_path, capsys):
    from kdas_lab.cli import main
    from kdas_lab.models import save_checkpoint
    from tests.test_hostile_inputs import _dead_pid

    teacher, _, _, cache = _small_cache(data_root, tmp_path / "c")
    save_checkpoint(tmp_path / "a.pt", teacher)
    torch.manual_seed(2)
    save_checkpoint(tmp_path / "other" / "b.pt", create_model("polyp_pvt_b0"))
    npy, nbytes = cache.paths[0], cache.paths[0].stat().st_size
    stale = npy.parent / f".{npy.name}.{_dead_pid()}-0123abcd.tmp.npy"
    stale.write_bytes(b"\0")
    sha = tc.state_dict_sha256(teacher)[:12]
    assert main(["cache", "--dir", str(npy.parent), "--teacher", str(tmp_path / "a.pt")]) == 0
    out = capsys.readouterr()
    assert sha in out.out and str(nbytes) in out.out and "would remove (pass --prune): 0 cache(s), 0 bytes" in out.out
    assert f"would remove {stale}" in out.err and stale.exists()
    argv = ["cache", "--dir", str(npy.parent), "--teacher", str(tmp_path / "other")]
    assert main(argv) == 0 and "teacher not present" in capsys.readouterr().out and npy.exists()
    assert main([*argv, "--prune"]) == 0
    assert f"removed: 1 cache(s), {nbytes} bytes" in capsys.readouterr().out
    assert not npy.exists() and not npy.with_suffix(".json").exists() and not stale.exists()
