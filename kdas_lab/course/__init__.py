"""What serves the notebooks (the library itself lives in the other subpackages).

- :mod:`~kdas_lab.course.setup`: ``notebook_setup`` (``kdas_lab.notebook_setup()``) and ``RUNS``;
- :mod:`~kdas_lab.course.sources`: where the course's teacher and students come from (published, cached or
  trained now): ``get_teacher``, ``get_student``, ``describe_checkpoint``, ``training_history``;
- :mod:`~kdas_lab.course.tools`: small pieces the notebooks need (course data, comparison table, failure cases);
- :mod:`~kdas_lab.course.study`: the precomputed studies of notebooks 03, 04 and 06 (``docs/results/``);
- :mod:`~kdas_lab.course.term_fit`: the term-fitting lab of notebook 03 (what each KDAS term transfers);
- :mod:`~kdas_lab.course.exercises`: the exercise checkers and the student copies
  (``python -m kdas_lab.course.exercises make-student notebooks --out notebooks/student``);
- :mod:`~kdas_lab.course.demo`: what ``make demo`` / ``kdas-lab demo`` runs.

``from kdas_lab import course`` then ``course.get_teacher(cfg)``: the names the notebooks use are re-exported
here from :mod:`~kdas_lab.course.sources`, loaded on first use (PEP 562), so that importing
``kdas_lab.course.setup`` or ``kdas_lab.course.exercises`` does not load the training code.
"""

__all__ = ["get_teacher", "get_student", "describe_checkpoint", "training_history", "published_teacher",
           "TEACHER_ENV", "PUBLISHED_DEFAULT"]


def __getattr__(name: str):
    if name in __all__:
        from kdas_lab.course import sources  # noqa: PLC0415

        return getattr(sources, name)
    raise AttributeError(f"module 'kdas_lab.course' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
