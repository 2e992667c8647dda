"""The exercise checkers accept the right answer and reject wrong ones with a hint; the student-copy
generator blanks every solution region and leaves no solution text."""
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdas_lab import exercises as ex
from kdas_lab.exercises.__main__ import main
from kdas_lab.exercises.student import BEGIN, END, clear_solutions, make_student

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def dice(pred, gt):
    tp = np.logical_and(pred, gt).sum()
    return 0.0 if tp == 0 else 2 * tp / (pred.sum() + gt.sum())


def iou(pred, gt):
    return np.logical_and(pred, gt).sum() / max(np.logical_or(pred, gt).sum(), 1)


def wbce(pred, mask):
    w = 1 + 5 * (F.avg_pool2d(mask, 31, stride=1, padding=15) - mask).abs()
    return (w * F.binary_cross_entropy_with_logits(pred, mask, reduction="none")).sum((2, 3)) / w.sum((2, 3))


def row_att(p):
    return torch.softmax(p @ p.transpose(-2, -1) / math.sqrt(p.shape[-1]), dim=-1) @ p


def att_term(a_s, a_t, t):
    log_s, log_t = F.log_softmax(a_s / t, dim=-1), F.log_softmax(a_t / t, dim=-1)
    return t * t * (log_t.exp() * (log_t - log_s)).sum() / (a_s.numel() // a_s.shape[-1])


def sgm(p_s, p_t):
    return ((p_s + p_s.transpose(-2, -1) - p_t - p_t.transpose(-2, -1)) ** 2).mean()


def paired(arm, base, z=None):
    from scipy import stats

    common = arm.index.intersection(base.index)
    d = arm.loc[common] - base.loc[common]
    half = (z or stats.t.ppf(0.975, len(d) - 1)) * d.std(ddof=1) / len(d) ** 0.5
    return d.mean(), d.mean() - half, d.mean() + half


def dice_curve(levels, gt, strict=False):
    out = []
    for t in np.arange(255, -1, -1):
        on = levels > t if strict else levels >= t
        out.append(dice(on, gt))
    return np.array(out)


@pytest.mark.parametrize("check, right, wrong, hint", [
    (ex.check_dice, dice, iou, "IoU"),
    (ex.check_weighted_bce, wbce,
     lambda p, m: F.binary_cross_entropy_with_logits(p, m, reduction="none").mean((2, 3)), "unweighted"),
    (ex.check_row_attention, row_att, lambda p: torch.softmax(p @ p.transpose(-2, -1), -1) @ p, "sqrt"),
    (ex.check_attention_term, att_term, lambda s, t, T: att_term(s, t, T) / (T * T), r"T\^2"),
    (ex.check_attention_term, att_term, lambda s, t, T: att_term(t, s, T), "target"),
    (ex.check_sgm, sgm, lambda s, t: F.mse_loss(s, t), "symmetrise"),
    (ex.check_sgm, sgm, lambda s, t: sgm(s, t) * s.numel(), "mean, not the sum"),
    (ex.check_paired_interval, paired, lambda a, b: paired(a, b, z=1.96), "Student's t"),
    (ex.check_paired_interval, paired, lambda a, b: (a.mean() - b.mean(), 0, 1), "pair by seed"),
    (ex.check_dice_curve, dice_curve, lambda lv, g: dice_curve(lv, g, strict=True), ">= t"),
])
def test_checkers_accept_the_right_answer_and_explain_a_wrong_one(check, right, wrong, hint, capsys):
    check(right)
    out = capsys.readouterr().out
    assert "correct" in out and "exact:" in out and "maxdiff:" in out
    with pytest.raises(ex.ExerciseError, match=hint):
        check(wrong)
    assert "approximate: False" in capsys.readouterr().out


def test_cmp_reports_shape_mismatch(capsys):
    assert not ex.cmp("x", torch.zeros(2), torch.zeros(3))
    assert "shape" in capsys.readouterr().out
    with pytest.raises(ex.ExerciseError, match="wrong type"):
        ex.check_dice(lambda p, g: "nope")
    with pytest.raises(NotImplementedError):  # a blank exercise says so, unchanged
        ex.check_row_attention(lambda p: (_ for _ in ()).throw(NotImplementedError()))


def test_clear_solutions_keeps_indentation_and_refuses_broken_regions():
    src = f"def f(x):\n    {BEGIN}\n    return x + 1\n    {END}\n\nf(1)"
    out, n = clear_solutions(src, ("# YOUR CODE HERE", "raise NotImplementedError()"))
    assert n == 1 and out == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nf(1)"
    for broken in (f"{BEGIN}\nx", f"x\n{END}", f"{BEGIN}\n{BEGIN}\n{END}"):
        with pytest.raises(ValueError):
            clear_solutions(broken, ("",))


def test_student_copies_of_the_course_have_blanks_and_no_solution_text(tmp_path, capsys):
    assert main(["make-student", str(NOTEBOOKS), "--out", str(tmp_path)]) == 0
    made = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert len(made) >= 5, made
    for name in made:
        solved = nbformat.read(NOTEBOOKS / name, 4)
        student = nbformat.read(tmp_path / name, 4)
        assert len(student.cells) == len(solved.cells)
        text = "\n".join(c.source for c in student.cells)
        assert BEGIN not in text and END not in text and "raise NotImplementedError()" in text
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
        for a, b in zip(solved.cells, student.cells):
            if BEGIN in a.source:  # every solution line is gone from the student copy
                _, solution = a.source.split(BEGIN, 1)
                for line in solution.split(END, 1)[0].strip().splitlines():
                    assert line.strip() not in b.source.splitlines() or not line.strip()
    assert make_student(tmp_path, tmp_path / "again") == {}  # the copies hold no solutions


def test_committed_student_copies_are_up_to_date(tmp_path):
    committed = NOTEBOOKS / "student"
    assert committed.is_dir(), "python -m kdas_lab.exercises make-student notebooks --out notebooks/student"
    make_student(NOTEBOOKS, tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert names == sorted(p.name for p in committed.glob("*.ipynb"))
    for name in names:
        fresh, kept = nbformat.read(tmp_path / name, 4), nbformat.read(committed / name, 4)
        assert [c.source for c in fresh.cells] == [c.source for c in kept.cells], (
            f"notebooks/student/{name} is stale: regenerate it with python -m kdas_lab.exercises make-student "
            "notebooks --out notebooks/student")
