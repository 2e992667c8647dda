"""Checkers for the notebooks' exercises (nn-zero-to-hero's ``cmp`` style).

Each ``check_*`` runs the learner's function on fixed inputs, compares it with kdas_lab's own
implementation through :func:`cmp` (one line: exact / approximate / max diff), and raises
:class:`ExerciseError` with a hint naming the likely mistake when the answer is wrong. The solved
notebooks mark their solutions with nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION``;
``python -m kdas_lab.exercises make-student notebooks --out notebooks/student`` writes the copies with blanks.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from kdas_lab.ablation.stats import paired_difference
from kdas_lab.losses.row_attention import row_attention, row_kl, sgm_loss
from kdas_lab.losses.structure import boundary_weight, weighted_bce
from kdas_lab.metrics.functional import dice_curve, threshold_counts

__all__ = ["ExerciseError", "cmp", "check_dice", "check_weighted_bce", "check_row_attention", "check_sgm",
           "check_attention_term", "check_paired_interval", "check_dice_curve"]


class ExerciseError(AssertionError):
    """A wrong answer; the message says what differs and, when it can tell, why."""


def cmp(name: str, learner, reference, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Print ``name | exact | approximate | maxdiff`` for the learner's tensor against the reference;
    True when they agree within tolerance."""
    try:
        got = torch.as_tensor(np.asarray(learner) if not torch.is_tensor(learner) else learner).detach().double()
    except (TypeError, ValueError) as exc:
        print(f"{name:28s} | not a tensor or array ({type(learner).__name__}: {exc})")
        return False
    ref = torch.as_tensor(np.asarray(reference) if not torch.is_tensor(reference) else reference).detach().double()
    if got.shape != ref.shape:
        print(f"{name:28s} | shape {tuple(got.shape)}, expected {tuple(ref.shape)}")
        return False
    exact = bool(torch.equal(got, ref))
    close = bool(torch.allclose(got, ref, rtol=rtol, atol=atol))
    maxdiff = float((got - ref).abs().max()) if got.numel() else 0.0
    print(f"{name:28s} | exact: {exact!s:5s} | approximate: {close!s:5s} | maxdiff: {maxdiff:.3g}")
    return close


def _friendly(check):
    """A learner's function that crashes or returns the wrong type: an ExerciseError saying so."""
    @functools.wraps(check)
    def wrapped(fn):
        try:
            return check(fn)
        except NotImplementedError:  # the blank exercise, as the student copy has it
            raise
        except (TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise ExerciseError(f"{check.__name__}: your function failed or returned the wrong type "
                                f"({type(exc).__name__}: {exc})") from exc
    return wrapped


def _verdict(ok: bool, what: str, hints: list[tuple[bool, str]]) -> None:
    if ok:
        print(f"correct: {what}")
        return
    found = [text for hit, text in hints if hit]
    raise ExerciseError(f"{what}: not yet right." + (f" Hint: {found[0]}" if found else
                                                     " Compare your steps with the formula above."))


def _close(a, b) -> bool:
    a = torch.as_tensor(np.ascontiguousarray(a.detach() if torch.is_tensor(a) else a)).double()
    b = torch.as_tensor(np.ascontiguousarray(b.detach() if torch.is_tensor(b) else b)).double()
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=1e-6))


