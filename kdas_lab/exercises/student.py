"""Student copies of the solved notebooks, nbgrader's conventions with nbconvert's machinery.

In a code cell, each region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
``# YOUR CODE HERE`` and ``raise NotImplementedError()`` at the region's indentation (nbgrader's
``ClearSolutions``); in a markdown cell it becomes ``YOUR ANSWER HERE``. Every output is cleared.
The solved notebooks stay the source: the copies are generated, never edited by hand.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor, Preprocessor

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)


def clear_solutions(source: str, stub: tuple[str, ...], where: str = "cell") -> tuple[str, int]:
    """``(source with every solution region replaced by stub, number of regions)``; an unclosed or
    nested region is an error naming ``where``."""
    out: list[str] = []
    inside, regions = False, 0
    for line in source.splitlines():
        mark = line.strip()
        if mark == BEGIN:
            if inside:
                raise ValueError(f"{where}: nested {BEGIN}")
            inside, regions = True, regions + 1
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
        elif mark == END:
            if not inside:
                raise ValueError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out), regions


class ClearSolutions(Preprocessor):
    """An nbconvert preprocessor: solution regions replaced by stubs; counts them in ``resources``."""

    def preprocess_cell(self, cell, resources, index):
        if BEGIN in cell.source or END in cell.source:
            stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
            where = f"{resources.get('name', 'notebook')} cell {index}"
            cell.source, n = clear_solutions(cell.source, stub, where)
            resources["solutions"] = resources.get("solutions", 0) + n
        return cell, resources


def make_student(source: str | os.PathLike, out: str | os.PathLike) -> dict[str, int]:
    """Write the student copy of every ``*.ipynb`` in ``source`` that holds a solution region into
    ``out``; returns ``{name: regions cleared}``."""
    out = Path(out)
    done: dict[str, int] = {}
    for path in sorted(Path(source).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        resources: dict = {"name": path.name}
        nb, resources = ClearSolutions().preprocess(nb, resources)
        if not resources.get("solutions"):
            continue
        nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / path.name)
        done[path.name] = resources["solutions"]
    return done
