"""Widget explorers: build, set control values as a learner would, check the state follows."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from ipywidgets import IntSlider  # noqa: E402
from test_viz import two_blobs_and_speck, write_dataset  # noqa: E402

from kdas_lab.viz import widgets as W  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_explorer_recomputes_on_value_change():
    ex = W.Explorer({"n": IntSlider(value=2, min=0, max=10)}, lambda n: {"square": n * n}, render=False)
    assert ex.state == {"square": 4} and ex.n_updates == 1
    ex.controls["n"].value = 7
    assert ex.state == {"square": 49} and ex.n_updates == 2


def test_explorer_renders_into_output(capsys):
    import matplotlib.pyplot as plt

    def draw(s):
        fig, ax = plt.subplots()
        ax.set_title(str(s["n"]))
        return [pd.DataFrame({"n": [s["n"]]}), fig]

    ex = W.Explorer({"n": IntSlider(value=1)}, lambda n: {"n": n}, draw)
    ex.controls["n"].value = 3
    assert ex.n_updates == 2 and not plt.get_fignums()  # figures closed after display


def test_image_mask_browser(tmp_path):
    write_dataset(tmp_path / "TrainDataset", {"a": np.ones((6, 6), bool), "b": two_blobs_and_speck(),
                                              "c": np.zeros((6, 6), bool)})
    write_dataset(tmp_path / "TestDataset" / "Small", {"z": np.eye(8, dtype=bool)})
    ex = W.image_mask_browser(tmp_path, render=False)
    assert ex.state["stem"] == "a" and ex.controls["index"].max == 2
    ex.controls["index"].value = 1
    assert ex.state["stem"] == "b" and ex.state["stats"]["n_polyps"] == 2
    assert ex.state["image"].shape == (20, 10, 3) and ex.state["mask"].dtype == bool
    ex.controls["dataset"].value = "Small"
    assert ex.state["dataset"] == "Small" and ex.state["stem"] == "z" and ex.controls["index"].max == 0


def _weights(mask: torch.Tensor, kernel: int, factor: float) -> torch.Tensor:
    return 1 + factor * (F.avg_pool2d(mask, kernel, stride=1, padding=kernel // 2) - mask).abs()


def test_boundary_weight_explorer():
    mask = torch.zeros(32, 32)
    mask[8:24, 8:24] = 1
    ex = W.boundary_weight_explorer([np.zeros((32, 32, 3), np.uint8)], [mask], _weights, render=False)
    # default kernel 31, factor 5; the corner pixel (8, 8) sees 256 of 31*31 = 961 foreground pixels
    assert ex.state["max_weight"] == pytest.approx(1 + 5 * (1 - 256 / 961), rel=1e-5)
    ex.controls["factor"].value = 0.0
    assert ex.state["max_weight"] == 1.0 and ex.state["boundary_frac"] == 0.0
    ex.controls["factor"].value = 5.0
    wide = ex.state["boundary_frac"]
    ex.controls["kernel_size"].value = 3
    assert ex.state["boundary_frac"] < wide  # a small kernel only sees the boundary itself


def test_attention_explorer_follows_query_and_head():
    # fake 2-stage attention on a 2x2 query grid: head h of query q attends to key (q + h) % 4
    def attention_fn(model, x):
        attn = torch.zeros(1, 2, 4, 4)
        for h in range(2):
            for q in range(4):
                attn[0, h, q, (q + h + model.shift) % 4] = 1.0
        return [(attn, (2, 2))] * 4

    models = {"teacher": torch.nn.Module(), "student": torch.nn.Module()}
    models["teacher"].shift, models["student"].shift = 0, 1
    images = [torch.zeros(3, 32, 32)]
    ex = W.attention_explorer(models, images, [np.zeros((32, 32, 3))], attention_fn, render=False)
    ex.controls["head"].value = 0
    ex.controls["query_y"].value, ex.controls["query_x"].value = 0.0, 0.0  # query 0
    assert np.argmax(ex.state["maps"]["teacher"]) == 0 and np.argmax(ex.state["maps"]["student"]) == 1
    ex.controls["query_x"].value = 0.9  # query 1
    assert np.argmax(ex.state["maps"]["teacher"]) == 1
    ex.controls["head"].value = 7  # clipped to the last head (1)
    assert np.argmax(ex.state["maps"]["teacher"]) == 2
    ex.controls["head"].value = -1  # mean over heads
    assert ex.state["maps"]["teacher"].max() == 0.5 and ex.state["heads"] == {"teacher": 2, "student": 2}


def test_attention_explorer_on_real_student():
    from kdas_lab.models import create_model, stage_attention

    torch.manual_seed(0)
    models = {"student": create_model("polyp_pvt_b0")}
    images = [torch.randn(3, 64, 64), torch.randn(3, 64, 64)]
    ex = W.attention_explorer(models, images, [np.zeros((64, 64, 3))] * 2, stage_attention, render=False)
    # PVTv2's reduction ratios 8/4/2/1 put every stage's keys on the same (S/32) grid: 2x2 at 64 px
    assert ex.state["maps"]["student"].shape == (2, 2) and ex.state["heads"]["student"] == 2  # stage 2
    first = ex.state["maps"]["student"].copy()
    ex.controls["index"].value = 1
    assert not np.allclose(first, ex.state["maps"]["student"])
    ex.controls["stage"].value = 1
    assert ex.state["maps"]["student"].shape == (2, 2) and ex.state["heads"]["student"] == 1


def _row_attention(p: torch.Tensor, t: float) -> torch.Tensor:
    return torch.softmax(p / t, dim=-1)


def test_temperature_explorer_entropy_grows_with_t():
    p = torch.arange(16.0).reshape(4, 4)
    ex = W.temperature_explorer({"teacher": p}, _row_attention, render=False)
    assert ex.state["temperature"] == 2.0
    cold = ex.state["entropy"]["teacher"]
    ex.controls["temperature"].value = 16.0
    hot = ex.state["entropy"]["teacher"]
    assert cold < hot < math.log(4)
    ex.controls["row"].value = 3
    assert ex.state["row"] == 3


def test_results_explorer_and_group_summary():
    df = pd.DataFrame({"arm": ["kd", "kd", "none", "none"], "seed": [0, 1, 0, 1],
                       "dice": [0.5, 0.7, 0.4, 0.4], "iou": [0.3, 0.5, 0.2, 0.2]})
    ex = W.results_explorer(df, render=False)
    assert ex.state["by"] == "arm" and ex.state["metric"] == "seed"
    ex.controls["metric"].value = "dice"
    t = ex.state["table"]
    assert t.loc["kd", "mean"] == pytest.approx(0.6) and t.loc["kd", "std"] == pytest.approx(math.sqrt(0.02))
    assert t.loc["none", "std"] == 0.0 and t.loc["none", "n"] == 2
    with pytest.raises(KeyError, match="nope"):
        W.group_summary(df, "arm", "nope")


def test_attention_explorer_controls_wrap_with_full_labels():
    # five sliders in one non-wrapping row left 14 px tracks at 1400 px; "head (-1=mean)" was cut off
    def attention_fn(model, x):
        return [(torch.full((1, 2, 4, 4), 0.25), (2, 2))] * 4

    ex = W.attention_explorer({"teacher": torch.nn.Module()}, [torch.zeros(3, 32, 32)], [np.zeros((32, 32, 3))],
                              attention_fn, render=False)
    row = ex.widget.children[0]
    assert row.layout.flex_flow == "row wrap" and list(row.children) == list(ex.controls.values())
    assert {c.style.description_width for c in ex.controls.values()} == {"initial"}


def test_notebook_setup_outside_the_repository(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from kdas_lab.course import setup as notebook

    monkeypatch.setitem(plt.rcParams, "figure.dpi", plt.rcParams["figure.dpi"])  # restored afterwards
    monkeypatch.setenv("KDAS_FAST", "1")
    monkeypatch.chdir(tmp_path)  # a copy of notebooks/ opened elsewhere: the editable checkout is still found
    assert notebook.notebook_setup().profile == "fast" and Path.cwd() == (notebook.project_root() or tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(notebook, "project_root", lambda: None)  # an installed package: no checkout at all
    assert notebook.notebook_setup().profile == "fast" and Path.cwd() == tmp_path


def test_paired_explorer_follows_the_study_and_pairs_by_seed():
    import pandas as pd

    from kdas_lab.viz.widgets import paired_explorer

    def runs(arms):
        return pd.DataFrame([{"arm": a, "seed": s, "dataset": "K", "metric": "meanDic", "value": v + s / 10}
                             for a, v in arms.items() for s in (0, 1)])

    ex = paired_explorer({"2 %": runs({"no_kd": 0.3, "pseudo": 0.5}), "all": runs({"no_kd": 0.6, "mix0.5": 0.62})},
                         render=False)
    assert list(ex.controls["arm"].options) == ["pseudo"]
    assert ex.state["pairs"]["diff"].round(6).tolist() == [0.2, 0.2]
    ex.controls["study"].value = "all"
    assert list(ex.controls["arm"].options) == ["mix0.5"] and ex.state["pairs"]["diff"].round(6).tolist() == [0.02] * 2
