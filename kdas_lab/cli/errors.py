"""One error policy for every command line entry point (``kdas-lab ...`` and ``get_data.py``).

A user-facing failure prints one line, ``PROG COMMAND: error: ...`` (for an ``OSError``: the path and
the cause), and exits 2; no traceback. ``KeyboardInterrupt`` exits 130. Argument types here check
values when the command line is parsed, before any work starts.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

USER_ERRORS = (OSError, ValueError, RuntimeError, KeyError)  # DataError, CheckpointError, DownloadError included


def describe(exc: BaseException) -> str:
    """One line: ``PATH: cause`` for an ``OSError`` that names a file, else the message."""
    if isinstance(exc, OSError) and exc.filename is not None:
        cause = exc.strerror or type(exc).__name__
        second = f" -> {exc.filename2}" if exc.filename2 is not None else ""
        return f"{exc.filename}{second}: {cause}"
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc) or type(exc).__name__


def run_command(args: argparse.Namespace, label: str) -> int:
    """``args.func(args)`` with the policy above."""
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"{label}: error: {describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{label}: interrupted", file=sys.stderr)
        return 130


def standalone_main(prog: str, add_commands: Callable[[Any], None], argv: list[str] | None = None,
                    description: str | None = None) -> int:
    """An entry point (``kdas-lab``, ``get_data.py``, ``python -m kdas_lab.cli.ablate``): a parser named
    ``prog`` whose sub-commands ``add_commands(subparsers)`` adds, run under :func:`run_command`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return run_command(args, f"{prog} {args.command}")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def network_size(text: str) -> int:
    """A model input size: a positive multiple of 32 (PVTv2 downsamples by 32)."""
    value = positive_int(text)
    if value % 32:
        raise argparse.ArgumentTypeError(f"{value} is not a multiple of 32 (the network downsamples by 32)")
    return value
