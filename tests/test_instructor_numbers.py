"""The numbers INSTRUCTOR.md quotes from the studies are the committed CSVs' numbers (3 decimals)."""
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "notebooks" / "INSTRUCTOR.md").read_text()
RESULTS = ROOT / "docs" / "results"
# (summary CSV, arm, test set, column): each value appears in the guide as printed here
QUOTED = [
    ("laptop_scarce2_summary.csv", "no_kd", "Kvasir", "mean"),
    ("laptop_scarce2_summary.csv", "no_kd", "CVC-ClinicDB", "mean"),
    ("laptop_scarce2_summary.csv", "pseudo", "Kvasir", "diff"),
    ("laptop_scarce2_summary.csv", "pseudo", "CVC-ClinicDB", "diff"),
    ("laptop_scarce10_summary.csv", "no_kd", "Kvasir", "mean"),
    ("laptop_scarce10_summary.csv", "no_kd", "CVC-ClinicDB", "mean"),
    ("laptop_scarce10_summary.csv", "pseudo", "Kvasir", "diff"),
    ("laptop_scarce10_summary.csv", "pseudo", "CVC-ClinicDB", "diff"),
    ("laptop_full_summary.csv", "no_kd", "Kvasir", "mean"),
    ("laptop_full_summary.csv", "no_kd", "CVC-ClinicDB", "mean"),
    ("laptop_full_summary.csv", "kdas", "Kvasir", "diff"),
    ("laptop_full_summary.csv", "kdas", "CVC-ClinicDB", "diff"),
    ("laptop_full_summary.csv", "mix0.5", "Kvasir", "diff"),
    ("laptop_full_summary.csv", "mix0.5", "CVC-ClinicDB", "diff"),
]


def _value(csv: str, arm: str, dataset: str, column: str) -> str:
    s = pd.read_csv(RESULTS / csv)
    v = float(s[(s["arm"] == arm) & (s["dataset"] == dataset) & (s["metric"] == "meanDic")][column].iloc[0])
    return f"{v:+.3f}".replace("-", "−") if column == "diff" else f"{v:.3f}"


@pytest.mark.parametrize("csv, arm, dataset, column", QUOTED)
def test_quoted_study_numbers_match_their_csv(csv, arm, dataset, column):
    assert (RESULTS / csv).is_file(), f"{csv} is quoted by INSTRUCTOR.md but not committed"
    quoted = _value(csv, arm, dataset, column)
    assert quoted in GUIDE, f"INSTRUCTOR.md should quote {arm} {dataset} {column} = {quoted} from {csv}"
