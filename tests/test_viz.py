"""Viz helpers and dataset statistics: pure functions with hand-computed values, figures' layout."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from kdas_lab.data import stats as data_stats  # noqa: E402
from kdas_lab.data.io import DataError  # noqa: E402
from kdas_lab.viz import attention_plots as ap  # noqa: E402
from kdas_lab.viz import data_plots as dp  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def write_dataset(folder, masks: dict[str, np.ndarray]) -> None:
    """``folder/images/<stem>.png`` (grey RGB) and ``folder/masks/<stem>.png`` (0/255)."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    for stem, m in masks.items():
        Image.fromarray(np.full((*m.shape, 3), 90, np.uint8)).save(folder / "images" / f"{stem}.png")
        Image.fromarray(m.astype(np.uint8) * 255).save(folder / "masks" / f"{stem}.png")


def two_blobs_and_speck() -> np.ndarray:
    m = np.zeros((20, 10), bool)
    m[0:4, 0:5] = True  # 20 px
    m[10:15, 5:9] = True  # 20 px
    m[19, 0] = True  # 1 px speck
    return m


# ----------------------------------------------------------------------------- data_stats
def test_mask_stats_hand_computed():
    s = data_stats.mask_stats(two_blobs_and_speck())
    assert s == {"height": 20, "width": 10, "area": 41 / 200, "n_polyps": 2, "n_specks": 1, "largest": 20 / 200}


@pytest.mark.parametrize("mask, n", [
    (np.zeros((4, 4), np.uint8), 0),
    (np.eye(12, dtype=np.uint8) * 255, 1),  # diagonal pixels touch (8-connectivity)
    (np.ones((5, 5), bool), 1),
])
def test_mask_stats_counts(mask, n):
    assert data_stats.mask_stats(mask)["n_polyps"] == n


def test_mask_stats_rejects_3d():
    with pytest.raises(ValueError, match="2-D"):
        data_stats.mask_stats(np.zeros((2, 2, 3)))


def test_folder_and_dataset_stats(tmp_path):
    full = np.ones((8, 6), bool)
    write_dataset(tmp_path / "TrainDataset", {"a": two_blobs_and_speck(), "b": full})
    write_dataset(tmp_path / "TestDataset" / "Tiny", {"c": np.zeros((8, 8), bool)})
    df = data_stats.dataset_stats(tmp_path)
    assert list(df["dataset"]) == ["TrainDataset", "TrainDataset", "Tiny"]
    assert list(df["stem"]) == ["a", "b", "c"]
    assert df["area"].tolist() == [41 / 200, 1.0, 0.0]
    summary = data_stats.summarise_stats(df)
    assert summary.loc["TrainDataset", "images"] == 2
    assert summary.loc["TrainDataset", "area_mean"] == pytest.approx((41 / 200 + 1) / 2)
    assert summary.loc["TrainDataset", "multi_polyp_frac"] == 0.5
    assert summary.loc["TrainDataset", "sizes"] == 2
    assert summary.loc["Tiny", "empty_masks"] == 1
    assert summary.loc["Tiny", "common_size"] == "8x8"


def test_unpaired_files_are_an_error(tmp_path):
    write_dataset(tmp_path / "set", {"a": np.ones((4, 4), bool)})
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "set" / "images" / "lonely.png")
    with pytest.raises(DataError, match="lonely"):
        data_stats.folder_stats(tmp_path / "set")
    with pytest.raises(DataError, match="PraNet"):
        data_stats.dataset_stats(tmp_path / "set" / "images")


# ----------------------------------------------------------------------------- attention indexing
@pytest.mark.parametrize("hw, nk, grid", [((16, 16), 4, (2, 2)), ((8, 8), 16, (4, 4)), ((2, 2), 4, (2, 2)),
                                          ((11, 11), 1, (1, 1)), ((88, 88), 121, (11, 11)), ((8, 4), 2, (2, 1))])
def test_key_grid(hw, nk, grid):
    assert ap.key_grid(hw, nk) == grid


def test_key_grid_error():
    with pytest.raises(ValueError, match="cannot place 3 keys"):
        ap.key_grid((4, 4), 3)


@pytest.mark.parametrize("q, idx", [((0, 0), 0), ((1, 1), 15), ((0.5, 0.5), 10), ((0.0, 0.99), 3)])
def test_query_index(q, idx):
    assert ap.query_index(q, (4, 4)) == idx


def test_query_attention_selects_row_and_head():
    attn = torch.zeros(1, 2, 4, 4)  # 2x2 queries, 2x2 keys
    attn[0, 0, 3] = torch.tensor([1.0, 0, 0, 0])  # head 0, query (1, 1) looks at key (0, 0)
    attn[0, 1, 3] = torch.tensor([0, 0, 0, 1.0])  # head 1 looks at key (1, 1)
    q = (0.9, 0.9)
    np.testing.assert_array_equal(ap.query_attention(attn, q, (2, 2), head=0), [[1, 0], [0, 0]])
    np.testing.assert_array_equal(ap.query_attention(attn, q, (2, 2)), [[0.5, 0], [0, 0.5]])
    with pytest.raises(ValueError, match="head 2 out of range"):
        ap.query_attention(attn, q, (2, 2), head=2)
    with pytest.raises(ValueError, match="queries"):
        ap.query_attention(attn, q, (3, 3))


