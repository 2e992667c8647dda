"""What each KDAS term transfers: fit a free logit map to a teacher's map, term by term.

No network: the "student" is a learnable ``S x S`` tensor of logits, fitted with Adam to a teacher's
``P1`` map (or to an *ideal teacher*, ``+m`` inside the mask and ``-m`` outside) under

    L = alpha * (at_weight * L_AT + sgm_weight * L_SGM) + (1 - alpha) * seg(P, mask)

with the loss module's own pure functions (``at_term``, ``row_attention``, ``sgm_loss``,
``structure_loss``), so what the fitted map looks like is what the terms can transfer:

* ``L_AT = T^2 * row_kl(A(P_s), A(P_t), T)`` compares the rows of ``A(P) = softmax(P P^T / sqrt(S)) P``
  as distributions ``softmax(A / T)`` over the columns: adding any constant to a row of ``A(P_s)``
  leaves it unchanged (see :func:`invariance_table` for what is and is not invariant, measured);
* ``L_SGM = MSE(P_s + P_s^T, P_t + P_t^T)`` only sees the symmetric part of the error: any ``E`` with
  ``E^T = -E`` added to the student leaves it unchanged, and its gradient is symmetric, so Adam never
  moves the antisymmetric part of the student's map (:func:`sym_antisym`).

Maps are ``(S, S)`` tensors (a ``(1, 1, S, S)`` map is accepted and squeezed; :mod:`kdas_lab.viz.row_maps`).
The teacher / student comparison of notebook 03 lives here too. ``term_fit_explorer`` wraps the fit in the
project's :class:`~kdas_lab.viz.widgets.Explorer`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure

from kdas_lab.losses import row_attention as row_attention_lib
from kdas_lab.losses.row_attention import attention_kl, row_attention, sgm_loss
from kdas_lab.losses.structure import structure_loss
from kdas_lab.viz.layout import panel_size
from kdas_lab.viz.row_maps import as_map, map4
from kdas_lab.viz.widgets import Explorer

TERMS = {"L_AT only": (1.0, 0.0), "L_SGM only": (0.0, 1.0), "both": (1.0, 1.0)}


def sym_antisym(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric and antisymmetric parts over the last two dims: ``e = (e + e^T)/2 + (e - e^T)/2``."""
    et = e.transpose(-2, -1)
    return (e + et) / 2, (e - et) / 2


