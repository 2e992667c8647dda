#!/usr/bin/env python3
"""Install, verify or synthesise polyp datasets (a thin CLI over ``kdas_lab.data``).

    python data_scripts/get_data.py pranet --kvasir kvasir-seg.zip --clinicdb CVC-ClinicDB.zip --out data/polyp
    python data_scripts/get_data.py pranet --kvasir https://datasets.simula.no/downloads/kvasir-seg.zip \\
        --clinicdb ~/Downloads/CVC-ClinicDB --out data/polyp
    python data_scripts/get_data.py verify data/polyp
    python data_scripts/get_data.py synthetic --out data/synthetic --train 400 --test 100 --size 256

Same commands as ``kdas-lab data ...``. See docs/data.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from kdas_lab.cli.data import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(prog="get_data.py"))
