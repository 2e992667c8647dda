"""Notebook explorers: ipywidgets controls around pure functions.

Every explorer is an :class:`Explorer`: ``controls`` (name -> widget), a pure ``compute(**values)``
that returns a ``state`` dict, and a ``draw(state)`` that returns what to show (a figure, a table or a
list of them). Changing any control's ``.value`` recomputes ``state`` and redraws, so tests drive an
explorer exactly as a learner does: set ``explorer.controls["index"].value = 3`` and read
``explorer.state``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import clear_output, display

from kdas_lab.ablation.stats import paired_seeds
from kdas_lab.data import load_image, load_mask
from kdas_lab.data.layout import dataset_folders, find_pairs
from kdas_lab.data.stats import mask_stats
from kdas_lab.viz import attention_plots, data_plots
from kdas_lab.viz.arrays import as_map
from kdas_lab.viz.layout import panel_size


class Explorer:
    """Controls + pure compute + draw. ``render=False`` skips drawing (tests, batch use)."""

    def __init__(self, controls: Mapping[str, widgets.ValueWidget], compute: Callable[..., dict],
                 draw: Callable[[dict], Any] | None = None, render: bool = True):
        self.controls = dict(controls)
        self.compute, self.draw, self.render = compute, draw, render
        self.output = widgets.Output()
        self.state: dict[str, Any] = {}
        self.n_updates = 0
        row = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([row, self.output])
        for c in self.controls.values():
            c.observe(self.update, names="value")
        self.update()

    def values(self) -> dict[str, Any]:
        return {k: c.value for k, c in self.controls.items()}

    def update(self, change: Any = None) -> None:
        self.state = self.compute(**self.values())
        self.n_updates += 1
        if self.render and self.draw is not None:
            with self.output:
                clear_output(wait=True)
                self.show()

    def show(self) -> None:
        """Display the current state's figure(s)/tables (also usable outside the widget)."""
        shown = self.draw(self.state) if self.draw else None
        for item in shown if isinstance(shown, (list, tuple)) else [shown]:
            if item is None:
                continue
            display(item)
            if isinstance(item, plt.Figure):
                plt.close(item)

    def _ipython_display_(self) -> None:
        display(self.widget)


# A label as wide as its text ("head (-1=mean)" is cut off at the default fixed width).
FULL_LABEL = {"description_width": "initial"}


def _slider(n: int, description: str = "index") -> widgets.IntSlider:
    return widgets.IntSlider(value=0, min=0, max=max(n - 1, 0), description=description,
                             continuous_update=False, style=FULL_LABEL)


# ----------------------------------------------------------------------------- data browser
def image_mask_browser(root: str | Path, render: bool = True) -> Explorer:
    """Browse image/mask pairs of every dataset under a PraNet-layout ``root``."""

    folders = dataset_folders(root)
    pairs: dict[str, list] = {}
    dataset = widgets.Dropdown(options=list(folders), description="dataset")
    index = _slider(1)

    def compute(dataset: str, index: int, contour: bool) -> dict:
        if dataset not in pairs:
            pairs[dataset] = find_pairs(folders[dataset])
        items = pairs[dataset]
        index = min(index, len(items) - 1)
        stem, image_path, mask_path = items[index]
        image, mask = load_image(image_path), load_mask(mask_path)
        return {"dataset": dataset, "index": index, "n": len(items), "stem": stem, "image": image,
                "mask": mask, "stats": mask_stats(mask), "contour": contour}

    def draw(s: dict):
        st = s["stats"]
        title = f"{s['dataset']}/{s['stem']} {st['width']}x{st['height']}, area {st['area']:.1%}"
        fig, axes = plt.subplots(1, 2, figsize=(6, 3))
        data_plots.show_pair(axes, s["image"], s["mask"], title, contour=s["contour"])
        fig.tight_layout()
        return fig

    contour = widgets.Checkbox(value=True, description="contour")
    explorer = Explorer({"dataset": dataset, "index": index, "contour": contour}, compute, draw, render)

    def on_dataset(change: Any) -> None:  # the slider range follows the dataset
        index.max = max(explorer.state["n"] - 1, 0)

    dataset.observe(on_dataset, names="value")
    on_dataset(None)
    return explorer


