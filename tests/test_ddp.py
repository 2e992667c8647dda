"""Data-parallel training: ``torchrun --nproc_per_node=2 -m kdas_lab train-teacher`` on CPU (gloo)."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    from kdas_lab.data import build_synthetic

    data = build_synthetic(tmp_path / "data", n_train=10, n_test=2, size=64, seed=0)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "KDAS_FAST": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "kdas_lab", "train-teacher", "--model", "polyp_pvt_b0",
           "--profile", "fast", "--data", str(data), "--out", str(out), "--device", "cpu", "--epochs", "1",
           "--batch-size", "2", "--set", "val_fraction=0.2", "--set", "max_steps_per_epoch=2", "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and ckpt["step"] == 2  # 8 train images / 2 ranks / batch 2
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])  # saved unwrapped
    hist = pd.read_csv(out / "history.csv")
    assert hist["epoch"].tolist() == [1] and hist["loss_total"].notna().all()
    assert proc.stdout.count("best epoch") == 1  # rank 0 alone reports
