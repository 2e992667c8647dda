"""Device choice (once, ``auto``), seeding and environment facts."""
from __future__ import annotations

import os
import platform
import random
from importlib.metadata import version

import numpy as np
import pandas as pd
import torch

from kdas_lab.config import Config


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit name is checked to exist."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available (use --device cpu or auto)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {name!r} requested but MPS is not available (use --device cpu or auto)")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def machine_info() -> dict[str, str]:
    """Facts recorded with every benchmark and checkpoint."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "cuda": str(torch.cuda.is_available()),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op elsewhere. For timing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def info_table(cfg: Config | None = None) -> pd.DataFrame:
    """Versions, device, accelerators, profile and data directory (``kdas-lab info``, notebook 00)."""
    cfg = cfg or Config.from_env()
    import timm  # noqa: PLC0415 (heavy; only here)
    import torchvision  # noqa: PLC0415

    rows = {"kdas_lab": version("kdas_lab"), "torchvision": torchvision.__version__, "timm": timm.__version__}
    rows.update(machine_info())
    rows["cuda_devices"] = str(torch.cuda.device_count())
    rows["mps"] = str(getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available())
    rows["device (auto)"] = str(resolve_device(cfg.device))
    rows["profile"] = cfg.profile
    rows["data_dir"] = f"{cfg.data_dir} ({'present' if cfg.data_dir.exists() else 'missing'})"
    return pd.DataFrame({"value": rows}).rename_axis("item")
