"""Type and range checks of every :class:`~kdas_lab.config.Config` value, run when a Config is built.

``--set epochs=abc``, ``epochs=2.5``, ``multiscale=abc`` or ``image_size=100`` fail at once with one
line naming the field, instead of a traceback (or a crash after an epoch). Values of a compatible
type are converted: ``int`` -> ``float`` for float fields, ``str`` -> ``Path``, list -> tuple.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

# field -> (check, what it must be); None values pass (Optional fields)
RANGES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "epochs": (lambda v: v >= 1, ">= 1"),
    "batch_size": (lambda v: v >= 1, ">= 1"),
    "image_size": (lambda v: v >= 32 and v % 32 == 0, "a positive multiple of 32 (PVTv2 downsamples by 32)"),
    "lr": (lambda v: v > 0, "> 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "val_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "num_workers": (lambda v: v >= 0, ">= 0"),
    "max_steps_per_epoch": (lambda v: v >= 1, ">= 1 (or null)"),
    "epoch_sizes": (lambda v: all(s >= 32 and s % 32 == 0 for s in v), "a list of positive multiples of 32"),
    "multiscale": (lambda v: len(v) > 0 and all(r > 0 for r in v), "a non-empty list of positive rates"),
    "clip_value": (lambda v: v > 0, "> 0"),
    "temperature": (lambda v: v > 0, "> 0"),
    "alpha": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "mix_lambda": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "labelled_per_batch": (lambda v: v >= 1, ">= 1 (or null)"),
    "drop_path_rate": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "synthetic_train": (lambda v: v >= 1, ">= 1"),
    "synthetic_test": (lambda v: v >= 1, ">= 1"),
}


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
    """``value`` as type ``tp`` (see the module docstring), or :class:`_Bad`."""
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
    if origin is dict:
        return "a JSON object"
    return _WORDS.get(tp, str(tp))


def check_config(cfg: Any) -> None:
    """Convert or refuse each field of the dataclass ``cfg`` (in place); ValueError names the field."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        try:
            setattr(cfg, f.name, _coerce(value, hints[f.name]))
        except _Bad:
            raise ValueError(f"Config: {f.name} must be {_name(hints[f.name])}, got {value!r}") from None
        value = getattr(cfg, f.name)
        if f.name in RANGES and value is not None and not RANGES[f.name][0](value):
            raise ValueError(f"Config: {f.name} must be {RANGES[f.name][1]}, got {value!r}")
