"""scripts/gpu_check.sh without CUDA: the time budget, the run summary and the script's --cpu-smoke mode."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from kdas_lab.bench.training_run import run_summary
from kdas_lab.train.budget import out_of_time
from kdas_lab.train.distributed import DistInfo

ROOT = Path(__file__).resolve().parents[1]


def test_time_budget_stops_before_an_epoch_that_would_overrun(capsys):
    import time

    start = time.perf_counter() - 50.0  # 50 s of the run used
    cpu = torch.device("cpu")
    assert out_of_time(None, start, 30.0, 1, 5, DistInfo(), cpu) is False
    assert out_of_time(100.0, start, 30.0, 1, 5, DistInfo(), cpu) is False  # 50 + 30 <= 100
    assert out_of_time(70.0, start, 30.0, 1, 5, DistInfo(), cpu) is True  # 50 + 30 > 70
    assert "stopping after epoch 1" in capsys.readouterr().out
    assert out_of_time(70.0, start, 30.0, 5, 5, DistInfo(), cpu) is False  # the last epoch: nothing to stop


def test_run_summary_puts_the_first_epoch_apart(tmp_path):
    pd.DataFrame({"epoch": [1, 2, 3], "time": [30.0, 10.0, 12.0], "train_time": [28.0, 8.0, 10.0],
                  "images_per_s": [50.0, 180.0, 170.0], "val_meanDic": [0.2, 0.4, 0.35]}).to_csv(
        tmp_path / "history.csv", index=False)
    s = run_summary(tmp_path)
    assert s["epochs_done"] == 3 and s["first_epoch_s"] == 30.0
    assert s["steady_epoch_s_median"] == 11.0 and s["steady_images_per_s_median"] == 175.0
    assert s["best_val_meanDic"] == 0.4 and s["best_epoch"] == 2
    assert [e["val_meanDic"] for e in s["epochs"]] == [0.2, 0.4, 0.35]


@pytest.mark.slow
def test_gpu_check_cpu_smoke_runs_bench_and_budgeted_teacher(tmp_path):
    out = tmp_path / "gc"
    env = {**os.environ, "OUT": str(out), "PY": sys.executable, "OMP_NUM_THREADS": "1", "TEACHER_BUDGET_S": "300"}
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--cpu-smoke"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    bench = json.loads((out / "bench_cpu.json").read_text())
    assert bench["paper_recipe_minutes_projected"] > 0 and bench["compile_speedup"] is None
    assert bench["distill_step_speedup_cached"] > 0 and set(bench["tflops_per_s"]) == {"teacher_train", "student_train"}
    summary = json.loads((out / "teacher_summary.json").read_text())
    assert summary["epochs_done"] == 3 and summary["steady_images_per_s_median"] > 0
    assert all(e["val_meanDic"] is not None for e in summary["epochs"])
    assert (out / "history_teacher.csv").is_file() and not list((out / "teacher").glob("*.pt"))
    assert "device_data: on" in (out / "gpu_check.log").read_text()
