"""How big each loss term is, and how hard it pulls: from the trainer's ``steps.csv``.

``term_scale_table`` summarises, per training epoch, the unweighted terms (``loss_seg``,
``loss_at``, ``loss_sgm``), their weighted share of the total and the gradient norm of each
weighted term (``gradnorm_*``, logged every ``log_term_grads_every`` steps); ``plot_term_scales``
draws magnitudes and gradient norms against the optimizer step.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

TERMS = ("seg", "at", "sgm")


def term_scale_table(steps: pd.DataFrame, alpha: float, weights: dict[str, float] | None = None) -> pd.DataFrame:
    """Per epoch: mean unweighted term, its share of the weighted total, mean gradient norm.

    ``total = (1 - alpha) seg + alpha * (w_at at + w_sgm sgm)``; ``weights`` defaults to 1 for both."""
    weights = weights or {}
    w = {"seg": 1.0 - alpha, "at": alpha * weights.get("at", 1.0), "sgm": alpha * weights.get("sgm", 1.0)}
    terms = [t for t in TERMS if f"loss_{t}" in steps.columns]
    weighted = pd.DataFrame({t: w[t] * steps[f"loss_{t}"] for t in terms})  # (steps, terms)
    share = weighted.div(weighted.sum(axis=1), axis=0)
    out = pd.DataFrame({"epoch": steps["epoch"]})
    for t in terms:
        out[f"{t}"] = steps[f"loss_{t}"]
        out[f"{t}_share"] = share[t]
        if f"gradnorm_{t}" in steps.columns:
            out[f"{t}_gradnorm"] = steps[f"gradnorm_{t}"]
    return out.groupby("epoch").mean().reset_index()


def plot_term_scales(runs: dict[str, pd.DataFrame]):
    """Left: unweighted terms per step (log scale); right: gradient norm of each weighted term."""
    fig, (ax_mag, ax_grad) = plt.subplots(1, 2, figsize=(10, 3.6))
    styles = {"seg": "-", "at": ":", "sgm": "--"}
    for i, (name, steps) in enumerate(runs.items()):
        colour = f"C{i}"
        for t in TERMS:
            if f"loss_{t}" in steps.columns:
                ax_mag.plot(steps["step"], steps[f"loss_{t}"], styles[t], color=colour, label=f"{name}: {t}", lw=1)
            if f"gradnorm_{t}" in steps.columns:
                g = steps.dropna(subset=[f"gradnorm_{t}"])
                ax_grad.plot(g["step"], g[f"gradnorm_{t}"], styles[t], color=colour, marker=".", label=f"{name}: {t}")
    ax_mag.set_yscale("log")
    ax_mag.set_title("loss terms (unweighted)")
    ax_grad.set_yscale("log")
    ax_grad.set_title("gradient norm of each weighted term")
    for ax in (ax_mag, ax_grad):
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
