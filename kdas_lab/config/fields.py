"""A configuration field's rules beside its default (:func:`setting`), and the check that applies them.

``--set epochs=abc``, ``epochs=2.5``, ``multiscale=abc`` or ``image_size=100`` fail at once with one
line naming the field, instead of a traceback (or a crash after an epoch). Values of a compatible
type are converted: ``int`` -> ``float`` for float fields, ``str`` -> ``Path``, list -> tuple, a JSON
object -> a section (a dataclass such as :class:`~kdas_lab.config.TeacherRecipe`).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Rule:
    """What a field's value must satisfy: ``ok(value)``, described by ``text`` (e.g. ``"> 0"``)."""

    ok: Callable[[Any], bool]
    text: str


def at_least(low: float) -> Rule:
    return Rule(lambda v: v >= low, f">= {low}")


def above(low: float) -> Rule:
    return Rule(lambda v: v > low, f"> {low}")


def within(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Rule:
    """``low <= v <= high``, each end excluded when ``*_open``: e.g. ``in (0, 1]``."""
    def ok(v) -> bool:
        return (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
    return Rule(ok, f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")


MULTIPLE_OF_32 = Rule(lambda v: v >= 32 and v % 32 == 0, "a positive multiple of 32 (PVTv2 downsamples by 32)")
SIZES = Rule(lambda v: all(MULTIPLE_OF_32.ok(s) for s in v), "a list of positive multiples of 32")
RATES = Rule(lambda v: len(v) > 0 and all(r > 0 for r in v), "a non-empty list of positive rates")


def setting(default: Any, *, choices: Sequence[Any] | None = None, rule: Rule | None = None,
            runtime: bool = False) -> Any:
    """A dataclass field with its rules as metadata: ``choices`` (the allowed values) or ``rule``; ``None``
    always passes for an optional field. ``runtime``: the field changes how a run executes (where, how
    fast), not what it computes, so fingerprints and ``--resume`` ignore it."""
    metadata = {"choices": tuple(choices) if choices is not None else None, "rule": rule, "runtime": runtime}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class _Bad(Exception):
    pass


_SCALARS = {  # type -> (accepts the value?, conversion); bool is never an int or a float here
    bool: (lambda v: isinstance(v, bool), lambda v: v),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), lambda v: v),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), float),
    str: (lambda v: isinstance(v, str), lambda v: v),
    Path: (lambda v: isinstance(v, (str, Path)), Path),
}


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (see the module docstring), or :class:`_Bad`. A section (dataclass) built
    from a dict checks its own fields and raises ValueError itself."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except _Bad:
                pass
        raise _Bad
    if tp in _SCALARS:
        accepts, convert = _SCALARS[tp]
        if accepts(value):
            return convert(value)
        raise _Bad
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if isinstance(value, (list, tuple)):
            return tuple(_coerce(v, args[0]) for v in value)
        raise _Bad
    if origin is dict:
        if isinstance(value, dict):
            return value
        raise _Bad
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(tp)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(f"unknown fields {unknown} (known: {', '.join(sorted(known))})")
            return tp(**value)
        raise _Bad
    return value


_WORDS = {int: "a whole number", float: "a finite number", bool: "true or false", str: "a string",
          Path: "a path", type(None): "null"}


def _name(tp: Any) -> str:
    """``int | None`` -> ``"a whole number or null"``; ``tuple[float, ...]`` -> a JSON list."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_name(a) for a in args)
    if origin is tuple:
        return f"a JSON list of {_name(args[0]).removeprefix('a ')}s, e.g. [0.75,1,1.25]"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a JSON object"
    return _WORDS.get(tp, str(tp))


def check_fields(obj: Any, prefix: str = "Config: ") -> None:
    """Convert or refuse each field of the dataclass ``obj`` (in place) by its type, then its ``choices``
    and ``rule``; the ValueError names the field after ``prefix``."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        try:
            object.__setattr__(obj, f.name, _coerce(value, hints[f.name]))
        except _Bad:
            raise ValueError(f"{prefix}{f.name} must be {_name(hints[f.name])}, got {value!r}") from None
        except ValueError as exc:  # a section's own check (it names itself) or its unknown keys
            message = str(exc)
            raise ValueError(message if message.startswith(prefix) else f"{prefix}{f.name}: {message}") from None
        value = getattr(obj, f.name)
        choices, rule = f.metadata.get("choices"), f.metadata.get("rule")
        if value is None:
            continue
        if choices is not None and value not in choices:
            raise ValueError(f"{prefix}{f.name} must be one of {', '.join(map(str, choices))}, got {value!r}")
        if rule is not None and not rule.ok(value):
            raise ValueError(f"{prefix}{f.name} must be {rule.text}, got {value!r}")


def runtime_fields(cls: type) -> tuple[str, ...]:
    """The fields of dataclass ``cls`` declared with ``setting(..., runtime=True)``."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("runtime"))
