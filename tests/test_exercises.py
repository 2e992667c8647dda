"""The exercise checkers accept the right answer and reject wrong ones with a hint; the student-copy
generator blanks every solution region and leaves no solution text."""
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdas_lab.course import exercises as ex
from kdas_lab.course.exercises.__main__ import main
from kdas_lab.course.exercises.student import BEGIN, END, StudentError, clear_solutions, make_student

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


def kl_batchmean_rows(a_s, a_t, t):  # the PyTorch idiom, rows as samples: right
    s_len = a_s.shape[-1]
    log_s = F.log_softmax(a_s / t, dim=-1).reshape(-1, s_len)
    return t * t * F.kl_div(log_s, F.softmax(a_t / t, dim=-1).reshape(-1, s_len), reduction="batchmean")


def kl_batchmean_4d(a_s, a_t, t):  # batchmean on (B, C, S, S): divides by B only
    return t * t * F.kl_div(F.log_softmax(a_s / t, dim=-1), F.softmax(a_t / t, dim=-1), reduction="batchmean")


def row_entropy(q):
    return float(-torch.special.xlogy(q, q).sum(-1).mean())


def paired_spelled(arm, base):  # pandas aligns by seed; a dict of numpy floats: accepted
    d = (arm - base).dropna()
    half = float(__import__("scipy").stats.t.ppf(0.975, len(d) - 1) * d.std() / len(d) ** 0.5)
    return {"mean": np.float64(d.mean()), "ci": np.array([d.mean() - half, d.mean() + half])}


def paired_positional(arm, base):
    d = arm.to_numpy() - base.to_numpy()[: len(arm)]
    return d.mean(), d.mean() - 0.01, d.mean() + 0.01


def pseudo(mask, prob, labelled):  # the labelled frame's mask, else the teacher's hard mask
    return torch.where(labelled.view(-1, 1, 1, 1), mask, (prob > 0.5).float())


def dice_curve_linspace(levels, gt):
    return np.array([dice(levels / 255 >= t, gt) for t in np.linspace(1, 0, 256)])


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
    (ex.check_dice_curve, dice_curve, dice_curve_linspace, "linspace"),
    (ex.check_attention_term, kl_batchmean_rows, kl_batchmean_4d, "batchmean"),
    (ex.check_attention_term, att_term, lambda s, t, T: T * T * F.kl_div(
        F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="mean"), 'reduction="mean"'),
    (ex.check_paired_interval, paired_spelled, paired_positional, "by position"),
    (ex.check_paired_mean, lambda a, b: (a - b).mean(), lambda a, b: np.mean(a.values - b.values[:4]), "by position"),
    (ex.check_paired_mean, lambda a, b: float((a - b).dropna().mean()), lambda a, b: a.mean() - b.mean(),
     "pair by seed"),
    (ex.check_polyp_area, lambda m: m.sum() / m.size, lambda m: 100 * m.mean(), "percentage"),
    (ex.check_polyp_area, lambda m: float(np.mean(m)), lambda m: m.sum(), "number of pixels"),
    (ex.check_row_entropy, row_entropy, lambda q: float(-(q * q.log()).sum(-1).mean()), "xlogy"),
    (ex.check_row_entropy, row_entropy, lambda q: row_entropy(q) / math.log(2), "natural log"),
    (ex.check_row_attention, lambda p: F.scaled_dot_product_attention(p, p, p), lambda p: p, None),
    (ex.check_mean_std, lambda v: (v.mean(), v.std()), lambda v: (v.mean(), np.std(v.to_numpy())), "ddof=1"),
    (ex.check_dataset_dice, lambda c: (c.mean(), c.mean(0).max()), lambda c: (c.mean(), c.max(1).mean()),
     "image-averaged"),
    (ex.check_pseudo_targets, pseudo, lambda m, t, lab: torch.where(lab.view(-1, 1, 1, 1), m, t), "hard mask"),
    (ex.check_pseudo_targets, pseudo, lambda m, t, lab: (t > 0.5).float(), "keeps its own mask"),
    (ex.check_pseudo_targets, pseudo, lambda m, t, lab: m, "no mask to read"),
])
@pytest.mark.filterwarnings("ignore:reduction:UserWarning")  # F.kl_div's own warning about "mean"
def test_checkers_accept_the_right_answer_and_explain_a_wrong_one(check, right, wrong, hint, capsys):
    check(right)
    out = capsys.readouterr().out
    assert "correct" in out and "exact:" in out and "maxdiff:" in out
    with pytest.raises(ex.ExerciseError, match=hint or "not yet right"):
        check(wrong)
    assert "approximate: False" in capsys.readouterr().out


@pytest.mark.parametrize("answer, ok, hint", [
    (16_768, True, None), (16_384, False, "channel attention"), (384, False, "Translayers"),
    (25_107_604 - 3_650_740, False, "backbones"), ("a lot", False, "one number"),
])
def test_decoder_difference_question(answer, ok, hint, capsys):
    if ok:
        ex.check_decoder_difference(answer)
        assert "correct" in capsys.readouterr().out
    else:
        with pytest.raises(ex.ExerciseError, match=hint):
            ex.check_decoder_difference(answer)


def test_squeezed_shapes_question(capsys):
    ex.check_squeezed_shapes({4: (4, 8, 8), 1: torch.Size([8, 8])}, 8)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(ex.ExerciseError, match="batch dim too"):
        ex.check_squeezed_shapes({4: (4, 8, 8), 1: (1, 8, 8)}, 8)
    with pytest.raises(ex.ExerciseError, match="dict"):
        ex.check_squeezed_shapes((8, 8), 8)


