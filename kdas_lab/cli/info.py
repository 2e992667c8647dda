"""``kdas-lab info``: versions, device, accelerators and data directory as a table
(:func:`kdas_lab.runtime.info_table`, re-exported here for older imports)."""
from __future__ import annotations

from kdas_lab.runtime import info_table

__all__ = ["info_table", "register"]


def _run(args) -> int:
    print(info_table().to_string())
    return 0


def register(sub) -> None:
    p = sub.add_parser("info", help="versions, device and data directory")
    p.set_defaults(func=_run)