def test_row_entropy():
    assert ap.row_entropy(torch.full((3, 4), 0.25)) == pytest.approx(math.log(4))
    assert ap.row_entropy(torch.eye(4)) == pytest.approx(0.0, abs=1e-9)


# ----------------------------------------------------------------------------- figures
def _n_axes(fig) -> int:
    n = len(fig.axes)
    plt.close(fig)
    return n


def test_figures_have_expected_panels():
    img = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:10, 4:10] = True
    assert _n_axes(dp.plot_pairs([img] * 5, [mask] * 5, [str(i) for i in range(5)])) == 3 * 2 * 2  # 2 pairs a row
    assert _n_axes(dp.plot_boundary_weights(img, mask, np.ones((16, 16)))) == 4  # + colorbar
    assert _n_axes(dp.plot_gallery([img] * 2, [mask] * 2, [mask * 0.9] * 2, ["a", "b"])) == 6
    df = pd.DataFrame({"dataset": ["A", "A", "B"], "area": [0.1, 0.2, 0.3], "n_polyps": [1, 2, 1],
                       "height": [10, 10, 20], "width": [10, 12, 20]})
    assert _n_axes(dp.plot_dataset_stats(df)) == 3
    assert _n_axes(ap.plot_query_attention(img, {"t": np.ones((2, 2)), "s": np.ones((4, 4))}, (0.5, 0.5))) == 4  # + bar
    assert _n_axes(ap.plot_matrices({"a": torch.eye(4), "b": np.eye(4)})) == 4
    assert _n_axes(ap.plot_temperatures({1.0: torch.eye(4), 2.0: torch.full((4, 4), 0.25)}, row=1)) == 3
    assert _n_axes(ap.plot_symmetrised({"teacher": torch.rand(1, 1, 4, 4), "student": torch.rand(4, 4)})) == 6


def test_plot_errors():
    with pytest.raises(ValueError, match="as many masks"):
        dp.plot_pairs([np.zeros((4, 4, 3))], [])
    with pytest.raises(ValueError, match="square"):
        ap.plot_symmetrised({"x": torch.zeros(3, 4)})
    plt.close("all")


def test_polyp_count_bars_in_increasing_order():
    df = pd.DataFrame({"dataset": ["A"] * 4, "area": [0.1] * 4, "n_polyps": [2, 0, 1, 2],
                       "height": [8] * 4, "width": [8] * 4})
    fig = dp.plot_dataset_stats(df)
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    heights = [p.get_height() for p in fig.axes[1].patches]
    plt.close(fig)
    assert labels == ["0", "1", "2"] and heights == [0.25, 0.25, 0.5]


def test_notebook_figures_fit_a_column():
    """Every figure the notebooks draw is at most MAX_WIDTH inches wide; wide ones wrap into rows."""
    from kdas_lab.ablation import plot_arms
    from kdas_lab.viz.layout import MAX_WIDTH, fit_width, grid, panel_size

    img = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), bool)
    df = pd.DataFrame({"dataset": ["A"], "area": [0.1], "n_polyps": [1], "height": [10], "width": [10]})
    q = ap.plot_query_attention(img, {"t": np.full((2, 2), 0.25), "s": np.full((4, 4), 1 / 16)}, (0.5, 0.5))
    assert q.axes[-1].get_ylabel() == "attention weight of a key"  # the colour bar says what it shows
    temps = ap.plot_temperatures({t: torch.full((4, 4), 0.25) for t in (0.5, 1.0, 2.0, 4.0)}, row=1)
    assert len([ax for ax in temps.axes if ax.get_visible() and ax.has_data()]) == 5  # 4 matrices + the curves
    for fig in (dp.plot_pairs([img] * 4, [mask] * 4), dp.plot_dataset_stats(df), q, temps):
        assert fig.get_size_inches()[0] <= MAX_WIDTH + 1e-9
        plt.close(fig)
    assert grid(5, 2.6) == (2, 3) and grid(2, 11.0) == (2, 1) and panel_size(5, 2.2, extra=1.2) < 2.2
    summary = pd.DataFrame([{"arm": a, "dataset": d, "metric": "meanDic", "mean": 0.5, "std": 0.01, "diff": 0.0,
                             "diff_ci_low": -0.01, "diff_ci_high": 0.01}
                            for a in [f"arm{i}" for i in range(10)] for d in ("K", "C")])
    fig = plot_arms(summary)
    assert fig.get_size_inches()[0] > MAX_WIDTH  # 22 in as kdas_lab.ablation draws it
    panels = list(fig.axes)
    fit_width(fig)
    width, height = fig.get_size_inches()
    assert width <= MAX_WIDTH and height > 3.6 and fig.axes == panels  # the same panels, one above the other
    assert panels[0].get_subplotspec().rowspan.start == 0 and panels[1].get_subplotspec().rowspan.start == 1


def test_one_home_for_colours_and_array_helpers():
    from kdas_lab.viz import arrays, colors, data_plots, overlays

    assert overlays.PRED_COLOR is colors.PRED_COLOR and data_plots.PRED_COLOR is colors.PRED_COLOR
    assert colors.mpl(colors.PRED_COLOR) == "#ff4000" and colors.mpl(colors.MASK_COLOR) == "#39ff14"
    assert arrays.as_map(np.zeros((1, 1, 3, 4))).shape == (3, 4)


def test_info_table_lives_in_runtime_and_the_cli_reexports_it():
    from kdas_lab import runtime
    from kdas_lab.cli import info

    assert info.info_table is runtime.info_table