def test_paired_checkers_explain_crashes_and_wrong_shapes():
    with pytest.raises(ex.ExerciseError, match="seeds both"):  # KeyError on seed 4: a hint, not a traceback
        ex.check_paired_interval(lambda a, b: paired(b, a.loc[b.index]))
    with pytest.raises(ex.ExerciseError, match="by position"):  # numpy broadcast error (4 vs 5 seeds)
        ex.check_paired_mean(lambda a, b: (a.to_numpy() - b.to_numpy()).mean())
    with pytest.raises(ex.ExerciseError, match="3 numbers"):
        ex.check_paired_interval(lambda a, b: (a - b).mean())


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
    assert committed.is_dir(), "python -m kdas_lab.course.exercises make-student notebooks --out notebooks/student"
    make_student(NOTEBOOKS, tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert names == sorted(p.name for p in committed.glob("*.ipynb"))
    for name in names:
        fresh, kept = nbformat.read(tmp_path / name, 4), nbformat.read(committed / name, 4)
        assert [c.source for c in fresh.cells] == [c.source for c in kept.cells], (
            f"notebooks/student/{name} is stale: regenerate it with python -m kdas_lab.course.exercises make-student "
            "notebooks --out notebooks/student")


def _course(folder: Path, cells: list[str], name: str = "a.ipynb", widgets: bool = False) -> Path:
    """A tiny solved notebook: one code cell per source."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    if widgets:
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
        nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "VBox()"})]
    nbformat.write(nb, folder / name)
    return folder / name


SOLVED = f"x = 1  # solution: one\n# Solution: a whole line\n{BEGIN}\ny = 2\n{END}"


def test_make_student_refuses_the_source_folder_and_overwrites_nothing(tmp_path, capsys):
    path = _course(tmp_path / "nb", [SOLVED])
    before = path.read_bytes()
    for out in (tmp_path / "nb", tmp_path / "nb" / ".." / "nb"):
        assert main(["make-student", str(tmp_path / "nb"), "--out", str(out)]) != 0
        err = capsys.readouterr().err
        assert "source folder" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before


@pytest.mark.parametrize("bad, where", [
    (f"{BEGIN}\nx = 1", "b.ipynb cell 1"),  # unclosed
    (f"x\n{END}", "b.ipynb cell 1"),  # END without BEGIN
    (f"{BEGIN}\n{BEGIN}\nx\n{END}\n{END}", "b.ipynb cell 1: nested"),
    (f"x = 1  {BEGIN}\ny\n{END}", "b.ipynb cell 1"),  # a marker inside a line
])
def test_make_student_checks_every_notebook_before_writing_any(tmp_path, capsys, bad, where):
    _course(tmp_path / "nb", [SOLVED])  # a.ipynb: fine, but must not be written either
    _course(tmp_path / "nb", ["ok = 1", bad], name="b.ipynb")
    assert main(["make-student", str(tmp_path / "nb"), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip()
    assert where in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_make_student_one_line_errors_for_bad_json_and_a_missing_folder(tmp_path, capsys):
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "broken.ipynb").write_text('{"cells": [')
    assert main(["make-student", str(tmp_path / "nb"), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip()
    assert "broken.ipynb" in err and "JSON" in err and len(err.splitlines()) == 1
    assert main(["make-student", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip()
    assert "missing" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(StudentError):
        make_student(tmp_path / "missing", tmp_path / "out")


def test_student_copies_carry_no_solution_comments_and_no_widget_state(tmp_path):
    _course(tmp_path / "nb", [SOLVED, "z = 3  # not a solution comment"], widgets=True)
    assert make_student(tmp_path / "nb", tmp_path / "out") == {"a.ipynb": 1}
    raw = (tmp_path / "out" / "a.ipynb").read_text()
    student = nbformat.read(tmp_path / "out" / "a.ipynb", 4)
    assert student.cells[0].source == "x = 1\n# YOUR CODE HERE\nraise NotImplementedError()"
    assert student.cells[1].source == "z = 3  # not a solution comment"
    assert "widgets" not in student.metadata and "widget-view" not in raw and "widget-state" not in raw
    for committed in sorted((NOTEBOOKS / "student").glob("*.ipynb")):
        nb = nbformat.read(committed, 4)
        assert "widgets" not in nb.metadata, committed.name
        assert not any("# solution" in c.source.lower() for c in nb.cells if c.cell_type == "code"), committed.name


def test_every_exercise_is_checked_and_every_prediction_has_an_answer_cell():
    """No pre-solved "verify" cells: each **E<n>** has a solution region and a checker call; each
    "Predict first" prompt is followed by an answer cell whose key the student copy blanks."""
    import re

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = nbformat.read(path, 4).cells
        for i, cell in enumerate(cells):
            if cell.cell_type != "markdown":
                continue
            if re.search(r"\*\*E\d+", cell.source):
                kind = re.search(r"\*\*E\d+ \((write|question)\)\.\*\*", cell.source)
                assert kind, f"{path.name} cell {i}: an exercise that is neither write nor question"
                code = next(c for c in cells[i + 1:] if c.cell_type == "code")
                assert BEGIN in code.source and "check_" in code.source, f"{path.name} cell {i}: no checked solution"
            if "Predict first:" in cell.source:
                answer = cells[i + 1]
                ok = answer.cell_type == "markdown" and "Your prediction" in answer.source and BEGIN in answer.source
                assert ok, f"{path.name} cell {i}: no answer cell after the prediction prompt"