# ----------------------------------------------------------------------------- structure loss weights
def boundary_weight_explorer(images: Sequence, masks: Sequence[torch.Tensor],
                             weight_fn: Callable[[torch.Tensor, int, float], torch.Tensor],
                             render: bool = True) -> Explorer:
    """Structure-loss weights ``w = 1 + factor * |avgpool_k(G) - G|`` over images, kernel and factor.

    ``weight_fn(mask (1, 1, H, W), kernel_size, factor) -> (1, 1, H, W)`` is the loss's pure function.
    """
    if len(images) != len(masks) or not images:
        raise ValueError("need the same non-zero number of images and masks")

    def compute(index: int, kernel_size: int, factor: float) -> dict:
        mask = torch.as_tensor(masks[index], dtype=torch.float32).reshape(1, 1, *np.shape(masks[index])[-2:])
        w = weight_fn(mask, kernel_size, factor)  # (1, 1, H, W)
        return {"index": index, "mask": mask[0, 0], "weights": w[0, 0].detach(),
                "max_weight": float(w.max()), "boundary_frac": float((w > 1.5).float().mean())}

    def draw(s: dict):
        return data_plots.plot_boundary_weights(images[s["index"]], s["mask"], s["weights"],
                                                f"boundary share {s['boundary_frac']:.1%}")

    controls = {
        "index": _slider(len(images)),
        "kernel_size": widgets.IntSlider(value=31, min=3, max=63, step=2, description="kernel",
                                         continuous_update=False),
        "factor": widgets.FloatSlider(value=5.0, min=0.0, max=10.0, step=0.5, description="factor",
                                      continuous_update=False),
    }
    return Explorer(controls, compute, draw, render)


# ----------------------------------------------------------------------------- PVT attention
AttentionFn = Callable[[torch.nn.Module, torch.Tensor], Sequence[tuple[torch.Tensor, tuple[int, int]]]]


def attention_explorer(models: Mapping[str, torch.nn.Module], images: Sequence[torch.Tensor],
                       display_images: Sequence, attention_fn: AttentionFn,
                       render: bool = True) -> Explorer:
    """Teacher vs student self-attention for one image, stage, head and query point.

    ``attention_fn(model, x (1, 3, S, S))`` returns per stage ``(attn (1, heads, N, Nk), (H, W))``
    (the last block of each stage); results are cached per (model, image).
    """
    cache: dict[tuple[str, int], Sequence] = {}

    def maps_for(name: str, index: int):
        if (name, index) not in cache:
            cache[(name, index)] = attention_fn(models[name], images[index].unsqueeze(0))
        return cache[(name, index)]

    def compute(index: int, stage: int, head: int, query_y: float, query_x: float) -> dict:
        maps, heads = {}, {}
        for name in models:
            attn, hw = maps_for(name, index)[stage - 1]
            heads[name] = attn.shape[1]
            h = None if head < 0 else min(head, attn.shape[1] - 1)
            maps[name] = attention_plots.query_attention(attn, (query_y, query_x), hw, head=h)
        return {"index": index, "stage": stage, "head": head, "query": (query_y, query_x),
                "maps": maps, "heads": heads}

    def draw(s: dict):
        head = "mean of heads" if s["head"] < 0 else f"head {s['head']}"
        return attention_plots.plot_query_attention(display_images[s["index"]], s["maps"], s["query"],
                                                    f"stage {s['stage']}, {head}")

    controls = {
        "index": _slider(len(images), "image"),
        "stage": widgets.IntSlider(value=2, min=1, max=4, description="stage", continuous_update=False,
                                   style=FULL_LABEL),
        "head": widgets.IntSlider(value=-1, min=-1, max=7, description="head (-1=mean)",
                                  continuous_update=False, style=FULL_LABEL),
        "query_y": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="query y",
                                       continuous_update=False, style=FULL_LABEL),
        "query_x": widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="query x",
                                       continuous_update=False, style=FULL_LABEL),
    }
    return Explorer(controls, compute, draw, render)


