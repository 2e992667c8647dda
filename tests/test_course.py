"""kdas_lab.course.sources: published / cached / trained teacher and students, provenance, no silent overwrite
(CPU, fast profile, 64 px synthetic data, a B0 teacher to keep it quick)."""
import json
from pathlib import Path

import pytest

from kdas_lab.ablation.tables import run_dir
from kdas_lab.config import Config
from kdas_lab.course import sources as course
from kdas_lab.models import create_model, read_checkpoint, save_checkpoint
from kdas_lab.store import Fingerprint, data_key, short, state_dict_sha256


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from kdas_lab.data import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("syn") / "data", n_train=6, n_test=2, size=64, seed=0)


@pytest.fixture
def cfg(data_dir, tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)  # runs/ and checkpoints/ are relative to the working directory
    monkeypatch.delenv(course.TEACHER_ENV, raising=False)
    return Config.from_profile("fast", data_dir=Path(data_dir), device="cpu", epochs=1, batch_size=2,
                               max_steps_per_epoch=1, val_fraction=0.34, teacher="polyp_pvt_b0",
                               student="polyp_pvt_b0")


def test_teacher_is_trained_once_with_notice_and_provenance(cfg, data_dir, capsys):
    first = course.get_teacher(cfg, progress=False)
    out = capsys.readouterr().out
    assert first.origin == "trained" and "NOTICE: training a teacher" in out and "Estimated time" in out
    assert first.checkpoint == Path("runs/notebooks/fast/teacher/best.pt")
    prov = read_checkpoint(first.checkpoint, meta_only=True)["provenance"]
    assert prov["profile"] == "fast" and prov["seed"] == cfg.seed and prov["role"] == "teacher"
    assert prov["data_dir"] == str(data_dir) and prov["synthetic"]
    info = course.describe_checkpoint(first.checkpoint)
    assert info["data_key"] == data_key(data_dir) and info["teacher"] == "none"
    assert info["provenance"] == "trained by the course"
    stamp = first.checkpoint.stat().st_mtime_ns
    again = course.get_teacher(cfg)
    assert again.origin == "cached" and again.checkpoint == first.checkpoint
    assert first.checkpoint.stat().st_mtime_ns == stamp, "a cached teacher must not be overwritten"
    assert "NOTICE" not in capsys.readouterr().out
    retrained = course.get_teacher(cfg, retrain=True, progress=False)
    assert retrained.origin == "trained" and first.checkpoint.stat().st_mtime_ns != stamp


