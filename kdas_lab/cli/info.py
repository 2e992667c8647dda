"""``kdas-lab info``: versions, device, accelerators and data directory as a table."""
from __future__ import annotations

import pandas as pd
import torch

import kdas_lab
from kdas_lab.config import Config
from kdas_lab.runtime import machine_info, resolve_device


def info_table(cfg: Config | None = None) -> pd.DataFrame:
    cfg = cfg or Config.from_env()
    import timm
    import torchvision

    rows = {"kdas_lab": kdas_lab.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__}
    rows.update(machine_info())
    rows["cuda_devices"] = str(torch.cuda.device_count())
    rows["mps"] = str(getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available())
    rows["device (auto)"] = str(resolve_device(cfg.device))
    rows["profile"] = cfg.profile
    rows["data_dir"] = f"{cfg.data_dir} ({'present' if cfg.data_dir.exists() else 'missing'})"
    return pd.DataFrame({"value": rows}).rename_axis("item")


def _run(args) -> int:
    print(info_table().to_string())
    return 0


def register(sub) -> None:
    p = sub.add_parser("info", help="versions, device and data directory")
    p.set_defaults(func=_run)