def _masks(seed: int = 0, size: int = 64) -> torch.Tensor:
    """Four ``(4, 1, S, S)`` test masks: two discs, a square, an empty one."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = torch.zeros(4, 1, size, size)
    for i in range(2):
        cy, cx, r = (torch.randint(16, size - 16, (2,), generator=g).tolist() + [float(10 + 6 * i)])
        out[i, 0] = (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).float()
    out[2, 0, 8:40, 20:52] = 1
    return out


# ----------------------------------------------------------------------------- 00: Dice
def reference_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    tp = float(np.logical_and(pred, gt).sum())
    return 0.0 if tp == 0 else 2 * tp / (float(pred.sum()) + float(gt.sum()))


@_friendly
def check_dice(dice: Callable[[np.ndarray, np.ndarray], float]) -> None:
    """``dice(pred, gt)`` of two boolean masks: ``2 |P and G| / (|P| + |G|)``, 0 without overlap."""
    masks = _masks(1).numpy()[:, 0] > 0.5
    pairs = [(masks[0], masks[1]), (masks[0], masks[0]), (masks[2], masks[0]), (np.roll(masks[2], 5, 1), masks[2]),
             (masks[3], masks[0]), (masks[3], masks[3])]
    got = [float(dice(p, g)) for p, g in pairs]
    ref = [reference_dice(p, g) for p, g in pairs]
    iou = [float(np.logical_and(p, g).sum() / max(np.logical_or(p, g).sum(), 1)) for p, g in pairs]
    ok = cmp("dice on 6 mask pairs", got, ref)
    _verdict(ok, "dice", [(_close(got, iou), "that is the IoU |P and G| / |P or G|; Dice counts the overlap twice "
                                            "over |P| + |G|"),
                          (math.isnan(got[-1]) or got[-1] == 1.0, "two empty masks: the toolbox scores 0 (no true "
                                                                  "positive), not NaN or 1")])


# ----------------------------------------------------------------------------- 01: weighted BCE
@_friendly
def check_weighted_bce(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(pred, mask)`` -> ``(B, 1)``: ``sum(w * bce) / sum(w)`` per sample, ``w = 1 + 5 |avgpool31(G) - G|``."""
    mask = _masks(2)
    pred = torch.randn(mask.shape, generator=torch.Generator().manual_seed(3)) * 3
    got = fn(pred, mask)
    w = boundary_weight(mask)
    ref = weighted_bce(pred, mask, w)
    plain = F.binary_cross_entropy_with_logits(pred, mask, reduction="none").mean(dim=(2, 3))
    ok = cmp("weighted BCE (B, 1)", got, ref)
    _verdict(ok, "weighted BCE", [
        (torch.is_tensor(got) and got.numel() == 1, "return one value per sample, shape (B, 1): sum over (2, 3) only"),
        (torch.is_tensor(got) and _close(got, plain), "these are unweighted means: multiply by w and divide by sum(w)"),
        (torch.is_tensor(got) and _close(got, (w * F.binary_cross_entropy_with_logits(pred, mask, reduction="none"))
                                        .mean(dim=(2, 3))), "divide by sum(w), not by the number of pixels"),
    ])


# ----------------------------------------------------------------------------- 03: row attention, L_AT
def _maps(seed: int = 4, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 1, size, size, generator=g) * 4, torch.randn(2, 1, size, size, generator=g) * 4