# ----------------------------------------------------------------------------- KDAS temperature
def temperature_explorer(maps: Mapping[str, torch.Tensor],
                         attention_fn: Callable[[torch.Tensor, float], torch.Tensor],
                         render: bool = True) -> Explorer:
    """KDAS attention over prediction rows for named ``(S, S)`` maps at a chosen temperature.

    ``attention_fn(map (S, S), T) -> (S, S)`` row-stochastic attention (the loss's pure function).
    """
    size = next(iter(maps.values())).shape[-1]

    def compute(temperature: float, row: int) -> dict:
        attn = {name: attention_fn(m, temperature).detach() for name, m in maps.items()}
        return {"temperature": temperature, "row": min(row, size - 1), "attention": attn,
                "entropy": {n: attention_plots.row_entropy(a) for n, a in attn.items()}}

    def draw(s: dict):
        side = panel_size(2 * len(maps) + 1, 2.6)
        fig, axes = plt.subplots(1, len(maps) * 2 + 1, figsize=(side * (2 * len(maps) + 1), side))
        for i, (name, m) in enumerate(maps.items()):
            axes[2 * i].imshow(as_map(m), cmap="gray")
            axes[2 * i].axhline(s["row"], color="r", lw=0.8)
            axes[2 * i].set_title(f"{name}: map", fontsize=9)
            a = s["attention"][name].float().cpu().numpy()
            axes[2 * i + 1].imshow(a, cmap="viridis")
            axes[2 * i + 1].set_title(f"{name}: attention, H={s['entropy'][name]:.2f}", fontsize=9)
            axes[-1].plot(a[s["row"]], label=name)
        for ax in axes[:-1]:
            ax.set_axis_off()
        axes[-1].set(title=f"row {s['row']}, T = {s['temperature']:g}", xlabel="column")
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        return fig

    controls = {
        "temperature": widgets.FloatLogSlider(value=2.0, base=2, min=-2, max=4, step=0.25,
                                              description="T", continuous_update=False),
        "row": _slider(size, "row"),
    }
    return Explorer(controls, compute, draw, render)


# ----------------------------------------------------------------------------- results
def group_summary(df: pd.DataFrame, by: str, metric: str) -> pd.DataFrame:
    """``mean``, ``std`` (sample, 0 for one run) and ``n`` of ``metric`` per value of ``by``."""
    if metric not in df.columns or by not in df.columns:
        raise KeyError(f"columns {by!r} / {metric!r} not in the table (have {list(df.columns)})")
    g = df.groupby(by, sort=False)[metric]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.size()})
    return out


def results_explorer(df: pd.DataFrame, render: bool = True) -> Explorer:
    """Pick a grouping column and a metric; see mean +- std as a table and a bar plot. With a
    ``dataset`` column, one test set at a time (grouping by anything else never pools test sets)."""
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    groups = [c for c in df.columns if c not in numeric] or list(df.columns)
    if not numeric:
        raise ValueError("the results table has no numeric column to summarise")
    datasets = list(dict.fromkeys(df["dataset"])) if "dataset" in df.columns else []

    def compute(by: str, metric: str, dataset: str | None = None) -> dict:
        rows = df if dataset is None or by == "dataset" else df[df["dataset"] == dataset]
        return {"by": by, "metric": metric, "dataset": dataset, "table": group_summary(rows, by, metric)}

    def draw(s: dict):
        t = s["table"]
        fig, ax = plt.subplots(figsize=(max(3.0, 0.6 * len(t) + 1.5), 2.8))
        ax.bar(range(len(t)), t["mean"], yerr=t["std"], capsize=3, color="#4c72b0")
        ax.set_xticks(range(len(t)), [str(i) for i in t.index], rotation=30, ha="right", fontsize=8)
        where = f", {s['dataset']}" if s["dataset"] is not None and s["by"] != "dataset" else ""
        ax.set(ylabel=s["metric"], title=f"{s['metric']} by {s['by']}{where} (mean +- std)")
        fig.tight_layout()
        return [t.style.format("{:.4f}", subset=["mean", "std"]), fig]

    controls = {
        "by": widgets.Dropdown(options=groups, description="group by"),
        "metric": widgets.Dropdown(options=numeric, description="metric"),
    }
    if datasets:
        controls["dataset"] = widgets.Dropdown(options=datasets, description="test set")
    return Explorer(controls, compute, draw, render)


def paired_explorer(studies: Mapping[str, pd.DataFrame], baseline: str = "no_kd", render: bool = True) -> Explorer:
    """Pick a study (its tidy runs) and an arm: every seed's value beside the baseline's of the same seed,
    per test set, and their difference (:func:`~kdas_lab.ablation.stats.paired_seeds`)."""

    def arms_of(study: str) -> list[str]:
        return [a for a in dict.fromkeys(studies[study]["arm"]) if a != baseline]

    study = widgets.Dropdown(options=list(studies), description="study")
    arm = widgets.Dropdown(options=arms_of(study.value), description="arm")

    def compute(study: str, arm: str) -> dict:
        return {"pairs": paired_seeds(studies[study], arm, baseline) if arm in arms_of(study) else None}

    explorer = Explorer({"study": study, "arm": arm}, compute,
                        lambda s: None if s["pairs"] is None else s["pairs"].round(3), render)
    study.observe(lambda change: setattr(arm, "options", arms_of(change["new"])), names="value")
    return explorer
