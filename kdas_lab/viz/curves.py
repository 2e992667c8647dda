"""Training curves from history DataFrames (``history.csv`` of :mod:`kdas_lab.train`)."""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import pandas as pd

from kdas_lab.atomic import save_figure


def plot_curves(histories: dict[str, pd.DataFrame], path: str | os.PathLike | None = None,
                steps: dict[str, pd.DataFrame] | None = None):
    """Left: training loss (per step if ``steps`` is given, else epoch means); right: validation mean Dice.

    ``histories[name]`` needs columns ``epoch``, ``loss_total``, ``val_meanDic``.
    """
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, hist in histories.items():
        missing = {"epoch", "loss_total", "val_meanDic"} - set(hist.columns)
        if missing:
            raise ValueError(f"plot_curves: history of {name!r} lacks columns {sorted(missing)}")
        if steps is not None and name in steps and len(steps[name]):
            s = steps[name]
            ax_loss.plot(s["step"], s["loss_total"], label=name, alpha=0.8)
            ax_loss.set_xlabel("optimizer step")
        else:
            ax_loss.plot(hist["epoch"], hist["loss_total"], marker="o", label=name)
            ax_loss.set_xlabel("epoch")
        ax_val.plot(hist["epoch"], hist["val_meanDic"], marker="o", label=name)
    ax_loss.set_ylabel("training loss (total)")
    ax_loss.set_title("training loss")
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("validation mean Dice")
    ax_val.set_title("validation (held-out TrainDataset split)")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