@_friendly
def check_row_attention(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``fn(P)`` = ``softmax(P P^T / sqrt(S), dim=-1) P`` for ``(B, C, S, S)`` logits."""
    p, _ = _maps()
    got = fn(p)
    ok = cmp("A(P) (B, 1, S, S)", got, row_attention(p))
    no_scale = torch.softmax(p @ p.transpose(-2, -1), dim=-1) @ p
    cols = torch.softmax(p @ p.transpose(-2, -1) / math.sqrt(p.shape[-1]), dim=-2) @ p
    _verdict(ok, "row attention", [(_close(got, no_scale), "scale the scores by 1 / sqrt(S) before the softmax"),
                                   (_close(got, cols), "the softmax runs over the last dim (each row sums to 1)")])


@_friendly
def check_sgm(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(p_s, p_t)`` = ``mean((P_s + P_s^T - P_t - P_t^T)^2)`` over every element (the SGM loss)."""
    p_s, p_t = _maps(7)
    got = fn(p_s, p_t)
    ok = cmp("SGM loss", got, sgm_loss(p_s, p_t))
    sym = lambda p: p + p.transpose(-2, -1)  # noqa: E731
    _verdict(ok, "SGM loss", [(_close(got, F.mse_loss(p_s, p_t)), "symmetrise both maps first: P + P^T"),
                              (_close(got, ((sym(p_s) - sym(p_t)) ** 2).sum()), "take the mean, not the sum"),
                              (_close(got, F.mse_loss(p_s @ p_s.transpose(-2, -1), p_t @ p_t.transpose(-2, -1))),
                               "P^T is the transpose added to P, not multiplied")])


@_friendly
def check_attention_term(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> None:
    """``fn(a_s, a_t, T)`` = ``T^2 * mean over rows of KL(softmax(a_t / T) || softmax(a_s / T))``."""
    a_s, a_t = _maps(5)
    got, ref, no_t2, reverse = [], [], [], []
    for t in (1.0, 2.0, 4.0):
        got.append(float(fn(a_s, a_t, t)))
        ref.append(float(row_kl(a_s, a_t, t)) * t * t)
        no_t2.append(float(row_kl(a_s, a_t, t)))
        reverse.append(float(row_kl(a_t, a_s, t)) * t * t)
    ok = cmp("L_AT at T = 1, 2, 4", got, ref)
    _verdict(ok, "attention term", [(_close(got, no_t2), "multiply by T^2 (keeps the gradient scale as T grows)"),
                                    (_close(got, reverse), "the teacher's distribution is the target: KL(q_t || q_s)"),
                                    (_close(got[0], ref[0]), "divide the maps by T before the softmax")])


# ----------------------------------------------------------------------------- 04: paired interval
def check_paired_interval(fn: Callable) -> None:
    """``fn(arm, baseline)``: two Series of one value per seed (index: seed) -> ``(mean, low, high)`` of
    the paired differences ``arm[s] - baseline[s]`` over the seeds both have, Student-t 95 % interval."""
    import pandas as pd  # noqa: PLC0415 (only this checker needs it)
    from scipy import stats as sps  # noqa: PLC0415 (as above)

    arm = pd.Series([0.71, 0.69, 0.74, 0.70], index=[0, 1, 2, 3])
    base = pd.Series([0.66, 0.67, 0.70, 0.71, 0.5], index=[1, 0, 2, 3, 4])  # seed 4 has no partner
    got = [float(v) for v in fn(arm, base)]
    r = paired_difference(arm, base)
    ref = [r["diff"], r["diff_ci_low"], r["diff_ci_high"]]
    ok = cmp("paired (mean, low, high)", got, ref)
    common = arm.index.intersection(base.index)
    d = (arm.loc[common] - base.loc[common]).to_numpy()
    half_z = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    half_0 = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=0) / np.sqrt(len(d))
    unpaired = arm.mean() - base.mean()
    _verdict(ok, "paired interval", [
        (not np.isclose(got[0], ref[0]) and np.isclose(got[0], unpaired), "pair by seed: subtract seed s from seed s "
                                                                         "(and drop seeds only one side has)"),
        (np.isclose(got[2] - got[0], half_z), "with 4 seeds use Student's t (n - 1 degrees of freedom), not 1.96"),
        (np.isclose(got[2] - got[0], half_0), "the sample standard deviation has ddof=1"),
    ])


# ----------------------------------------------------------------------------- 05: threshold-averaged Dice
def reference_dice_curve(levels: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Dice at the 256 thresholds 255/255, 254/255, ..., 0 of uint8 levels (on: level / 255 >= t)."""
    tp, fp = threshold_counts(levels.astype(np.int64) + 1, gt)
    return dice_curve(tp, fp, int(gt.sum()))


@_friendly
def check_dice_curve(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """``fn(levels, gt)``: uint8 prediction levels ``(H, W)`` and a boolean mask -> Dice ``(256,)`` at
    thresholds ``1, 254/255, ..., 0`` (a pixel is on when ``level / 255 >= t``; 0 without overlap)."""
    rng = np.random.default_rng(6)
    masks = _masks(6).numpy()[:, 0] > 0.5
    cases = [(np.clip(m * 200 + rng.normal(30, 40, m.shape), 0, 255).astype(np.uint8), m) for m in masks]
    got = [np.asarray(fn(levels, gt), dtype=np.float64) for levels, gt in cases]
    ref = [reference_dice_curve(levels, gt) for levels, gt in cases]
    strict = [dice_curve(*threshold_counts(levels.astype(np.int64), gt), int(gt.sum())) for levels, gt in cases]
    shapes_ok = all(g.shape == (256,) for g in got)
    ok = shapes_ok and cmp("Dice curves (4, 256)", np.stack(got), np.stack(ref))
    if not shapes_ok:
        print(f"Dice curves: shapes {[g.shape for g in got]}, expected (256,) each")
    _verdict(ok, "threshold-averaged Dice", [
        (shapes_ok and _close(np.stack(got), np.stack(strict)), "a pixel is on when level / 255 >= t (not >)"),
        (shapes_ok and _close(np.stack(got)[:, ::-1], np.stack(ref)),
         "go from the highest threshold (1) down to 0, as the toolbox does"),
    ])
