"""Shared fixtures. ``shared_dir``: ../shared beside the repo (skips when absent);
``pranet_root``: the real PraNet set built ONCE per session from the shared archives;
``one_thread``: torch on one thread for a module of tiny-tensor tests."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"real data not available: {SHARED / 'data'} is absent")
    return SHARED


@pytest.fixture(scope="session")
def pranet_root(shared_dir, tmp_path_factory) -> Path:
    """Build ``TrainDataset`` + ``TestDataset/{Kvasir,CVC-ClinicDB}`` through the get_data CLI entry."""
    from kdas_lab.cli.data import main

    data = shared_dir / "data"
    out = tmp_path_factory.mktemp("real") / "polyp"
    t0 = time.perf_counter()
    rc = main(["pranet", "--kvasir", str(data / "Kvasir-SEG.zip"), "--clinicdb", str(data / "CVC-ClinicDB.zip"),
               "--out", str(out), "--quiet"])
    print(f"real PraNet build + verify: {time.perf_counter() - t0:.1f} s")
    assert rc == 0, "get_data.py pranet failed on the shared archives"
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread is as fast and immune to oversubscription on shared CI cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
