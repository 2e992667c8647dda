"""Checkers for the notebooks' exercises (nn-zero-to-hero's ``cmp`` style).

Each ``check_*`` runs the learner's function on fixed inputs, compares it with kdas_lab's own
implementation through :func:`cmp` (one line: exact / approximate / max diff), and raises
:class:`ExerciseError` with a hint naming the likely mistake when the answer is wrong. The solved
notebooks mark their solutions with nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION``;
``python -m kdas_lab.course.exercises make-student notebooks --out notebooks/student`` writes the copies with blanks.
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
from kdas_lab.losses.targets import build_targets
from kdas_lab.metrics.functional import dice_curve, threshold_counts

__all__ = ["ExerciseError", "cmp", "check_polyp_area", "check_dice", "check_weighted_bce", "check_decoder_difference",
           "check_row_attention", "check_row_entropy", "check_sgm", "check_attention_term", "check_squeezed_shapes",
           "check_mean_std", "check_paired_mean", "check_paired_interval", "check_dataset_dice", "check_dice_curve",
           "check_pseudo_targets"]


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
        except (TypeError, ValueError, RuntimeError, IndexError, KeyError, AttributeError, ZeroDivisionError) as exc:
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


def _numbers(result, n: int, what: str) -> list[float]:
    """The learner's result flattened to ``n`` floats, however it is spelled (tuple, list, array,
    Series, dict, nested); an :class:`ExerciseError` when it does not hold ``n`` numbers."""
    flat: list = []

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif torch.is_tensor(x) or isinstance(x, np.ndarray):
            flat.extend(np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=float).ravel().tolist())
        elif hasattr(x, "to_numpy"):  # pandas
            walk(x.to_numpy())
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        else:
            flat.append(x)

    walk(result)
    try:
        values = [float(v) for v in flat]
    except (TypeError, ValueError) as exc:
        raise ExerciseError(f"{what}: return {n} numbers, got {result!r:.80}") from exc
    if len(values) != n:
        raise ExerciseError(f"{what}: return {n} numbers, got {len(values)} ({result!r:.80})")
    return values


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


# ----------------------------------------------------------------------------- 00: polyp area
@_friendly
def check_polyp_area(fn: Callable[[np.ndarray], float]) -> None:
    """``fn(mask)`` of a boolean mask ``(H, W)``: the fraction of the image covered by polyp pixels."""
    masks = [m for m in _masks(8).numpy()[:, 0] > 0.5] + [np.zeros((48, 80), dtype=bool)]
    masks[1] = masks[1][:, :40]  # not square
    got = _numbers([fn(m.copy()) for m in masks], len(masks), "polyp area")
    ref = [float(m.mean()) for m in masks]
    ok = cmp("area of 5 masks", got, ref)
    _verdict(ok, "polyp area", [(_close(got, [100 * r for r in ref]), "a fraction in [0, 1], not a percentage"),
                                (_close(got, [float(m.sum()) for m in masks]), "divide the polyp pixels by the "
                                                                               "number of pixels (mask.size)"),
                                (_close(got, [1 - r for r in ref]), "count the polyp (True) pixels, not the "
                                                                    "background")])


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


# ----------------------------------------------------------------------------- 01: decoder sizes
TEACHER_WIDTHS, STUDENT_WIDTHS = (64, 128, 320, 512), (32, 64, 160, 256)


def check_decoder_difference(answer) -> None:
    """A graded number: teacher decoder parameters minus student decoder parameters, from the widths."""
    ca = 2 * TEACHER_WIDTHS[0] ** 2 // 16 - 2 * STUDENT_WIDTHS[0] ** 2 // 16
    trans = sum(32 * (t - s) for t, s in zip(TEACHER_WIDTHS, STUDENT_WIDTHS))
    try:
        got = float(answer)
    except (TypeError, ValueError) as exc:
        raise ExerciseError(f"decoder difference: give one number of parameters, got {answer!r:.60}") from exc
    ok = cmp("decoder difference", got, float(ca + trans), rtol=0, atol=0.5)
    _verdict(ok, "decoder difference", [
        (got == trans, "add the channel attention's difference (2 C1^2 / 16 weights, C1 = 64 vs 32)"),
        (got == ca, "add the four Translayers' difference (32 C_i weights each)"),
        (got == 25_107_604 - 3_650_740, "that is the whole models' difference: leave the backbones out"),
        (got == ca + 32 * (TEACHER_WIDTHS[0] - STUDENT_WIDTHS[0]), "there are four Translayers, one per stage"),
        (got < 0, "teacher minus student: the teacher's decoder is the larger one"),
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
def check_row_entropy(fn: Callable[[torch.Tensor], float]) -> None:
    """``fn(q)`` of row distributions ``(..., S, S)`` (each row sums to 1): the mean row entropy in nats,
    ``mean over rows of -sum_j q_j log q_j`` (``0 log 0 = 0``)."""
    g = torch.Generator().manual_seed(9)
    soft = torch.softmax(torch.randn(2, 1, 12, 12, generator=g) * 2, dim=-1)
    onehot = F.one_hot(torch.randint(0, 12, (1, 1, 12), generator=g), 12).double()
    mixed = torch.cat([soft.double(), onehot, torch.full((1, 1, 12, 12), 1 / 12, dtype=torch.float64)])
    cases = [soft, onehot, mixed]
    ent = lambda q: (-(torch.special.xlogy(q, q)).sum(-1))  # noqa: E731
    got = _numbers([fn(q.clone()) for q in cases], 3, "row entropy")
    ref = [float(ent(q).mean()) for q in cases]
    ok = cmp("entropy of 3 sets of rows", got, ref)
    rows = [q.numel() // q.shape[-1] for q in cases]
    _verdict(ok, "row entropy", [
        (any(math.isnan(v) for v in got), "a row with zeros gives 0 * log 0 = nan: use torch.special.xlogy(q, q) "
                                          "or clamp q before the log"),
        (_close(got, [r / math.log(2) for r in ref]), "use the natural log (nats), not log2 (bits)"),
        (_close(got, [-r for r in ref]), "entropy is -sum q log q: mind the minus sign"),
        (_close(got, [r * n for r, n in zip(ref, rows)]), "average over the rows, do not sum them"),
    ])


def check_squeezed_shapes(answer, s: int) -> None:
    """A graded question: ``{4: shape, 1: shape}``, what ``p.squeeze()`` gives for a ``(B, 1, S, S)`` map
    at batch sizes 4 and 1."""
    if not isinstance(answer, dict) or set(answer) != {4, 1}:
        raise ExerciseError("squeezed shapes: answer with a dict {4: shape at batch 4, 1: shape at batch 1}")
    got = {b: tuple(int(v) for v in answer[b]) for b in answer}
    ref = {b: tuple(torch.zeros(b, 1, s, s).squeeze().shape) for b in (4, 1)}
    ok = got == ref
    print(f"{'squeezed shapes':28s} | yours: {got} | {'right' if ok else 'not right'}")
    _verdict(ok, "squeezed shapes", [
        (got[1] == (1, s, s), "squeeze() without an argument drops every dim of size 1, the batch dim too"),
        (got[4] == (4, 1, s, s), "squeeze() drops the channel dim of size 1"),
        (len(got[4]) == 2, "the batch dim of size 4 stays"),
    ])


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
    rows, s_len = a_s.numel() // a_s.shape[-1], a_s.shape[-1]
    _verdict(ok, "attention term", [
        (_close(got, [r * rows / a_s.shape[0] for r in ref]),
         'F.kl_div(..., reduction="batchmean") divides by the first dim (B) only: reshape both to (-1, S) '
         "first, so that every row counts as a sample (or divide the sum by B * C * S)"),
        (_close(got, [r / s_len for r in ref]),
         'reduction="mean" divides by every element (rows x S): average over the rows only, e.g. '
         'reduction="batchmean" on (-1, S) rows'),
        (_close(got, [r * rows for r in ref]), "average the KL over the rows, do not sum it"),
        (_close(got, no_t2), "multiply by T^2 (keeps the gradient scale as T grows)"),
        (_close(got, reverse), "the teacher's distribution is the target: KL(q_t || q_s) "
                               "(F.kl_div(log q_s, q_t) in PyTorch's argument order)"),
        (_close(got[0], ref[0]), "divide the maps by T before the softmax"),
    ])


# ----------------------------------------------------------------------------- 04: seeds, paired differences
@_friendly
def check_mean_std(fn: Callable) -> None:
    """``fn(values)``: one value per seed (a Series) -> ``(mean, sample std)`` (``ddof=1``)."""
    import pandas as pd  # noqa: PLC0415 (only the 04 checkers need it)

    cases = [pd.Series([0.51, 0.47, 0.53], index=[0, 1, 2]), pd.Series([0.6, 0.62, 0.58, 0.66], index=[3, 1, 0, 2])]
    got = [_numbers(fn(v.copy()), 2, "mean and std") for v in cases]
    ref = [[float(v.mean()), float(v.std(ddof=1))] for v in cases]
    ok = cmp("(mean, std) of 2 arms", got, ref)
    _verdict(ok, "mean and std", [
        (_close([g[1] for g in got], [float(v.std(ddof=0)) for v in cases]),
         "the sample std has ddof=1 (NumPy's np.std defaults to ddof=0, pandas' .std() to ddof=1)"),
        (_close([g[1] for g in got], [float(v.var(ddof=1)) for v in cases]), "that is the variance: take its root"),
        (_close([g[0] for g in got], [r[0] for r in ref]), "the mean is right; check the std"),
    ])


def _paired_data():
    import pandas as pd  # noqa: PLC0415

    arm = pd.Series([0.71, 0.69, 0.74, 0.70], index=[0, 1, 2, 3])
    base = pd.Series([0.5, 0.66, 0.67, 0.70, 0.71], index=[4, 1, 0, 2, 3])  # seed 4 has no partner; not in order
    return arm, base


def _call_paired(fn: Callable, arm, base, n: int, what: str) -> list[float]:
    """Run the learner's paired function; the usual crashes of by-position pairing explained."""
    try:
        result = fn(arm.copy(), base.copy())
    except KeyError as exc:
        raise ExerciseError(f"{what}: KeyError {exc}: a seed only one side has. Hint: pair on the seeds both "
                            "have, arm.index.intersection(baseline.index)") from exc
    except ValueError as exc:
        if "broadcast" in str(exc) or "length" in str(exc).lower():
            raise ExerciseError(f"{what}: {exc}. Hint: pair by seed, not by position: .to_numpy() or .values "
                                "drop the seed labels (subtract the Series, or use .loc[common seeds])") from exc
        raise
    return _numbers(result, n, what)


