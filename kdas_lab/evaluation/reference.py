"""Published reference numbers (``reference_numbers.csv``, shipped with the package), with citations.

Dataset names are the PraNet folder names; common aliases (``ClinicDB``, ``ETIS``, ``EndoScene``...)
are mapped onto them. Missing published values are NaN.
"""
from __future__ import annotations

from importlib import resources

import pandas as pd

ALIASES = {
    "kvasir": "Kvasir", "kvasir-seg": "Kvasir",
    "clinicdb": "CVC-ClinicDB", "cvc-clinicdb": "CVC-ClinicDB",
    "colondb": "CVC-ColonDB", "cvc-colondb": "CVC-ColonDB",
    "etis": "ETIS-LaribPolypDB", "etis-laribpolypdb": "ETIS-LaribPolypDB",
    "cvc-300": "CVC-300", "endoscene": "CVC-300", "cvc300": "CVC-300",
}


def canonical_dataset(name: str) -> str:
    return ALIASES.get(name.lower(), name)


def reference_table() -> pd.DataFrame:
    """All published rows: columns method, model, dataset, protocol, metric columns, source."""
    with resources.files("kdas_lab.evaluation").joinpath("reference_numbers.csv").open("r") as f:
        return pd.read_csv(f)


def reference_rows(datasets: list[str], methods: list[str] | None = None) -> pd.DataFrame:
    """Reference rows for ``datasets`` (any alias), indexed ``"<dataset> [<method>]"``."""
    table = reference_table()
    rows = []
    for name in datasets:
        sub = table[table["dataset"] == canonical_dataset(name)]
        if methods is not None:
            sub = sub[sub["method"].isin(methods)]
        for _, r in sub.iterrows():
            rows.append(r.rename(f"{name} [{r['method']}]"))
    if not rows:
        return pd.DataFrame(columns=table.columns)
    return pd.DataFrame(rows)
