"""One fingerprint of what made a model: computed, compared, recorded in checkpoints and study markers;
the study runner never reuses a run of another teacher or config, and --resume refuses another teacher."""
import json
from pathlib import Path

import pytest
import torch

from kdas_lab.ablation import run_ablation
from kdas_lab.ablation.arms import Grid, get_arm
from kdas_lab.config import Config
from kdas_lab.models import create_model
from kdas_lab.store import Fingerprint, data_key, read_fingerprint, short, state_dict_sha256
from kdas_lab.train import distill, train_teacher
from kdas_lab.train.run_guard import RunFolderError


def test_differences_name_what_changed():
    cfg = Config.from_profile("fast")
    a = Fingerprint.of(cfg, "a" * 64, "d1")
    assert a.differences(Fingerprint.of(cfg, "a" * 64, "d1")) == []
    assert a.differences(Fingerprint.of(cfg.replace(device="cpu", threads=1, num_workers=3), "a" * 64, "d1")) == []
    b = Fingerprint.of(cfg.replace(epochs=5, lr=0.01), "b" * 64, "d2")
    assert a.differences(b) == [f"teacher {'a' * 12} -> {'b' * 12}", "data d1 -> d2", "epochs 2 -> 5",
                                "lr 0.0005 -> 0.01"]
    assert a.differences(b, config=False) == [f"teacher {'a' * 12} -> {'b' * 12}", "data d1 -> d2"]
    assert a.differences(None) == ["no fingerprint recorded"]
    assert Fingerprint.from_dict(json.loads(json.dumps(b.to_dict()))) == b
    assert Fingerprint.from_dict({"config": {}}) is None and short(None) == "none"


def test_records_written_before_the_teacher_recipe_still_match():
    """A fingerprint recorded before 2026-12-07 (teacher_set / teacher_epochs, fewer fields) is the same
    experiment as today's: removed fields are not compared, added ones count as their defaults, and the
    teacher's recipe is named by the teacher's weights, not recorded."""
    cfg = Config.from_profile("laptop")
    now = Fingerprint.of(cfg, "a" * 64, "d1")
    old_config = {k: v for k, v in now.config.items() if k not in ("compile_backend", "device_data_max_fraction")}
    old = Fingerprint({**old_config, "teacher_set": {"lr": 7e-4}, "teacher_epochs": 22}, "a" * 64, "d1", "laptop")
    assert "teacher_recipe" not in now.config and old.differences(now) == []
    assert Fingerprint.of(cfg.with_teacher(lr=1.0), "a" * 64, "d1") == now


def test_data_key_ignores_hidden_caches(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"123")
    key = data_key(tmp_path)
    (tmp_path / ".kdas_cache").mkdir()
    (tmp_path / ".kdas_cache" / "x.npy").write_bytes(b"cache")
    assert data_key(tmp_path) == key
    (tmp_path / "images" / "b.png").write_bytes(b"4")
    assert data_key(tmp_path) != key


def test_teacher_digest_is_its_weights():
    torch.manual_seed(0)
    a, b = create_model("polyp_pvt_b0"), create_model("polyp_pvt_b0")
    assert state_dict_sha256(a) != state_dict_sha256(b)
    b.load_state_dict(a.state_dict())
    assert state_dict_sha256(a) == state_dict_sha256(b)


@pytest.fixture(scope="module")
def two_teachers(tmp_path_factory):
    from kdas_lab.data import build_synthetic

    root = tmp_path_factory.mktemp("fp")
    data = build_synthetic(root / "data", n_train=8, n_test=2, size=64, seed=0)
    cfg = Config.from_profile("fast", data_dir=Path(data), device="cpu", epochs=1, batch_size=4, val_fraction=0.25,
                              teacher="polyp_pvt_b0", max_steps_per_epoch=1, threads=1, method="kdas")
    teachers = [train_teacher(cfg.replace(seed=s).with_teacher(epochs=1), root / f"t{s}", show_progress=False)
                for s in (0, 1)]
    return cfg, [t.best_checkpoint for t in teachers], root


def test_checkpoints_record_their_fingerprint(two_teachers):
    cfg, (t0, _), root = two_teachers
    result = distill(cfg, t0, root / "student", show_progress=False)
    recorded = read_fingerprint(result.best_checkpoint)
    teacher_fp = read_fingerprint(t0)
    assert recorded.teacher is not None and recorded.data == data_key(cfg.data_dir) == teacher_fp.data
    assert teacher_fp.teacher is None and recorded.config["method"] == "kdas"