def _paired_hints(got_mean: float, arm, base) -> list[tuple[bool, str]]:
    common = arm.index.intersection(base.index)
    n = len(arm)
    positional = float(np.mean(arm.to_numpy() - base.to_numpy()[:n]))
    unpaired = float(arm.mean() - base.mean())
    ref = float((arm.loc[common] - base.loc[common]).mean())
    return [
        (not np.isclose(got_mean, ref) and np.isclose(got_mean, positional),
         "you paired by position; pair by seed (the index): seed s of the arm with seed s of the baseline"),
        (not np.isclose(got_mean, ref) and np.isclose(got_mean, unpaired),
         "pair by seed: subtract seed s from seed s (and drop seeds only one side has)"),
        (not np.isclose(got_mean, ref) and np.isclose(got_mean, -ref), "arm minus baseline, not the reverse"),
    ]


@_friendly
def check_paired_mean(fn: Callable) -> None:
    """``fn(arm, baseline)``: two Series of one value per seed (index: seed) -> the mean over the seeds
    both have of ``arm[s] - baseline[s]``."""
    arm, base = _paired_data()
    got = _call_paired(fn, arm, base, 1, "paired difference")
    r = paired_difference(arm, base)
    ok = cmp("paired mean difference", got, [r["diff"]])
    _verdict(ok, "paired difference", _paired_hints(got[0], arm, base))


