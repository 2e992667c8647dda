"""Student copies of the solved notebooks, nbgrader's conventions with nbconvert's machinery.

In a code cell, each region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
``# YOUR CODE HERE`` and ``raise NotImplementedError()`` at the region's indentation (nbgrader's
``ClearSolutions``); in a markdown cell it becomes ``YOUR ANSWER HERE``. Every output is cleared, the
notebook's widget state (``metadata.widgets``) is dropped and so is any ``# solution: ...`` comment left
outside a region. The solved notebooks stay the source: the copies are generated, never edited by hand.

Every notebook is read and checked (valid JSON, balanced and unnested markers) before any copy is
written, and the copies are never written into the source folder: a problem is a :class:`StudentError`
naming the notebook and the cell, and nothing is written.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor, Preprocessor

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_SOLUTION_COMMENT = re.compile(r"\s*#\s*solution\b.*$", re.IGNORECASE)


class StudentError(ValueError):
    """A source that cannot be turned into student copies (one line: notebook, cell, what is wrong)."""


def clear_solutions(source: str, stub: tuple[str, ...], where: str = "cell") -> tuple[str, int]:
    """``(source with every solution region replaced by stub, number of regions)``; an unclosed or
    nested region is an error naming ``where``."""
    out: list[str] = []
    inside, regions = False, 0
    for line in source.splitlines():
        mark = line.strip()
        if mark == BEGIN:
            if inside:
                raise StudentError(f"{where}: nested {BEGIN}")
            inside, regions = True, regions + 1
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
        elif mark == END:
            if not inside:
                raise StudentError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise StudentError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out), regions


def strip_solution_comments(source: str) -> str:
    """Drop ``# solution: ...`` comments (a whole comment line, or the end of a code line)."""
    out = []
    for line in source.splitlines():
        kept = _SOLUTION_COMMENT.sub("", line)
        if kept != line and not kept.strip():
            continue  # the line was only the comment
        out.append(kept)
    return "\n".join(out)


class ClearSolutions(Preprocessor):
    """An nbconvert preprocessor: solution regions replaced by stubs (and solution comments dropped in
    code cells); counts the regions in ``resources``."""

    def preprocess_cell(self, cell, resources, index):
        if BEGIN in cell.source or END in cell.source:
            stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
            where = f"{resources.get('name', 'notebook')} cell {index}"
            cell.source, n = clear_solutions(cell.source, stub, where)
            if BEGIN in cell.source or END in cell.source:
                raise StudentError(f"{where}: a solution marker must be a line of its own")
            resources["solutions"] = resources.get("solutions", 0) + n
        if cell.cell_type == "code":
            cell.source = strip_solution_comments(cell.source)
        return cell, resources


def strip_widgets(nb) -> None:
    """No widget state: ``metadata.widgets`` and widget-view outputs removed (in place)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if WIDGET_MIME not in o.get("data", {})]
        cell.metadata.pop("widgets", None)


def read_notebook(path: Path):
    """The notebook at ``path``; a :class:`StudentError` naming it when it is not valid notebook JSON."""
    try:
        return nbformat.read(path, as_version=4)
    except json.JSONDecodeError as exc:
        raise StudentError(f"{path.name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except (nbformat.reader.NotJSONError, nbformat.ValidationError, KeyError, AttributeError, TypeError,
            UnicodeDecodeError) as exc:
        raise StudentError(f"{path.name}: not a valid notebook ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc


def student_copies(source: str | os.PathLike) -> dict[str, object]:
    """``{name: student notebook}`` for every ``*.ipynb`` in ``source`` holding a solution region; every
    notebook is read and checked first, so one bad notebook stops them all."""
    source = Path(source)
    if not source.is_dir():
        raise StudentError(f"{source}: no such folder of solved notebooks")
    copies = {}
    for path in sorted(source.glob("*.ipynb")):
        nb = read_notebook(path)
        resources: dict = {"name": path.name}
        nb, resources = ClearSolutions().preprocess(nb, resources)
        if not resources.get("solutions"):
            continue
        nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
        strip_widgets(nb)
        copies[path.name] = (nb, resources["solutions"])
    return copies


def make_student(source: str | os.PathLike, out: str | os.PathLike) -> dict[str, int]:
    """Write the student copy of every ``*.ipynb`` in ``source`` that holds a solution region into
    ``out``; returns ``{name: regions cleared}``. Refuses (:class:`StudentError`, nothing written) an
    ``out`` that is the source folder, a missing source, or any notebook with bad JSON or markers."""
    out = Path(out)
    if Path(source).is_dir() and out.resolve() == Path(source).resolve():
        raise StudentError(f"--out {out} is the source folder: the student copies would overwrite the solved "
                           "notebooks (use e.g. --out notebooks/student)")
    copies = student_copies(source)  # every notebook checked before any is written
    done: dict[str, int] = {}
    for name, (nb, n) in copies.items():
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / name)
        done[name] = n
    return done