def test_resume_with_another_teacher_is_refused(two_teachers):
    cfg, (t0, t1), root = two_teachers
    distill(cfg.replace(epochs=2), t0, root / "resume", show_progress=False, stop_after=1)
    with pytest.raises(RunFolderError, match=r"--resume .*last.pt: it was trained with teacher \w{12}, this run"):
        distill(cfg.replace(epochs=2), t1, root / "resume", resume=True, show_progress=False)
    done = distill(cfg.replace(epochs=2), t1, root / "resume", resume=True, show_progress=False,
                   allow_change=("teacher",))
    assert len(done.history) == 2


def test_study_reruns_runs_of_another_teacher_or_config(two_teachers, capsys):
    cfg, (t0, t1), root = two_teachers
    grid = Grid(arms=[get_arm("no_kd"), get_arm("kdas")], seeds=[0])
    out = root / "study"
    first = run_ablation(cfg, grid, out, teacher=t0, progress=False)
    assert len(first.trained) == 2
    again = run_ablation(cfg, grid, out, teacher=t0, progress=False)
    assert (again.trained, len(again.skipped)) == ([], 2)
    other = run_ablation(cfg, grid, out, teacher=t1, progress=False)
    assert other.trained == [("kdas", 0)] and other.skipped == [("no_kd", 0)]  # no_kd reads no teacher
    assert "seed0 is another experiment (recorded -> now: teacher " in capsys.readouterr().out
    assert (out / "runs" / "kdas" / "replaced" / "seed0.1" / "metrics.json").is_file()  # set aside, not deleted
    marker = json.loads((out / "runs" / "kdas" / "seed0" / "metrics.json").read_text())
    grid_teacher = json.loads((out / "grid.json").read_text())["teacher"]
    assert Fingerprint.from_dict(marker["fingerprint"]).teacher == grid_teacher
    changed = run_ablation(cfg.replace(lr=0.01), grid, out, teacher=t1, progress=False)
    assert len(changed.trained) == 2


def test_marker_of_another_seed_names_the_file(two_teachers):
    cfg, (t0, _), root = two_teachers
    from kdas_lab.ablation.tables import read_marker

    path = root / "m.json"
    path.write_text(json.dumps({"arm": "kdas", "seed": 1, "records": []}))
    with pytest.raises(ValueError, match=r"m.json: unreadable run marker .*records kdas/seed1, not kdas/seed0"):
        read_marker(path, "kdas", 0)


def test_export_names_the_teacher_and_refuses_mixed_teachers(two_teachers, tmp_path):
    import pandas as pd

    from kdas_lab.ablation.tables import export_study

    cfg, (t0, t1), root = two_teachers
    out = root / "export"
    run_ablation(cfg, Grid(arms=[get_arm("no_kd"), get_arm("kd")], seeds=[0]), out, teacher=t0, progress=False)
    runs, summary, times = export_study(out, "tiny", tmp_path)
    digest = json.loads((out / "grid.json").read_text())["teacher"]
    assert set(pd.read_csv(summary)["teacher"]) == {short(digest)} and len(pd.read_csv(runs)) > 0
    assert list(pd.read_csv(times)["arm"]) == ["kd", "no_kd"] and pd.read_csv(times)["load_avg_1min"].notna().all()
    run_ablation(cfg, Grid(arms=[get_arm("kdas")], seeds=[0]), out, teacher=t1, progress=False)  # another teacher
    with pytest.raises(ValueError, match="runs of 2 teachers"):
        export_study(out, "tiny", tmp_path)


def test_ensure_teacher_reuses_only_its_own_fingerprint(two_teachers, capsys):
    from kdas_lab.train import ensure_teacher

    cfg, _, root = two_teachers
    tcfg = cfg.with_teacher(epochs=1)
    best, origin = ensure_teacher(tcfg, root / "own_teacher", progress=False)
    assert origin == "trained" and best == root / "own_teacher" / "best.pt"
    assert ensure_teacher(tcfg, root / "own_teacher", progress=False) == (best, "cached")
    _, origin = ensure_teacher(tcfg.replace(lr=1e-3), root / "own_teacher", progress=False)
    assert origin == "trained" and "recorded -> now: lr 0.0005 -> 0.001" in capsys.readouterr().out
    assert not (root / "own_teacher.new").exists() and not (root / "own_teacher.old").exists()


def test_a_damaged_teacher_scores_stamp_is_evaluated_again(two_teachers, capsys):
    cfg, (t0, _), root = two_teachers
    out = root / "export"  # the study of the export test: its teacher row exists
    run_ablation(cfg, Grid(arms=[get_arm("kd")], seeds=[0]), out, teacher=t0, progress=False)
    (out / "teacher_scores.json").write_text("{not json")
    run_ablation(cfg, Grid(arms=[get_arm("kd")], seeds=[0]), out, teacher=t0, progress=False)
    assert "teacher_scores.json is unreadable; evaluating the teacher again" in capsys.readouterr().out
    assert json.loads((out / "teacher_scores.json").read_text())["teacher"] is not None