@_friendly
def check_paired_interval(fn: Callable) -> None:
    """``fn(arm, baseline)``: two Series of one value per seed (index: seed) -> ``(mean, low, high)`` of
    the paired differences ``arm[s] - baseline[s]`` over the seeds both have, Student-t 95 % interval."""
    from scipy import stats as sps  # noqa: PLC0415 (only this checker needs it)

    arm, base = _paired_data()
    got = _call_paired(fn, arm, base, 3, "paired interval")
    r = paired_difference(arm, base)
    ref = [r["diff"], r["diff_ci_low"], r["diff_ci_high"]]
    ok = cmp("paired (mean, low, high)", got, ref)
    common = arm.index.intersection(base.index)
    d = (arm.loc[common] - base.loc[common]).to_numpy()
    half_z = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    half_0 = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=0) / np.sqrt(len(d))
    half_n = sps.t.ppf(0.975, len(d)) * d.std(ddof=1) / np.sqrt(len(d))
    half = ref[2] - ref[0]
    _verdict(ok, "paired interval", _paired_hints(got[0], arm, base) + [
        (np.isclose(got[2] - got[0], half_z), "with 4 seeds use Student's t (n - 1 degrees of freedom), not 1.96"),
        (np.isclose(got[2] - got[0], half_0), "the sample standard deviation has ddof=1"),
        (np.isclose(got[2] - got[0], half_n), "Student's t has n - 1 degrees of freedom, not n"),
        (np.isclose(got[2] - got[0], half * np.sqrt(len(d))), "divide the std by sqrt(n): the interval is for "
                                                               "the mean"),
        (np.isclose(got[1], ref[0]) or np.isclose(got[1], half), "return (mean, low, high): low = mean - half, "
                                                                  "high = mean + half"),
    ])