def test_published_teacher_wins_and_a_named_missing_one_is_an_error(cfg, monkeypatch, tmp_path):
    path = tmp_path / "published.pth"
    save_checkpoint(path, create_model("polyp_pvt_b0"))
    monkeypatch.setenv(course.TEACHER_ENV, str(path))
    got = course.get_teacher(cfg)
    assert got.origin == "published" and got.checkpoint == path
    assert not Path("runs").exists(), "nothing is trained when the published checkpoint is there"
    monkeypatch.setenv(course.TEACHER_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        course.get_teacher(cfg)
    monkeypatch.delenv(course.TEACHER_ENV)
    assert course.published_teacher() is None  # nothing at checkpoints/PolypPVT.pth here


def _save_made_by(path, model, cfg, teacher=None, data=None, method="none"):
    """A checkpoint as a CLI or study run records it (a fingerprint, no course provenance)."""
    fp = Fingerprint.of(cfg.replace(method=method), None if teacher is None else state_dict_sha256(teacher),
                        data_key(data or cfg.data_dir))
    save_checkpoint(path, model, config=cfg.to_dict(), method=method, fingerprint=fp.to_dict())


def test_laptop_profile_finds_the_study_teacher_only_when_it_is_this_recipe_and_data(cfg, tmp_path, capsys):
    laptop = Config.from_profile("laptop", data_dir=cfg.data_dir, teacher="polyp_pvt_b0",
                                 max_steps_per_epoch=1, image_size=64, teacher_recipe={"epochs": 1, "lr": 7e-4})
    _save_made_by(course.STUDY_TEACHER, create_model("polyp_pvt_b0"), laptop.for_teacher())
    got = course.get_teacher(laptop)
    assert got.origin == "cached" and got.checkpoint == course.STUDY_TEACHER
    assert course.describe_checkpoint(got.checkpoint)["provenance"] == "trained by kdas_lab (CLI or study)"
    _save_made_by(course.STUDY_TEACHER, create_model("polyp_pvt_b0"), laptop.for_teacher().replace(lr=0.1))
    assert course.get_teacher(laptop, progress=False).origin == "trained"
    assert "not reusing runs/laptop/teacher/best.pt (recorded -> now: lr 0.1 -> " in capsys.readouterr().out


def test_laptop_profile_reuses_the_study_students_only_with_their_teacher_and_data(cfg, tmp_path, data_dir):
    laptop = Config.from_profile("laptop", data_dir=cfg.data_dir, teacher="polyp_pvt_b0", student="polyp_pvt_b0",
                                 epochs=1, max_steps_per_epoch=1, image_size=64, teacher_recipe={})
    teacher = create_model("polyp_pvt_b0")
    _save_made_by(course.STUDY_TEACHER, teacher, laptop.for_teacher())
    study_kdas = run_dir(*course.STUDY_STUDENTS[("kdas", "mask", 1.0)], seed=0) / "best.pt"
    study_nokd = run_dir(*course.STUDY_STUDENTS[("none", "mask", 1.0)], seed=0) / "best.pt"
    study_recipe = laptop.replace(augment_mode="dihedral")  # the study's own recipe: accepted
    _save_made_by(study_kdas, create_model("polyp_pvt_b0"), study_recipe, teacher=teacher, method="kdas")
    _save_made_by(study_nokd, create_model("polyp_pvt_b0"), study_recipe)
    got = course.get_student(laptop, "kdas", progress=False)
    assert got.origin == "cached" and got.checkpoint == study_kdas
    assert course.get_student(laptop, "none", progress=False).checkpoint == study_nokd
    other = create_model("polyp_pvt_b0")  # a teacher retrained: the study's KDAS student is not its student
    save_checkpoint(tmp_path / "other.pt", other)
    assert course.get_student(laptop, "kdas", tmp_path / "other.pt", progress=False).origin == "trained"
    assert course.get_student(laptop, "none").checkpoint == study_nokd  # no teacher involved
    assert course.describe_checkpoint(study_kdas)["teacher"] == short(state_dict_sha256(teacher))
    scarce = laptop.replace(labelled_fraction=0.02, labelled_per_batch=4, targets="pseudo")
    assert course.student_candidates(scarce, "targets")[1] == Path("runs/laptop/scarce2/runs/pseudo/seed0/best.pt")


def test_another_dataset_gets_its_own_models(cfg, tmp_path, capsys):
    from kdas_lab.data import build_synthetic

    course.get_teacher(cfg, progress=False)
    other = build_synthetic(tmp_path / "other", n_train=7, n_test=2, size=64, seed=1)
    got = course.get_teacher(cfg.replace(data_dir=other), progress=False)
    assert got.origin == "trained" and "recorded -> now: data " in capsys.readouterr().out


def test_an_interrupted_retrain_keeps_the_cached_teacher(cfg, monkeypatch):
    first = course.get_teacher(cfg, progress=False)
    before = first.checkpoint.read_bytes()
    import kdas_lab.train

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    train_teacher = kdas_lab.train.train_teacher
    monkeypatch.setattr(kdas_lab.train, "train_teacher", interrupted)
    with pytest.raises(KeyboardInterrupt):
        course.get_teacher(cfg, retrain=True, progress=False)
    assert first.checkpoint.read_bytes() == before  # the old model is still there
    monkeypatch.setattr(kdas_lab.train, "train_teacher", train_teacher)
    assert course.get_teacher(cfg).origin == "cached"



def test_students_record_their_teacher_and_are_not_overwritten(cfg, capsys):
    teacher = course.get_teacher(cfg, progress=False)
    kd = course.get_student(cfg, "kdas", teacher, progress=False)
    assert kd.origin == "trained" and kd.checkpoint == Path("runs/notebooks/fast/student_kdas/best.pt")
    info = course.describe_checkpoint(kd.checkpoint)
    assert info["teacher"] == short(state_dict_sha256(teacher.model)) and info["method"] == "kdas"
    assert info["role"] == "student" and info["profile"] == "fast"
    plain = course.get_student(cfg, "none", progress=False)
    assert course.describe_checkpoint(plain.checkpoint)["teacher"] == "none"
    stamp = kd.checkpoint.stat().st_mtime_ns
    capsys.readouterr()
    assert course.get_student(cfg, "kdas", teacher).origin == "cached"
    assert kd.checkpoint.stat().st_mtime_ns == stamp and "NOTICE" not in capsys.readouterr().out
    at = course.get_student(cfg, "at", progress=False)  # no teacher given: the course's teacher, cached
    assert course.describe_checkpoint(at.checkpoint)["teacher"] == info["teacher"]
    retrained = course.get_teacher(cfg.replace(seed=1), retrain=True, progress=False)  # another teacher:
    assert retrained.origin == "trained"  # its students are trained anew, the old ones are not served
    assert course.get_student(cfg, "kdas", retrained, progress=False).origin == "trained"
    assert course.training_history(at.checkpoint) is not None and course.training_history("x/PolypPVT.pth") is None


def test_course_data_never_builds_synthetic_frames_in_the_real_data_folder(tmp_path, monkeypatch, capsys):
    from kdas_lab.course.tools import course_data

    monkeypatch.chdir(tmp_path)
    laptop = Config.from_profile("laptop", data_dir=Path("data/pranet"), synthetic_train=3, synthetic_test=2,
                                 teacher_recipe={},
                                 image_size=32)
    root, synthetic = course_data(laptop)
    assert synthetic and root == Path("data/synthetic_laptop") and not Path("data/pranet").exists()
    assert "SYNTHETIC" in capsys.readouterr().out


@pytest.mark.parametrize("manifest,expected", [(None, False), ({"kind": "synthetic"}, True),
                                                ({"kind": "pranet"}, False)])
def test_real_data_installed_with_a_manifest_is_not_called_synthetic(tmp_path, manifest, expected):

    from kdas_lab.course.tools import is_synthetic

    if manifest is not None:
        (tmp_path / "kdas_data.json").write_text(json.dumps(manifest))
    assert is_synthetic(tmp_path) is expected
    prov = course.provenance(Config.from_profile("laptop"), tmp_path, role="teacher", method="none")
    assert prov["synthetic"] is expected  # what a checkpoint records agrees with what the notebook prints


def test_worst_cases_skip_empty_masks_and_the_new_frame_has_a_polyp():
    import numpy as np
    import pandas as pd

    from kdas_lab.course.tools import frame_with_polyp, worst_with_polyp

    gts = [np.ones((4, 4)), np.zeros((4, 4)), np.ones((4, 4)), np.ones((4, 4))]
    dice = pd.Series([0.9, 0.0, 0.2, 0.5], index=["a", "empty", "c", "d"])
    worst, empty = worst_with_polyp(dice, gts, k=2)
    assert worst == ["c", "d"] and empty == ["empty"]
    image, mask, seed = frame_with_polyp(2024, size=48)
    assert image.shape == (48, 48, 3) and mask.mean() >= 0.05 and seed >= 2024


def test_comparison_table_has_every_test_set(data_dir, tmp_path, one_thread):
    import shutil

    from kdas_lab.course.tools import comparison_table

    root = tmp_path / "two"
    shutil.copytree(data_dir, root)
    shutil.copytree(root / "TestDataset" / "Synthetic", root / "TestDataset" / "Second")
    table = comparison_table({"a": create_model("polyp_pvt_b0"), "b": create_model("polyp_pvt_b0")}, root, size=64,
                             device="cpu", iters=1)
    assert list(table.index) == ["a", "b"]
    assert {"meanDic Synthetic", "meanDic Second", "params_M", "GMACs"} <= set(table.columns)
    assert table.loc["a", "params_M"] == pytest.approx(3.65074)


def test_estimate_times_each_training_size_and_counts_its_steps(cfg, data_dir, monkeypatch):
    """Progressive resizing and multi-scale: one timed real step per size, times the steps taken at that size."""
    seen = []

    def one_second(train_step, device, images, masks, size, **kwargs):  # the real step, as the estimate calls it
        seen.append(size)
        train_step(images, masks, size, epoch=1)
        return 1.0

    import kdas_lab.train.step_timing as step_timing

    monkeypatch.setattr(step_timing, "time_step", one_second)
    c = cfg.replace(epochs=3, epoch_sizes=[32], multiscale=(0.5, 1.0), max_steps_per_epoch=None)
    # 4 of the 6 images fit (val_fraction 0.34), batch 2: 2 steps per epoch-scale; 3 epochs x 2 scales
    assert course.estimate_seconds(c, Path(data_dir), "polyp_pvt_b0") == 2 * 3 * 2
    assert sorted(set(seen)) == [32, 64]  # sizes 32/32 (epoch 1) and 32/64 (epochs 2-3)
    kd = cfg.replace(method="kdas")
    assert course.estimate_seconds(kd, Path(data_dir), "polyp_pvt_b0", with_teacher="polyp_pvt_b0") > 0


def test_unseen_frame_is_a_real_test_image_on_real_data(data_dir, tmp_path):
    import shutil

    from kdas_lab.course.tools import unseen_frame

    image, mask, where = unseen_frame(data_dir)  # the synthetic set: a frame rendered fresh
    assert where.startswith("a synthetic frame rendered fresh") and mask.any()
    real = tmp_path / "real"
    shutil.copytree(data_dir, real)
    (real / "kdas_data.json").unlink()  # no manifest: real data
    image, mask, where = unseen_frame(real)
    assert "test image" in where and mask.any() and image.shape[:2] == mask.shape
