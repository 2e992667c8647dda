"""Free-logit fits of the KDAS terms (kdas_lab.course.term_fit): what L_AT and L_SGM see and ignore."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kdas_lab.course import term_fit as tf  # noqa: E402
from kdas_lab.losses.row_attention import row_attention  # noqa: E402
from kdas_lab.viz import row_maps as rm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
S = 24


def _mask() -> torch.Tensor:
    """An off-centre ellipse: not symmetric about the diagonal, so P_t has an antisymmetric part."""
    y, x = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij")
    return (((y - 7) / 5) ** 2 + ((x - 14) / 8) ** 2 <= 1).float()


def _teacher() -> torch.Tensor:
    """A smooth, non-binary teacher map (logits in about [-3, 3])."""
    gen = torch.Generator().manual_seed(1)
    return 6 * (_mask() - 0.5) + 0.3 * torch.randn(S, S, generator=gen)


def _antisym(seed: int = 2) -> torch.Tensor:
    e = torch.randn(S, S, generator=torch.Generator().manual_seed(seed))
    return e - e.T


def test_sym_antisym_split():
    e = torch.randn(S, S, generator=torch.Generator().manual_seed(0))
    sym, anti = tf.sym_antisym(e)
    assert torch.allclose(sym + anti, e, atol=1e-6) and torch.equal(sym, sym.T) and torch.equal(anti, -anti.T)


def test_sgm_only_from_teacher_plus_antisymmetric_error_stays_put():
    p_t, e = _teacher().double(), _antisym().double()  # float64: P_t + E - E^T rounds to below 1e-15
    start = p_t + e
    assert float(tf.sgm_term(start, p_t)) < 1e-10  # L_SGM is already 0
    fitted, hist = tf.fit_free_logits(p_t, at_weight=0.0, sgm_weight=1.0, init=start, steps=50)
    assert hist["L_SGM"].max() < 1e-10  # and stays 0
    assert torch.allclose(fitted, start, atol=1e-6)  # zero gradient: Adam does not move
    assert torch.allclose(tf.sym_antisym(fitted - p_t)[1], e, atol=1e-6)  # the error E is untouched


def test_sgm_only_never_moves_the_antisymmetric_part():
    p_t = _teacher()
    init = torch.randn(S, S, generator=torch.Generator().manual_seed(3))
    fitted, hist = tf.fit_free_logits(p_t, at_weight=0.0, sgm_weight=1.0, init=init, steps=200, lr=0.1)
    assert hist["L_SGM"].iloc[-1] < 1e-4 * hist["L_SGM"].iloc[0]  # the symmetric part is learned
    assert torch.allclose(tf.sym_antisym(fitted)[1], tf.sym_antisym(init)[1], atol=1e-5)
    assert torch.allclose(tf.sym_antisym(fitted)[0], tf.sym_antisym(p_t)[0], atol=1e-2)


def test_both_terms_close_the_dice_gap():
    p_t = rm.ideal_teacher(_mask(), 8.0)
    start = tf.fit_free_logits(p_t, steps=0)[0]
    fitted, hist = tf.fit_free_logits(p_t, at_weight=1.0, sgm_weight=1.0, steps=300)
    before, after = tf.positive_dice(start, p_t), tf.positive_dice(fitted, p_t)
    assert before < 0.5 and after > 0.95
    assert hist["Dice vs teacher"].iloc[0] == pytest.approx(before)
    # L_SGM alone leaves the pixels where the mask and its mirror disagree at the init's antisymmetric noise
    sgm_only = tf.fit_free_logits(p_t, at_weight=0.0, sgm_weight=1.0, steps=300)[0]
    disagree = _mask() != _mask().T
    assert sgm_only[disagree].abs().max() < 1.0 < float(p_t.abs().min())


def test_invariances_stated_in_notebook_03():
    for p in (_teacher(), rm.ideal_teacher(_mask(), 8.0)):
        table = tf.invariance_table(p, temperature=2.0)
        assert table.loc["P + E, E antisymmetric", "L_SGM"] < 1e-8
        assert table.loc["P^T (transpose)", "L_SGM"] < 1e-8
        assert table.loc["A(P) + c per row (after attention)", "L_AT"] < 1e-5
        assert table.loc["P + E, E antisymmetric", "L_AT"] > 1e-2  # L_AT sees the antisymmetric part
        assert table.loc["P^T (transpose)", "L_AT"] > 1e-2
        assert table.loc["P + 1 (whole map)", "L_SGM"] == pytest.approx(4.0, rel=1e-5)  # (1 + 1)^2
        assert table.loc["P + c, one constant per row", "L_SGM"] > 0.5
    # constants added to P reach A(P) as per-row constants (row-stochastic weights) plus a change of weights
    p, c = _teacher(), torch.randn(S, 1, generator=torch.Generator().manual_seed(4))
    w = rm.row_weights(p + c)
    assert torch.allclose(row_attention((p + c)[None, None])[0, 0], w @ p + w @ c, atol=1e-4)


def test_high_temperature_limit():
    p_s = torch.randn(S, S, generator=torch.Generator().manual_seed(5))
    at, limit = tf.high_temperature_limit(p_s, _teacher(), temperature=1e3)
    assert at == pytest.approx(limit, rel=1e-2)


def test_entropy_and_stripes():
    ideal = rm.ideal_teacher(_mask(), 8.0)
    table = rm.entropy_table({"ideal": ideal}, (0.5, 1.0, 2.0, 4.0), rows=_mask().sum(1) > 0)
    assert table["ideal: all rows"].is_monotonic_increasing
    assert table["ideal: polyp rows"].iloc[0] < table["ideal: all rows"].iloc[0]
    weak = rm.stripe_stats(0.03 * _teacher())  # small logits: near-uniform weights, every row of A alike
    assert weak["max_weight"] < 2 * weak["uniform_weight"] and weak["std_down_columns"] < weak["std_along_rows"] / 5
    strong = rm.stripe_stats(ideal)  # identical background rows: one attended row for all of them
    assert strong["max_weight"] > 5 * strong["uniform_weight"]
    assert strong["distinct_rows_A"] <= strong["distinct_rows_P"]


def test_distillation_table_and_figure():
    p_t = _teacher()
    table = tf.distillation_table({"teacher": p_t, "student": p_t + _antisym()}, "teacher", _mask())
    assert table.loc["teacher", "L_AT to teacher"] == pytest.approx(0.0, abs=1e-6)
    assert table.loc["teacher", "Dice vs teacher"] == 1.0 and table.loc["student", "L_SGM to teacher"] < 1e-8
    fig = tf.plot_distillation({"teacher": p_t, "student": p_t.T}, mask=_mask())
    assert len(fig.axes) == 2 * 3 * 2  # 6 panels + 6 colour bars
    plt.close(fig)


def test_explorer_redraws_headless():
    p_t, mask = rm.ideal_teacher(_mask(), 8.0), _mask()
    ex = tf.term_fit_explorer({"ideal": p_t, "smooth": _teacher()}, mask, steps=40, render=False)
    assert ex.state["terms"] == "both" and ex.state["fitted"].shape == (S, S) and ex.n_updates == 1
    state = ex.redraw(terms="L_SGM only")
    assert state["terms"] == "L_SGM only" and state["rms_sym"] < state["rms_antisym"]
    state = ex.redraw(alpha=0.5, temperature=4.0, target="smooth")
    assert ex.n_updates == 5 and state["temperature"] == 4.0 and state["target"] == "smooth"
    assert "seg" in state["history"] and {"L_AT", "L_SGM", "Dice vs teacher", "Dice vs mask"} <= set(state)
    fig = tf.plot_fit(state)
    plt.close(fig)
    shown = tf.term_fit_explorer({"ideal": p_t}, mask, steps=5, render=True)
    shown.redraw(terms="L_AT only")
    assert shown.n_updates == 2 and not plt.get_fignums()  # figures closed after display


def test_fit_rejects_bad_maps():
    with pytest.raises(ValueError, match="square"):
        tf.fit_free_logits(torch.zeros(4, 5), steps=1)
    with pytest.raises(ValueError, match="init"):
        tf.fit_free_logits(torch.zeros(4, 4), init=torch.zeros(3, 3), steps=1)
    with pytest.raises(ValueError, match="terms"):
        tf.fit_state(torch.zeros(4, 4), terms="neither")