@_friendly
def check_dataset_dice(fn: Callable[[np.ndarray], tuple[float, float]]) -> None:
    """``fn(curves)``: per-image Dice curves ``(N, 256)`` -> ``(meanDic, maxDic)`` of the data set: average
    the curves over the images, then take the mean (meanDic) and the maximum (maxDic) over thresholds."""
    rng = np.random.default_rng(11)
    peak = rng.integers(40, 220, size=(5, 1))
    curves = np.clip(0.9 - ((np.arange(256)[None] - peak) / 90.0) ** 2, 0, 1) * rng.uniform(0.4, 1, (5, 1))
    got = _numbers(fn(curves.copy()), 2, "meanDic and maxDic")
    avg = curves.mean(axis=0)
    ref = [float(avg.mean()), float(avg.max())]
    ok = cmp("(meanDic, maxDic)", got, ref)
    _verdict(ok, "meanDic and maxDic", [
        (np.isclose(got[1], curves.max(axis=1).mean()), "maxDic is the maximum of the image-averaged curve (one "
                                                        "threshold for the whole set), not the mean of each "
                                                        "image's best threshold"),
        (np.isclose(got[0], avg[127]) or np.isclose(got[0], avg[128]), "meanDic averages over all 256 thresholds, "
                                                                      "not the Dice at 0.5"),
        (np.isclose(got[1], curves.max()), "maxDic: average over the images first, then the maximum"),
    ])


# ----------------------------------------------------------------------------- 05: threshold-averaged Dice
def reference_dice_curve(levels: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Dice at the 256 thresholds 255/255, 254/255, ..., 0 of uint8 levels (on: level / 255 >= t)."""
    tp, fp = threshold_counts(levels.astype(np.int64) + 1, gt)
    return dice_curve(tp, fp, int(gt.sum()))


def _linspace_curve(levels: np.ndarray, gt: np.ndarray) -> np.ndarray:
    out = []
    for t in np.linspace(1, 0, 256):
        on = levels / 255 >= t
        tp = np.logical_and(on, gt).sum()
        out.append(0.0 if tp == 0 else 2 * tp / (on.sum() + gt.sum()))
    return np.array(out)


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
    spaced = [_linspace_curve(levels, gt) for levels, gt in cases]
    shapes_ok = all(g.shape == (256,) for g in got)
    ok = shapes_ok and cmp("Dice curves (4, 256)", np.stack(got), np.stack(ref))
    if not shapes_ok:
        print(f"Dice curves: shapes {[g.shape for g in got]}, expected (256,) each")
    _verdict(ok, "threshold-averaged Dice", [
        (shapes_ok and _close(np.stack(got), np.stack(strict)), "a pixel is on when level / 255 >= t (not >)"),
        (shapes_ok and _close(np.stack(got), np.stack(spaced)),
         "np.linspace(1, 0, 256) gives floats a hair above 66 of the exact levels k / 255 (the kdas protocol's "
         "thresholds, section 2), so pixels at those levels switch off one threshold early: compare the integer "
         "levels, levels >= k for k = 255, ..., 0"),
        (shapes_ok and _close(np.stack(got)[:, ::-1], np.stack(ref)),
         "go from the highest threshold (1) down to 0, as the toolbox does"),
    ])


@_friendly
def check_pseudo_targets(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(mask, teacher_prob, labelled)`` -> the ``pseudo`` arm's targets ``(B, 1, H, W)``: a labelled
    frame's own mask, the teacher's hard mask ``[t > 0.5]`` on a frame without a label."""
    masks = _masks(3)  # (4, 1, 64, 64)
    prob = torch.rand(masks.shape, generator=torch.Generator().manual_seed(5))  # (4, 1, 64, 64)
    labelled = torch.tensor([True, False, True, False])
    got = fn(masks.clone(), prob.clone(), labelled.clone())
    reference, _ = build_targets("pseudo", masks, prob, labelled)
    soft, _ = build_targets("pseudo_soft", masks, prob, labelled)
    ok = cmp("pseudo targets", got, reference)
    _verdict(ok, "pseudo targets", [
        (_close(got, soft), "frames without a label take the teacher's hard mask (t > 0.5), not its probability"),
        (_close(got, (prob > 0.5).float()), "a labelled frame keeps its own mask"),
        (_close(got, masks), "a frame without a label has no mask to read: use the teacher's answer there"),
        (_close(got, (prob >= 0.5).float()), "the threshold is strict: t > 0.5"),
    ])
