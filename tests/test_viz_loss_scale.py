"""Loss-scale table by hand, and the plot draws one line per term and run."""
import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from kdas_lab.viz.loss_scale import plot_term_scales, term_scale_table  # noqa: E402


def _steps():
    return pd.DataFrame({"epoch": [1, 1, 2], "step": [0, 1, 2], "loss_seg": [2.0, 2.0, 1.0],
                         "loss_at": [0.0, 0.0, 0.0], "loss_sgm": [60.0, 60.0, 10.0],
                         "gradnorm_seg": [1.0, None, 0.5], "gradnorm_at": [0.0, None, 0.0],
                         "gradnorm_sgm": [4.0, None, 2.0]})


def test_term_scale_table_by_hand():
    table = term_scale_table(_steps(), alpha=0.3)
    first = table.iloc[0]
    # epoch 1: weighted seg 0.7 * 2 = 1.4, sgm 0.3 * 60 = 18 -> share of sgm 18 / 19.4
    assert first["sgm_share"] == pytest.approx(18 / 19.4) and first["seg"] == 2.0
    assert first["sgm_gradnorm"] == 4.0  # NaN rows are skipped by the mean
    assert table.iloc[1]["sgm_share"] == pytest.approx(3 / 3.7)


def test_plot_term_scales_lines():
    import matplotlib.pyplot as plt

    fig = plot_term_scales({"kdas": _steps()})
    mag, grad = fig.axes
    plt.close(fig)
    assert len(mag.lines) == 3 and len(grad.lines) == 3
