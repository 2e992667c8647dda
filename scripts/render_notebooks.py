"""Execute the course notebooks in order, in place, under one profile, and time each one.

    KDAS_PROFILE=laptop python scripts/render_notebooks.py --times docs/results/course_times_laptop.csv

Each notebook runs in its own kernel from ``notebooks/`` (nbclient, as JupyterLab's "Run All"), its
outputs are written back into the ``.ipynb`` (the committed outputs), and one row per notebook is
appended to ``--times``: ``cells_s``, the sum of the kernel-side execution times of its cells (what a
learner waits for), ``harness_s`` (this script's wall time: nbclient also waits up to ``--timeout`` after a
cell that displays an ipywidgets explorer, which a browser does not), load average before and after,
profile and machine. Absolute paths
of this machine in the outputs are replaced by paths relative to the repository, and PNG figures are
stored as 256-colour PNGs where that is smaller (the repository takes no file over 1 MB).
"""
from __future__ import annotations

import argparse
import base64
import datetime
import io
import os
import platform
import time
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient
from PIL import Image

from kdas_lab.atomic import write_csv_atomic

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def relative_paths(nb: nbformat.NotebookNode) -> int:
    """Replace this machine's repository path in text outputs by the relative one; returns replacements."""
    count = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for key, value in list(out.get("data", {}).items()) + [("text", out.get("text"))]:
                if not isinstance(value, str) or str(ROOT) not in value:
                    continue
                count += value.count(str(ROOT))
                fixed = value.replace(str(ROOT) + "/", "").replace(str(ROOT), ".")
                if key == "text":
                    out["text"] = fixed
                else:
                    out["data"][key] = fixed
    return count


def compact_png(b64: str) -> str:
    """A base64 PNG re-encoded with a 256-colour palette when that is smaller, else unchanged."""
    raw = base64.b64decode(b64)
    out = io.BytesIO()
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode() + "\n" if out.tell() < len(raw) else b64


def compact_figures(node) -> None:
    """Every ``image/png`` under ``node`` (cell outputs and widget state) through :func:`compact_png`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image/png" and isinstance(value, str):
                node[key] = compact_png(value)
            else:
                compact_figures(value)
    elif isinstance(node, list):
        for value in node:
            compact_figures(value)


def cell_seconds(nb: nbformat.NotebookNode) -> float:
    """Sum over code cells of the kernel's execution time (``iopub.execute_input`` to ``status.idle``)."""
    total = 0.0
    for cell in nb.cells:
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in stamps and "iopub.status.idle" in stamps:
            start, end = (datetime.datetime.fromisoformat(stamps[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "iopub.status.idle"))
            total += (end - start).total_seconds()
    return total


def run(path: Path, timeout: float) -> tuple[float, float]:
    """Execute ``path`` in place; returns ``(cells_s, harness_s)``."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    harness = time.perf_counter() - start
    relative_paths(nb)
    compact_figures(nb)
    nbformat.write(nb, path)
    return cell_seconds(nb), harness


def main() -> int:
    os.environ["TQDM_DISABLE"] = "1"  # no progress bars in the stored outputs (the kernels inherit it)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="notebook name prefixes (default: all six, in order)")
    p.add_argument("--times", type=Path, required=True, help="CSV to append one timing row per notebook to")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds per cell (also how long nbclient waits after a widget cell)")
    a = p.parse_args()
    chosen = [nb for nb in NOTEBOOKS if not a.names or any(nb.name.startswith(n) for n in a.names)]
    rows = pd.read_csv(a.times).to_dict("records") if a.times.exists() else []
    for path in chosen:
        load_before = os.getloadavg()[0]
        cells, harness = run(path, a.timeout)
        rows.append({"notebook": path.stem, "profile": os.environ.get("KDAS_PROFILE", "course"),
                     "cells_s": round(cells, 1), "harness_s": round(harness, 1), "load_before": round(load_before, 2),
                     "load_after": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
                     "machine": platform.processor() or platform.machine(),
                     "date": time.strftime("%Y-%m-%d %H:%M")})
        write_csv_atomic(pd.DataFrame(rows), a.times)
        print(f"{path.name}: cells {cells:.0f} s (harness {harness:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