# ----------------------------------------------------------------------------- terms
def at_term(p_s: torch.Tensor, p_t: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * row_kl(A(P_s), A(P_t), T)`` for two ``(S, S)`` maps (KDAS's L_AT on one head:
    :func:`kdas_lab.losses.row_attention.at_term`)."""
    return row_attention_lib.at_term(map4(p_s), map4(p_t), temperature)


def sgm_term(p_s: torch.Tensor, p_t: torch.Tensor) -> torch.Tensor:
    """``MSE(P_s + P_s^T, P_t + P_t^T)`` for two ``(S, S)`` maps (KDAS's L_SGM on one head)."""
    return sgm_loss(map4(p_s), map4(p_t))


def positive_dice(a: torch.Tensor, b: torch.Tensor) -> float:
    """Dice of ``sigmoid(a) > 0.5`` vs ``sigmoid(b) > 0.5`` (i.e. ``a > 0`` vs ``b > 0``); 1 if both empty."""
    x, y = as_map(a) > 0, as_map(b) > 0
    total = int(x.sum()) + int(y.sum())
    return 1.0 if total == 0 else 2.0 * int((x & y).sum()) / total


def term_values(p_s: torch.Tensor, p_t: torch.Tensor, temperature: float,
                mask: torch.Tensor | None = None) -> dict[str, float]:
    """L_AT, L_SGM and Dice (vs the teacher's ``> 0`` map, and vs ``mask`` if given) of a map."""
    p_s, p_t = as_map(p_s), as_map(p_t)
    out = {"L_AT": float(at_term(p_s, p_t, temperature)), "L_SGM": float(sgm_term(p_s, p_t)),
           "Dice vs teacher": positive_dice(p_s, p_t)}
    if mask is not None:
        out["Dice vs mask"] = positive_dice(p_s, as_map(mask) - 0.5)
    return out


# ----------------------------------------------------------------------------- the fit
def fit_free_logits(teacher_map: torch.Tensor, *, at_weight: float = 1.0, sgm_weight: float = 1.0,
                    temperature: float = 2.0, alpha: float = 1.0, mask: torch.Tensor | None = None,
                    steps: int = 300, lr: float = 0.1, seed: int = 0, init: torch.Tensor | None = None,
                    init_std: float = 0.1, record_every: int = 10) -> tuple[torch.Tensor, pd.DataFrame]:
    """Fit a free ``(S, S)`` logit map to ``teacher_map`` with Adam; return ``(fitted, history)``.

    Loss: ``alpha * (at_weight * L_AT + sgm_weight * L_SGM) + (1 - alpha) * structure_loss(P, mask)``
    (the segmentation part only with a ``mask``; without one, alpha just scales the loss, to which Adam
    is nearly insensitive). ``init``: the starting map (default: seeded Gaussian noise of std
    ``init_std``). ``history``: one row every ``record_every`` steps (and the last) with ``step``,
    ``L_AT``, ``L_SGM``, ``seg`` (with a mask), ``loss`` and ``Dice vs teacher`` of the map *before*
    that step's update. Computed in float64, returned ``(S, S)`` in the teacher's dtype.
    """
    target = as_map(teacher_map)
    if target.shape[0] != target.shape[1]:
        raise ValueError(f"the SGM needs a square map, got {tuple(target.shape)}")
    if init is None:
        gen = torch.Generator().manual_seed(seed)
        init = torch.randn(target.shape, generator=gen) * init_std
    # float64: Adam divides by sqrt(v), so float32 rounding noise (gradients ~1e-7) would become steps of ~lr
    dtype, target = target.dtype, target.double()
    p = as_map(init).double().clone().requires_grad_(True)
    if p.shape != target.shape:
        raise ValueError(f"init {tuple(p.shape)} vs teacher {tuple(target.shape)}")
    seg_mask = None if mask is None else (map4(as_map(mask)) > 0.5).double()
    t4, a_t = map4(target), row_attention(map4(target))  # teacher: constants
    opt = torch.optim.Adam([p], lr=lr)
    rows = []
    for step in range(steps + 1):
        p4 = map4(p)
        at = row_attention_lib.at_term(p4, t4, temperature, teacher_att=a_t)
        sgm = sgm_loss(p4, t4)
        loss = alpha * (at_weight * at + sgm_weight * sgm)
        seg = None
        if seg_mask is not None and alpha < 1:
            seg = structure_loss(p4, seg_mask)
            loss = loss + (1 - alpha) * seg
        if step % record_every == 0 or step == steps:
            row = {"step": step, "L_AT": float(at.detach()), "L_SGM": float(sgm.detach()), "loss": float(loss.detach()),
                   "Dice vs teacher": positive_dice(p, target)}
            if seg is not None:
                row["seg"] = float(seg.detach())
            rows.append(row)
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return p.detach().to(dtype), pd.DataFrame(rows)


def fit_summary(fitted: torch.Tensor, teacher_map: torch.Tensor, temperature: float,
                mask: torch.Tensor | None = None) -> dict[str, Any]:
    """Term values, Dice and the residual ``fitted - teacher`` split into symmetric / antisymmetric
    parts, with their RMS (``rms_sym``, ``rms_antisym``)."""
    fitted, target = as_map(fitted), as_map(teacher_map)
    sym, anti = sym_antisym(fitted - target)
    return {**term_values(fitted, target, temperature, mask), "residual_sym": sym, "residual_antisym": anti,
            "rms_sym": float(sym.pow(2).mean().sqrt()), "rms_antisym": float(anti.pow(2).mean().sqrt())}


def compare_terms(teacher_map: torch.Tensor, *, temperature: float = 2.0, mask: torch.Tensor | None = None,
                  alpha: float = 1.0, **fit_kw: Any) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """Fit under each of :data:`TERMS` from the same start; a table of the results and the fitted maps."""
    table, fitted = {}, {}
    start = {"start": fit_free_logits(teacher_map, temperature=temperature, **{**fit_kw, "steps": 0})[0]}
    for name, (w_at, w_sgm) in TERMS.items():
        fitted[name], _ = fit_free_logits(teacher_map, at_weight=w_at, sgm_weight=w_sgm, temperature=temperature,
                                          alpha=alpha, mask=mask, **fit_kw)
    for name, p in {**start, **fitted}.items():
        s = fit_summary(p, teacher_map, temperature, mask)
        table[name] = {k: v for k, v in s.items() if not isinstance(v, torch.Tensor)}
    return pd.DataFrame(table).T.rename_axis("fitted under"), fitted


def fit_state(teacher_map: torch.Tensor, *, terms: str = "both", alpha: float = 1.0, temperature: float = 2.0,
              mask: torch.Tensor | None = None, name: str = "teacher", **fit_kw: Any) -> dict[str, Any]:
    """One fit under ``terms`` (a key of :data:`TERMS`) and everything :func:`plot_fit` draws."""
    if terms not in TERMS:
        raise ValueError(f"terms must be one of {list(TERMS)}, got {terms!r}")
    w_at, w_sgm = TERMS[terms]
    target = as_map(teacher_map)
    fitted, history = fit_free_logits(target, at_weight=w_at, sgm_weight=w_sgm, temperature=temperature,
                                      alpha=alpha, mask=mask, **fit_kw)
    return {"target": name, "terms": terms, "alpha": alpha, "temperature": temperature, "teacher": target,
            "fitted": fitted, "history": history, **fit_summary(fitted, target, temperature, mask)}


# ----------------------------------------------------------------------------- invariances
def invariance_table(teacher_map: torch.Tensor, temperature: float = 2.0, seed: int = 0) -> pd.DataFrame:
    """L_AT and L_SGM of transformed copies of the teacher's map against the teacher itself.

    A zero means the term cannot tell the copy from the teacher. Rows: ``P + E`` with ``E``
    antisymmetric (``E^T = -E``, RMS 1), ``P^T``, ``P + c`` with one constant per row (RMS 1), ``P + 1``
    (the whole map), and, *after* the attention, ``A(P) + c`` per row (the KL's softmax over columns).
    """
    p = as_map(teacher_map).double()  # float64: an exact invariance shows as ~1e-16, not float32 noise
    s = p.shape[-1]
    gen = torch.Generator().manual_seed(seed)
    e = torch.randn(s, s, generator=gen, dtype=torch.float64)
    anti = (e - e.T) / 2
    anti = anti / anti.pow(2).mean().sqrt()
    c = torch.randn(s, 1, generator=gen, dtype=torch.float64)
    c = c / c.pow(2).mean().sqrt()
    a_t = row_attention(map4(p))
    cases = {"P + E, E antisymmetric": p + anti, "P^T (transpose)": p.T, "P + c, one constant per row": p + c,
             "P + 1 (whole map)": p + 1.0}
    rows = {name: {"rms change": float((q - p).pow(2).mean().sqrt()), "L_AT": float(at_term(q, p, temperature)),
                   "L_SGM": float(sgm_term(q, p))} for name, q in cases.items()}
    rows["A(P) + c per row (after attention)"] = {
        "rms change": float(c.pow(2).mean().sqrt()),
        "L_AT": float(attention_kl(a_t + c, a_t, temperature)), "L_SGM": float("nan")}
    return pd.DataFrame(rows).T.rename_axis("student map")


def high_temperature_limit(p_s: torch.Tensor, p_t: torch.Tensor, temperature: float = 1e3) -> tuple[float, float]:
    """``(T^2 * row_kl, half the mean over rows of the column variance of A(P_s) - A(P_t))``: equal as
    ``T -> inf``, so at a high temperature L_AT is an MSE of the attended rows with each row's mean removed."""
    p_s, p_t = as_map(p_s).double(), as_map(p_t).double()  # float64: the KL is tiny at a high T
    d = (row_attention(map4(p_s)) - row_attention(map4(p_t)))[0, 0]
    limit = 0.5 * float(d.var(dim=-1, unbiased=False).mean())
    return float(at_term(p_s, p_t, temperature)), limit


# ----------------------------------------------------------------------------- teacher vs students
def distillation_table(p1: Mapping[str, torch.Tensor], teacher: str, mask: torch.Tensor,
                       temperature: float = 2.0) -> pd.DataFrame:
    """One row per model: ``T^2 * row-KL`` of its row attention to the teacher's (L_AT on P1),
    L_SGM to the teacher, Dice of ``P1 > 0`` vs the mask and vs the teacher's ``P1 > 0``."""
    p_t = as_map(p1[teacher])
    rows = {}
    for name, p in p1.items():
        v = term_values(as_map(p), p_t, temperature, mask)
        rows[name] = {"L_AT to teacher": v["L_AT"], "L_SGM to teacher": v["L_SGM"],
                      "Dice vs mask": v["Dice vs mask"], "Dice vs teacher": v["Dice vs teacher"]}
    return pd.DataFrame(rows).T.rename_axis("P1 of")


def plot_distillation(p1: Mapping[str, torch.Tensor], temperature: float = 2.0, mask: torch.Tensor | None = None,
                      size: float = 2.1) -> Figure:
    """Per model (rows): ``P1`` logits (with the ``mask`` outline in red, if given), ``A(P1)`` and
    ``softmax(A(P1) / T)``."""
    fig, axes = plt.subplots(len(p1), 3, figsize=(3 * size + 0.6, len(p1) * size), squeeze=False)
    for r, (name, p) in enumerate(p1.items()):
        p = as_map(p)
        a = row_attention(map4(p))[0, 0]
        for c, (label, m) in enumerate((("P1 (logits)", p), ("A(P1)", a),
                                        (f"softmax(A/T), T={temperature:g}", torch.softmax(a / temperature, -1)))):
            im = axes[r, c].imshow(m.numpy(), cmap="viridis")
            axes[r, c].set_title(f"{name}: {label}", fontsize=8)
            axes[r, c].set_axis_off()
            fig.colorbar(im, ax=axes[r, c], fraction=0.046)
        if mask is not None:
            axes[r, 0].contour(as_map(mask).numpy(), levels=[0.5], colors="r", linewidths=0.8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- figure and widget
def plot_fit(state: Mapping[str, Any], size: float = 2.2) -> Figure:
    """Teacher, fitted map, the residual's symmetric and antisymmetric parts, and the loss history."""
    teacher, fitted = state["teacher"], state["fitted"]
    sym, anti = state["residual_sym"], state["residual_antisym"]
    size = panel_size(5, size, extra=1.2)
    fig, axes = plt.subplots(1, 5, figsize=(5 * size + 1.2, size + 0.3))
    lo, hi = float(min(teacher.min(), fitted.min())), float(max(teacher.max(), fitted.max()))
    r = max(float(sym.abs().max()), float(anti.abs().max()), 1e-6)
    panels = ((f"teacher ({state['target']})", teacher, "viridis", lo, hi),
              (f"fitted, Dice {state['Dice vs teacher']:.2f}", fitted, "viridis", lo, hi),
              (f"residual: symmetric, rms {state['rms_sym']:.2f}", sym, "RdBu_r", -r, r),
              (f"antisymmetric, rms {state['rms_antisym']:.2f}", anti, "RdBu_r", -r, r))
    for ax, (title, m, cmap, vmin, vmax) in zip(axes, panels):
        im = ax.imshow(as_map(m).numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046)
    hist = state["history"]
    for col, style in (("L_AT", ":"), ("L_SGM", "--"), ("seg", "-")):
        if col in hist:
            axes[4].plot(hist["step"], hist[col].clip(lower=1e-8), style, label=col)
    axes[4].set_yscale("log")
    axes[4].set(xlabel="Adam step", title=f"{state['terms']}, alpha={state['alpha']:g}, T={state['temperature']:g}")
    axes[4].title.set_fontsize(8)
    axes[4].legend(fontsize=7)
    fig.tight_layout()
    return fig


class TermFitExplorer(Explorer):
    """An :class:`~kdas_lab.viz.widgets.Explorer` with ``redraw(**values) -> state`` for headless use."""

    def redraw(self, **values: Any) -> dict[str, Any]:
        """Set controls (one recomputation per changed value) and return the new state."""
        for k, v in values.items():
            self.controls[k].value = v
        return self.state


def term_fit_explorer(targets: Mapping[str, torch.Tensor], mask: torch.Tensor | None = None, *,
                      steps: int = 300, lr: float = 0.1, seed: int = 0, render: bool = True) -> TermFitExplorer:
    """Fit a free logit map to a chosen target under L_AT, L_SGM or both, at a chosen alpha and T.

    ``targets``: name -> ``(S, S)`` teacher logits (e.g. the teacher's P1 and the ideal teacher);
    ``mask``: ``(S, S)`` ground truth for the segmentation part when ``alpha < 1``. Returns a
    :class:`TermFitExplorer` (an :class:`~kdas_lab.viz.widgets.Explorer`): its ``state`` holds the
    fitted map, the terms, Dice and the residual's parts; ``redraw(**values)`` sets controls and
    returns the new state (tests drive it headless with ``render=False``).
    """
    maps = {k: as_map(v) for k, v in targets.items()}
    seg_mask = None if mask is None else as_map(mask)

    def compute(target: str, terms: str, alpha: float, temperature: float) -> dict:
        return fit_state(maps[target], terms=terms, alpha=alpha, temperature=temperature, mask=seg_mask,
                         name=target, steps=steps, lr=lr, seed=seed)

    controls = {
        "target": widgets.Dropdown(options=list(maps), description="teacher"),
        "terms": widgets.Dropdown(options=list(TERMS), value="both", description="terms"),
        "alpha": widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="alpha",
                                     continuous_update=False),
        "temperature": widgets.FloatLogSlider(value=2.0, base=2, min=-2, max=4, step=0.5, description="T",
                                              continuous_update=False),
    }
    return TermFitExplorer(controls, compute, plot_fit, render)
